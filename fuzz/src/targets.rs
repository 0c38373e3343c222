//! One function per fuzz target: bytes in, the code under test run, cheap invariants asserted
//! (a broken one panics, which AFL reports as a crash). Only `maildlp`, `serde_urlencoded` and
//! `std` are used, so `tests/fuzz_regressions.rs` can include this file as it is.

use maildlp::decode::{self, Ctx, Sink};
use maildlp::detect::Detector;
use maildlp::limits::Limits;
use maildlp::milter::codec::{self, Command};
use maildlp::milter::session::{Budget, Session, Step};
use maildlp::milter::{Action, Decision};
use maildlp::policy::{self, Policy};
use maildlp::scan::{ScanReport, Scanner};
use std::collections::HashMap;
use std::sync::OnceLock;

/// A target's entry point: one input, run to the end (a panic is a finding).
pub type Target = fn(&[u8]);

/// Every target, by name (the name of its `fuzz/src/bin/` binary, its seed folder and its
/// regression folder).
pub const TARGETS: &[(&str, Target)] = &[
    ("scan_message", scan_message),
    ("mime", mime),
    ("pdf", pdf),
    ("rtf", rtf),
    ("zip", zip),
    ("gzip", gzip),
    ("tar", tar),
    ("ole", ole),
    ("html", html),
    ("patterns", patterns),
    ("policy", policy),
    ("milter_codec", milter_codec),
    ("milter_session", milter_session),
    ("web_forms", web_forms),
];

/// The limits of a real server, with a shorter time limit: an input still running well past
/// it (AFL's `-t`) ignores the limit, which is the bug a hang report means.
pub fn limits() -> &'static Limits {
    static LIMITS: OnceLock<Limits> = OnceLock::new();
    LIMITS.get_or_init(|| Limits {
        max_scan_millis: 1_000,
        ..Limits::default()
    })
}

fn scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(|| {
        let detector = Detector::new(&[]).expect("the built-in patterns compile");
        Scanner::new(detector, limits().clone())
    })
}

fn kinds() -> &'static [String] {
    static KINDS: OnceLock<Vec<String>> = OnceLock::new();
    KINDS.get_or_init(|| {
        let mut k: Vec<String> = scanner()
            .detector()
            .patterns()
            .map(|(_, kind)| kind.to_string())
            .collect();
        k.sort();
        k.dedup();
        k
    })
}

fn default_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| Policy::default_policy().expect("the embedded policy parses"))
}

/// Build what the targets share (compiled patterns, the default policy) once, before the
/// fuzzer forks: not per input.
pub fn warm_up() {
    let _ = scanner();
    let _ = kinds();
    let _ = default_policy();
}

/// A masked value shows at most 4 characters in clear (`maildlp::mask`): letters and digits
/// other than the last four are stars.
fn assert_masked(what: &str, masked: &str) {
    let clear = masked.chars().filter(|c| c.is_alphanumeric()).count();
    assert!(
        clear <= 4,
        "{what}: masked value shows {clear} letters or digits (at most 4 allowed): {masked:?}"
    );
}

/// A sink that keeps nothing, only checks what it is given.
#[derive(Default)]
struct Check {
    text_bytes: usize,
}

impl Sink for Check {
    fn text(&mut self, location: &str, text: &str) {
        assert!(!location.is_empty(), "text emitted without a location");
        self.text_bytes += text.len();
    }
    fn encrypted(&mut self, location: &str, kind: &str) {
        assert!(!location.is_empty(), "encrypted part without a location");
        assert!(
            ["zip", "pdf", "office", "pgp", "smime"].contains(&kind),
            "unknown encryption kind {kind:?}"
        );
    }
    fn unscannable(&mut self, location: &str, reason: &str) {
        assert!(!location.is_empty(), "unscannable part without a location");
        assert!(!reason.is_empty(), "unscannable part without a reason");
    }
}

/// Run one extractor on a fresh context; the text handed on stays within the budget.
fn with_ctx(f: impl FnOnce(&mut Ctx<'_>)) {
    let limits = limits();
    let mut sink = Check::default();
    let charged = {
        let mut ctx = Ctx::new(limits, &mut sink);
        f(&mut ctx);
        ctx.decoded_bytes()
    };
    assert!(
        charged <= limits.max_decoded_bytes,
        "decoded {charged} bytes, over the {}-byte budget",
        limits.max_decoded_bytes
    );
    assert!(
        sink.text_bytes <= charged,
        "{} bytes of text emitted but only {charged} charged to the budget",
        sink.text_bytes
    );
}

/// Raw message bytes through the whole engine (decode, detect, evidence) and the default
/// policy.
pub fn scan_message(data: &[u8]) {
    let (report, evidence) = scanner().scan_with_evidence(data, 40);
    check_report(&report);
    for e in &evidence.excerpts {
        assert_masked("evidence excerpt", &e.value);
    }
    let envelope = policy::Envelope::from_headers(&report);
    let verdict = policy::evaluate_on(default_policy(), &report, &envelope, (2026, 11, 30));
    if let Some(reply) = &verdict.reply {
        assert!(
            !reply.contains('\r') && !reply.contains('\n'),
            "SMTP reply with a line break: {reply:?}"
        );
    }
}

fn check_report(report: &ScanReport) {
    assert!(report.decoded_bytes <= limits().max_decoded_bytes);
    for f in &report.findings {
        assert!(f.count >= 1, "finding {} with no match", f.kind);
        assert!(f.masked.len() <= f.count);
        for m in &f.masked {
            assert_masked(&f.kind, m);
        }
    }
}

/// The MIME walk alone.
pub fn mime(data: &[u8]) {
    with_ctx(|ctx| {
        let _ = decode::decode_message(ctx, data);
    });
}

pub fn pdf(data: &[u8]) {
    with_ctx(|ctx| decode::pdf::extract(ctx, "attachment:fuzz.pdf", data));
}

pub fn rtf(data: &[u8]) {
    with_ctx(|ctx| decode::rtf::extract(ctx, "attachment:fuzz.rtf", data));
}

/// Zip archives, and through them OOXML and ODF documents (a zip is routed to the Office
/// reader when its entries say it is one).
pub fn zip(data: &[u8]) {
    with_ctx(|ctx| decode::archive::zip(ctx, "attachment:fuzz.zip", data, 0));
}

pub fn gzip(data: &[u8]) {
    with_ctx(|ctx| decode::archive::gzip(ctx, "attachment:fuzz.gz", "fuzz.gz", data, 0));
}

pub fn tar(data: &[u8]) {
    with_ctx(|ctx| decode::archive::tar(ctx, "attachment:fuzz.tar", data, 0));
}

/// OLE compound files (legacy Word, Excel, PowerPoint; encrypted OOXML).
pub fn ole(data: &[u8]) {
    with_ctx(|ctx| decode::office::ole(ctx, "attachment:fuzz.doc", data));
}

pub fn html(data: &[u8]) {
    with_ctx(|ctx| decode::text::html(ctx, "attachment:fuzz.html", data));
}

/// Pattern-file text through the loader and compiler; a file that loads is run on a sample
/// text and on its own text.
pub fn patterns(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Detector::from_source("fuzz.toml", text) {
        Ok(detector) => {
            let sample = "SSN 536-22-4817, card 4111 1111 1111 1111, pat@city.test, \
                          password: Winter2024! account 123456789";
            for t in [sample, text] {
                let norm = maildlp::detect::normalize(t);
                let found = detector.find_all(&norm);
                for m in &found.matches {
                    assert!(m.start <= m.end && m.end <= norm.len());
                    assert!(norm.is_char_boundary(m.start) && norm.is_char_boundary(m.end));
                }
            }
        }
        Err(e) => {
            assert!(!e.message.is_empty(), "pattern error without a message");
        }
    }
}

/// Policy text through parsing and validation; a policy that loads is shown (`policy show`)
/// and the shown text loads again to the same policy, then judges an empty message.
pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = Policy::parse(text, "fuzz.toml", kinds()) else {
        return;
    };
    let shown = policy.to_toml();
    let again = match Policy::parse(&shown, "shown.toml", kinds()) {
        Ok(p) => p,
        Err(e) => panic!("`policy show` output does not load again: {e:?}\n{shown}"),
    };
    assert_eq!(
        policy, again,
        "`policy show` output loads to another policy"
    );
    let report = ScanReport::default();
    let envelope = policy::Envelope {
        sender: Some("pat@city.test".into()),
        recipients: vec!["sam@example.com".into()],
    };
    let _ = policy::evaluate_on(&policy, &report, &envelope, (2026, 11, 30));
}

/// Milter frames as the server reads them: 4-byte length, then the frame. `None` ends the
/// stream (too short, or a length the server refuses).
fn frames(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let len: [u8; 4] = data.get(..4)?.try_into().ok()?;
        let n = codec::check_length(u32::from_be_bytes(len)).ok()?;
        let frame = data.get(4..4 + n)?;
        data = &data[4 + n..];
        Some(frame)
    })
}

/// A command as an MTA would write it. `decode(encode(c)) == c` for every `c` decode returns.
pub fn encode_command(cmd: &Command<'_>) -> Vec<u8> {
    fn strings<T: AsRef<[u8]>>(out: &mut Vec<u8>, list: &[T]) {
        for s in list {
            out.extend_from_slice(s.as_ref());
            out.push(0);
        }
    }
    let mut out = Vec::new();
    match cmd {
        Command::OptNeg {
            version,
            actions,
            protocol,
        } => {
            out.push(b'O');
            for v in [version, actions, protocol] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        Command::Macro { for_command, pairs } => {
            out.extend_from_slice(&[b'D', *for_command]);
            for (k, v) in pairs {
                strings(&mut out, &[k, v]);
            }
        }
        Command::Connect { hostname, address } => {
            out.push(b'C');
            strings(&mut out, &[hostname]);
            match address {
                None => {}
                Some(a) => match a.strip_prefix("unix:") {
                    Some(path) => {
                        out.push(b'L');
                        strings(&mut out, &[path, ""]);
                    }
                    None => {
                        out.extend_from_slice(b"4\x00\x19");
                        strings(&mut out, &[a.as_str(), ""]);
                    }
                },
            }
        }
        Command::Helo(h) => {
            out.push(b'H');
            strings(&mut out, &[h]);
        }
        Command::Mail(args) => {
            out.push(b'M');
            strings(&mut out, args);
        }
        Command::Rcpt(args) => {
            out.push(b'R');
            strings(&mut out, args);
        }
        Command::Header { name, value } => {
            out.push(b'L');
            strings(&mut out, &[name, value]);
        }
        Command::Body(b) => {
            out.push(b'B');
            out.extend_from_slice(b);
        }
        Command::Unknown(b) => {
            out.push(b'U');
            out.extend_from_slice(b);
        }
        Command::Data => out.push(b'T'),
        Command::EndOfHeaders => out.push(b'N'),
        Command::EndOfBody => out.push(b'E'),
        Command::Abort => out.push(b'A'),
        Command::Quit => out.push(b'Q'),
        Command::QuitNewConnection => out.push(b'K'),
    }
    out
}

/// A stream of frames through the codec: every frame that decodes re-encodes to the same
/// command, and a command prints without its content.
pub fn milter_codec(data: &[u8]) {
    for frame in frames(data) {
        match codec::decode(frame) {
            Ok(cmd) => {
                let again = encode_command(&cmd);
                assert_eq!(
                    codec::decode(&again).as_ref(),
                    Ok(&cmd),
                    "re-encoded command decodes differently"
                );
                let shown = cmd.to_string();
                assert!(shown.len() < 80, "command printed with content: {shown:?}");
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

/// Responses a session writes: well-formed frames, and no line break or `%` in a reply or
/// header (an injected SMTP line or header; Sendmail expands `%`).
fn check_responses(mut out: &[u8]) {
    while !out.is_empty() {
        let len: [u8; 4] = out
            .get(..4)
            .and_then(|l| l.try_into().ok())
            .expect("response frame shorter than its length field");
        let n = codec::check_length(u32::from_be_bytes(len)).expect("response length in range");
        let frame = out
            .get(4..4 + n)
            .expect("response frame shorter than its length");
        out = &out[4 + n..];
        let (cmd, data) = (frame[0], &frame[1..]);
        match cmd {
            b'O' => assert_eq!(data.len(), 12, "OPTNEG reply of {} bytes", data.len()),
            b'c' | b'a' | b'r' | b't' | b'd' => assert!(data.is_empty()),
            b'y' | b'q' | b'h' => {
                assert!(data.ends_with(&[0]), "string reply without its NUL");
                assert!(
                    !data.iter().any(|&b| b == b'\r' || b == b'\n' || b == b'%'),
                    "reply {:?} carries a line break or %",
                    String::from_utf8_lossy(data)
                );
                let nuls = data.iter().filter(|&&b| b == 0).count();
                assert_eq!(nuls, if cmd == b'h' { 2 } else { 1 });
                if cmd == b'y' {
                    assert!(
                        data.len() >= 4
                            && data[..3].iter().all(u8::is_ascii_digit)
                            && matches!(data[0], b'4' | b'5'),
                        "reply code is not 4xx/5xx: {:?}",
                        String::from_utf8_lossy(data)
                    );
                }
            }
            other => panic!("unknown response command {:?}", other as char),
        }
    }
}

/// A judge whose answer (and its texts, taken from the message) depends on the message, so
/// every kind of end-of-message reply is written.
fn judge(message: &[u8]) -> Decision {
    let text = String::from_utf8_lossy(&message[..message.len().min(600)]).into_owned();
    let headers = vec![(text.clone(), text.clone())];
    let action = match message.len() % 5 {
        0 => Action::Accept,
        1 => Action::Reject {
            code: "550".into(),
            xcode: "5.7.1".into(),
            text: text.clone(),
        },
        2 => Action::TempFail {
            code: "451".into(),
            xcode: "4.7.1".into(),
            text: text.clone(),
        },
        3 => Action::Quarantine {
            reason: text.clone(),
        },
        _ => Action::Discard,
    };
    Decision {
        action,
        add_headers: headers,
    }
}

/// A stream of frames through one connection's state machine, as the server drives it: the
/// buffer never passes the message limit, every reply is well formed, and the shared buffer
/// budget is all given back when the connection ends.
pub fn milter_session(data: &[u8]) {
    const MAX_MESSAGE: usize = 16 * 1024;
    let budget = Budget::new(24 * 1024);
    {
        let mut session = Session::with_budget(MAX_MESSAGE, budget.clone());
        for frame in frames(data) {
            let Ok(cmd) = codec::decode(frame) else {
                break;
            };
            match session.handle(cmd) {
                Step::Nothing => {}
                Step::Reply(bytes) => check_responses(&bytes),
                Step::Close | Step::Refuse(_) => break,
                Step::Judge => {
                    let (message, held) = session.take_message();
                    assert!(message.len() <= MAX_MESSAGE);
                    let decision = judge(&message);
                    drop(held);
                    check_responses(&session.finish(&decision));
                    assert!(session.idle(), "a message is still open after its end");
                }
            }
            assert!(
                session.message().len() <= MAX_MESSAGE,
                "buffered {} bytes, over the {MAX_MESSAGE}-byte message limit",
                session.message().len()
            );
        }
    }
    assert_eq!(
        budget.held(),
        0,
        "a closed connection still holds buffer budget"
    );
}

/// A query string or form body as the console's extractors read it; every value goes through
/// what the console does with filter values, and the console's own encoding of a value reads
/// back to the same value.
pub fn web_forms(data: &[u8]) {
    let Ok(map) = serde_urlencoded::from_bytes::<HashMap<String, String>>(data) else {
        return;
    };
    for (key, value) in &map {
        for v in [key, value] {
            let encoded = maildlp::web::urlencode(v);
            let back: Vec<(String, String)> =
                serde_urlencoded::from_str(&format!("v={encoded}")).expect("own encoding reads");
            assert_eq!(back, vec![("v".to_string(), v.clone())]);
            let _ = maildlp::quarantine::parse_time(v, 1_795_996_800_000);
            let _ = v.parse::<maildlp::quarantine::Status>();
        }
    }
}

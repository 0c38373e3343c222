//! One function per fuzz target: bytes in, the code under test run, cheap invariants asserted
//! (a broken one panics, which AFL reports as a crash). Only `maildlp`, `std` and crates the root
//! package also depends on (`serde_urlencoded`, `tokio`, `tokio-rustls`, `rcgen`) are used, so
//! `tests/fuzz_regressions.rs` can include this file as it is.

use maildlp::decode::{self, Ctx, Sink};
use maildlp::detect::Detector;
use maildlp::limits::Limits;
use maildlp::milter::Envelope;
use maildlp::milter::codec::{self, Command};
use maildlp::milter::session::{Budget, Session, Step};
use maildlp::milter::{Action, Decision};
use maildlp::policy::{self, Policy};
use maildlp::relay::session::{Deliver, Reply as SmtpReply, Session as SmtpSession};
use maildlp::relay::{Budget as RelayBudget, Config as RelayConfig, Reservation};
use maildlp::scan::{ScanReport, Scanner};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsAcceptor;

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
    ("smtp_session", smtp_session),
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
    smtp_warm_up();
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

// --- smtp_session: the relay's SMTP server side -------------------------------------------

/// The relay's limits in the fuzzed sessions: small, so that the fuzzer reaches every one.
const SMTP_MAX_MESSAGE: usize = 4096;
/// The shared buffer budget when the input asks for a small one (below the message limit, so
/// a message can pass the size check and still not fit: 452).
const SMTP_SMALL_BUDGET: usize = 2048;
const SMTP_MAX_RECIPIENTS: usize = 3;
const SMTP_MAX_COMMANDS: usize = 60;
const SMTP_MAX_ERRORS: usize = 8;
/// How many bytes one read hands the session: all at once, or in pieces (a line split over
/// reads, pipelined commands arriving together or not).
const SMTP_CHUNKS: [usize; 8] = [usize::MAX, 1, 2, 3, 5, 8, 64, 700];
/// RFC 5321 4.5.3.1.5: a reply line is at most 512 bytes, CRLF included.
const SMTP_MAX_REPLY_LINE: usize = 512;

/// The client's side of an in-memory connection: reads come from the input, `chunk` bytes at
/// most at a time, and never wait; what the session writes is kept.
struct Wire {
    input: Vec<u8>,
    pos: usize,
    chunk: usize,
    out: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for Wire {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (self.input.len() - self.pos)
            .min(self.chunk)
            .min(buf.remaining());
        let start = self.pos;
        buf.put_slice(&self.input[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut out = lock(&self.out);
        out.extend_from_slice(buf);
        // Replies are bounded by the input (one per line) and the limits.
        assert!(
            out.len() <= 64 * 1024 + 64 * self.input.len(),
            "{} bytes written for {} bytes of input",
            out.len(),
            self.input.len()
        );
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the relay does with a message, stubbed: keep it, and answer by its length (texts taken
/// from the message, so the session's reply sanitising is exercised too).
struct StubDeliver {
    got: Arc<Mutex<Vec<Delivered>>>,
}

/// A message the stub was given, with its envelope.
type Delivered = (Envelope, Vec<u8>);

fn stub_reply(message: &[u8]) -> SmtpReply {
    let text = String::from_utf8_lossy(&message[..message.len().min(700)]);
    match message.len() % 4 {
        0 => SmtpReply::new(250, "2.0.0 Ok: forwarded"),
        1 => SmtpReply::new(550, format!("5.7.1 {text}")),
        2 => SmtpReply::new(451, format!("4.7.1 {text}")),
        _ => SmtpReply::new(250, format!("2.0.0 Ok: held as {text}")),
    }
}

impl Deliver for StubDeliver {
    async fn deliver(&self, envelope: Envelope, message: Vec<u8>) -> SmtpReply {
        let reply = stub_reply(&message);
        lock(&self.got).push((envelope, message));
        reply
    }
}

/// A STARTTLS acceptor with a throw-away self-signed certificate.
fn smtp_tls() -> &'static TlsAcceptor {
    static TLS: OnceLock<TlsAcceptor> = OnceLock::new();
    TLS.get_or_init(|| {
        use tokio_rustls::rustls;
        let ck = rcgen::generate_simple_self_signed(vec!["relay.fuzz.test".into()])
            .expect("a self-signed certificate");
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key.into())
        .expect("certificate and key pair");
        TlsAcceptor::from(Arc::new(config))
    })
}

thread_local! {
    /// The runtime the session runs on: one thread, time for its timeouts, no I/O driver
    /// (the connection is in memory).
    static SMTP_RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
}

/// One SMTP reply as written: its code and each line's text.
#[derive(Debug)]
struct ParsedReply {
    code: u16,
    lines: Vec<String>,
}

/// Read the session's output as SMTP replies: 3-digit code, `-` on every line of a
/// multi-line reply but the last, which has a space, one code throughout, printable ASCII,
/// at most 512 bytes a line, CRLF. Stops after a STARTTLS "220" (TLS records follow).
fn parse_replies(out: &[u8]) -> Vec<ParsedReply> {
    let mut replies = Vec::new();
    let mut current: Option<ParsedReply> = None;
    let mut rest = out;
    while !rest.is_empty() {
        let shown = || String::from_utf8_lossy(&rest[..rest.len().min(80)]).into_owned();
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or_else(|| panic!("reply not ended by CRLF: {:?}", shown()));
        let line = &rest[..end];
        assert!(
            end + 2 <= SMTP_MAX_REPLY_LINE,
            "reply line of {} bytes: {:?}",
            end + 2,
            shown()
        );
        assert!(
            line.len() >= 4
                && line[..3].iter().all(u8::is_ascii_digit)
                && (b'2'..=b'5').contains(&line[0])
                && matches!(line[3], b' ' | b'-'),
            "malformed reply line {:?}",
            shown()
        );
        assert!(
            line[4..].iter().all(|&b| (0x20..0x7f).contains(&b)),
            "reply with a control or 8-bit byte: {:?}",
            shown()
        );
        let code =
            (line[0] - b'0') as u16 * 100 + (line[1] - b'0') as u16 * 10 + (line[2] - b'0') as u16;
        let text = String::from_utf8_lossy(&line[4..]).into_owned();
        let reply = current.get_or_insert(ParsedReply {
            code,
            lines: Vec::new(),
        });
        assert_eq!(reply.code, code, "one multi-line reply with two codes");
        reply.lines.push(text);
        rest = &rest[end + 2..];
        if line[3] == b' ' {
            let done = current.take().expect("a reply in progress");
            let starttls = done.code == 220 && !replies.is_empty();
            replies.push(done);
            if starttls {
                break;
            }
        }
    }
    assert!(
        current.is_none(),
        "the output ends inside a multi-line reply"
    );
    replies
}

/// A message being received, as the model sees it.
#[derive(Default)]
struct ModelData {
    message: Vec<u8>,
    /// The code it will be refused with (the first reason found).
    refused: Option<u16>,
}

/// Walk the client's lines and the session's replies together, as RFC 5321 and the session's
/// documented limits say they go: one reply per command line; DATA text answered once, at its
/// end, with the reason it was refused or the delivery's reply; a message delivered exactly
/// as sent (dots unstuffed) and only when accepted; 421 at once past the command or error
/// limits; nothing after QUIT, 421, a bare-LF end of data or STARTTLS.
fn check_smtp_session(
    input: &[u8],
    replies: Vec<ParsedReply>,
    delivered: Vec<Delivered>,
    budget: usize,
    tls: bool,
) {
    let mut replies = replies.into_iter();
    let mut delivered = delivered.into_iter();
    let mut next = |what: &dyn std::fmt::Display| {
        replies
            .next()
            .unwrap_or_else(|| panic!("no reply to {what}"))
    };
    assert_eq!(next(&"the connection").code, 220, "greeting");
    let mut commands = 0;
    let mut errors = 0;
    let mut data: Option<ModelData> = None;
    let mut rest = input;
    let ended = loop {
        let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
            // End of input; a line without its LF is never read.
            break false;
        };
        let line = &rest[..=lf];
        rest = &rest[lf + 1..];
        let shown = || String::from_utf8_lossy(&line[..line.len().min(60)]).into_owned();
        match &mut data {
            None => {
                commands += 1;
                if commands > SMTP_MAX_COMMANDS {
                    let r = next(&"the command past the limit");
                    assert_eq!(r.code, 421, "command past the limit: {r:?}");
                    break true;
                }
                let r = next(&format_args!("command {:?}", shown()));
                if line.len() > maildlp::relay::MAX_LINE {
                    assert_eq!(r.code, 500, "overlong command line: {r:?}");
                }
                let text = String::from_utf8_lossy(line);
                let text = text.trim_end_matches(['\r', '\n']);
                let verb = text.split(' ').next().unwrap_or("").to_ascii_uppercase();
                match r.code {
                    354 => {
                        assert_eq!(verb, "DATA", "354 to {:?}", shown());
                        data = Some(ModelData::default());
                    }
                    221 => {
                        assert_eq!(verb, "QUIT", "221 to {:?}", shown());
                        break true;
                    }
                    220 => {
                        assert!(tls && verb == "STARTTLS", "220 to {:?}", shown());
                        // TLS from here: nothing more to read as clear text.
                        return;
                    }
                    421 => panic!("421 to {:?} with no limit reached: {r:?}", shown()),
                    c if c >= 500 => errors += 1,
                    _ => {}
                }
            }
            Some(d) => {
                if line.len() > maildlp::relay::MAX_LINE {
                    d.refused.get_or_insert(500);
                    continue;
                }
                if line == b".\r\n" {
                    let r = next(&"the end of the message");
                    match d.refused {
                        Some(code) => {
                            assert_eq!(r.code, code, "refused message: {r:?}");
                            if code >= 500 {
                                errors += 1;
                            }
                        }
                        None => {
                            let (envelope, message) = delivered.next().unwrap_or_else(|| {
                                panic!("message accepted ({r:?}) but not delivered")
                            });
                            assert!(
                                message == d.message,
                                "delivered {} bytes, not the {} sent",
                                message.len(),
                                d.message.len()
                            );
                            assert_eq!(
                                r.code,
                                stub_reply(&message).code,
                                "not the delivery's reply"
                            );
                            check_smtp_envelope(&envelope);
                        }
                    }
                    data = None;
                } else if line == b".\n" || line == b".\r\r\n" {
                    let r = next(&"a bare-LF end of data");
                    assert_eq!(r.code, 554, "bare-LF end of data: {r:?}");
                    break true;
                } else {
                    let bare = !line.ends_with(b"\r\n") || line[..line.len() - 2].contains(&b'\r');
                    if bare {
                        d.refused.get_or_insert(554);
                    }
                    if d.refused.is_some() {
                        continue;
                    }
                    let text = line.strip_prefix(b".").unwrap_or(line);
                    let size = d.message.len() + text.len();
                    if size > SMTP_MAX_MESSAGE {
                        d.refused = Some(552);
                    } else if size > budget {
                        d.refused = Some(452);
                    } else {
                        d.message.extend_from_slice(text);
                    }
                    continue;
                }
            }
        }
        if errors > SMTP_MAX_ERRORS {
            let r = next(&"too many errors");
            assert_eq!(r.code, 421, "past the error limit: {r:?}");
            break true;
        }
    };
    if let Some(r) = replies.next() {
        let why = if ended {
            "after the session ended"
        } else {
            "with no command"
        };
        panic!("a reply {why}: {r:?}");
    }
    if let Some((_, m)) = delivered.next() {
        panic!("a message of {} bytes delivered but not accepted", m.len());
    }
}

/// What the next hop would be given: 1 to the limit of recipients, addresses without control
/// characters (they go into the next hop's MAIL and RCPT commands).
fn check_smtp_envelope(envelope: &Envelope) {
    let n = envelope.rcpt_to.len();
    assert!(
        (1..=SMTP_MAX_RECIPIENTS).contains(&n),
        "{n} recipients delivered (limit {SMTP_MAX_RECIPIENTS})"
    );
    for a in std::iter::once(&envelope.mail_from).chain(&envelope.rcpt_to) {
        assert!(
            !a.chars().any(char::is_control),
            "address with a control character: {a:?}"
        );
    }
    assert!(envelope.queue_id.is_some(), "no queue id");
}

/// `MAILDLP_FUZZ_SHOW=1`: print what the session wrote and delivered (to look at a finding).
fn show_transcript() -> bool {
    static SHOW: OnceLock<bool> = OnceLock::new();
    *SHOW.get_or_init(|| std::env::var_os("MAILDLP_FUZZ_SHOW").is_some())
}

/// Build the STARTTLS certificate and the runtime before the fuzzer forks.
pub fn smtp_warm_up() {
    let _ = smtp_tls();
    let _ = show_transcript();
    SMTP_RUNTIME.with(|_| {});
}

/// A client's byte stream through one relay SMTP session (`maildlp::relay::session::Session`,
/// what `maildlp relay` runs per connection) over an in-memory connection. The first byte picks
/// the setting: bit 0 a loopback peer (XFORWARD allowed), bit 1 STARTTLS offered, bit 2 a
/// buffer budget below the message limit, bits 3-5 how many bytes a read returns. The replies
/// are well formed and follow the commands one for one (see `check_smtp_session`), a message
/// is delivered exactly as sent and within the limits, and the buffer budget is all given back.
pub fn smtp_session(data: &[u8]) {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let loopback = flags & 1 != 0;
    let tls = flags & 2 != 0;
    let budget_limit = if flags & 4 != 0 {
        SMTP_SMALL_BUDGET
    } else {
        4 * SMTP_MAX_MESSAGE
    };
    let chunk = SMTP_CHUNKS[usize::from((flags >> 3) & 7)];
    let config = RelayConfig {
        hostname: "relay.fuzz.test".into(),
        max_message_bytes: SMTP_MAX_MESSAGE,
        max_recipients: SMTP_MAX_RECIPIENTS,
        max_commands: SMTP_MAX_COMMANDS,
        max_errors: SMTP_MAX_ERRORS,
        command_timeout: Duration::from_secs(60),
        connection_timeout: Duration::from_secs(3600),
        max_connections: 1,
        max_buffered_bytes: budget_limit,
    };
    let peer: SocketAddr = if loopback {
        SocketAddr::from(([127, 0, 0, 1], 40025))
    } else {
        SocketAddr::from(([192, 0, 2, 25], 40025))
    };
    let out = Arc::new(Mutex::new(Vec::new()));
    let got = Arc::new(Mutex::new(Vec::new()));
    let budget = RelayBudget::new(budget_limit);
    // Kept open to the end: a closed sender reads as a shutdown.
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let wire = Wire {
        input: input.to_vec(),
        pos: 0,
        chunk,
        out: out.clone(),
    };
    let session = SmtpSession::new(
        Box::new(wire),
        peer,
        1,
        Arc::new(config),
        Arc::new(StubDeliver { got: got.clone() }),
        tls.then(|| smtp_tls().clone()),
        budget.clone(),
        stop,
    );
    SMTP_RUNTIME.with(|rt| rt.block_on(session.run()));
    assert!(
        Reservation::new(&budget).grow(budget_limit),
        "the session ended still holding buffer budget"
    );
    let out = std::mem::take(&mut *lock(&out));
    let got = std::mem::take(&mut *lock(&got));
    if show_transcript() {
        eprintln!("{}", String::from_utf8_lossy(&out));
        for (envelope, message) in &got {
            eprintln!(
                "delivered {} bytes from {:?} to {:?}",
                message.len(),
                envelope.mail_from,
                envelope.rcpt_to
            );
        }
    }
    check_smtp_session(input, parse_replies(&out), got, budget_limit, tls);
}

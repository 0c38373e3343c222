//! maildlp's own quarantine behind a real Postfix: a private Postfix instance (own config, queue
//! and data directories, loopback ports) with `smtpd_milters` pointing at `maildlp milter` in
//! store mode, a second smtpd without the milter for released mail and notices, and a local SMTP
//! sink as relay host that records envelopes and messages. Checks that a quarantined message is
//! kept only by maildlp, never shows its value, is released byte for byte with its envelope, that
//! every step is audited, and that a `kill -9` during a burst loses no accepted message. Needs
//! Debian's postfix (`.ci/install-postfix.sh` installs it) and root, as in CI.

#[path = "support/postfix.rs"]
mod postfix;

use postfix::{Delivery, Milter, Ports, Postfix, Sink, free_port};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A synthetic SSN (not a real person's) and how maildlp shows it.
const SSN: &str = "536-22-4817";
const SSN_MASKED: &str = "***-**-4817";
/// The folded header of [`ssn_message`], as it is on the wire.
const FOLDED: &str = "X-Test-Folded: first part of a folded header\r\n\tsecond part of it\r\n";

type Deliveries = Arc<Mutex<Vec<Delivery>>>;

/// The loopback SMTP sink (tests/support/smtp_sink.rs) that keeps envelopes and messages.
fn start_sink() -> (u16, Deliveries) {
    let sink = Sink::start();
    (sink.port, sink.kept)
}

/// A private Postfix instance, stopped when dropped.
/// Postfix + maildlp + sink for one test, in its own temporary directory.
struct Harness {
    // Declared first, dropped first: the milter, then Postfix.
    milter: Option<Milter>,
    postfix: Option<Postfix>,
    dir: PathBuf,
    data_dir: PathBuf,
    smtp_port: u16,
    release_port: u16,
    sink: Deliveries,
}

impl Harness {
    fn start(name: &str) -> Harness {
        let dir = std::env::temp_dir().join(format!(
            "maildlp-pfq-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("test dir");
        let data_dir = dir.join("maildlp-data");
        let (sink_port, sink) = start_sink();
        let milter_port = free_port();
        let smtp_port = free_port();
        let release_port = free_port();

        // The fixture policy, with the security officer and notices through the release
        // listener (so they reach the sink through Postfix without passing the milter).
        let fixture = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/policy/policy.toml"),
        )
        .expect("fixture policy");
        let policy = edit_policy(&fixture, release_port);
        let policy_path = dir.join("policy.toml");
        std::fs::write(&policy_path, &policy).expect("policy");

        let log = std::fs::File::create(dir.join("maildlp.log")).expect("maildlp log");
        let child = Command::new(env!("CARGO_BIN_EXE_maildlp"))
            .args([
                "milter",
                "--listen",
                &format!("inet:127.0.0.1:{milter_port}"),
            ])
            .arg("--policy")
            .arg(&policy_path)
            .arg("--data-dir")
            .arg(&data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start maildlp milter");
        let mut h = Harness {
            milter: Some(Milter(child)),
            postfix: None,
            dir,
            data_dir,
            smtp_port,
            release_port,
            sink,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", milter_port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "milter did not start\n{}",
                h.context()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The README's re-injection listener: smtpd without the milter, where released mail
        // and notices enter; everything is relayed to the sink.
        h.postfix = Some(Postfix::start(
            &h.dir,
            &Ports {
                smtp: smtp_port,
                sink: sink_port,
                milter: milter_port,
            },
            "",
            &format!(
                "127.0.0.1:{release_port} inet n - n - - smtpd\n  \
                 -o smtpd_milters=\n  -o non_smtpd_milters=\n"
            ),
        ));
        for port in [smtp_port, release_port] {
            let start = Instant::now();
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "postfix smtpd on {port} did not start\n{}",
                    h.context()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        h
    }

    fn postfix(&self) -> &Postfix {
        self.postfix.as_ref().expect("postfix running")
    }

    fn maildlp_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maildlp.log")).unwrap_or_default()
    }

    /// Postfix's log and maildlp's stderr (their last lines), for assertion messages.
    fn context(&self) -> String {
        fn tail(s: &str, n: usize) -> String {
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        let pf = self.postfix.as_ref().map(|p| p.log()).unwrap_or_default();
        format!(
            "--- postfix log (tail) ---\n{}\n--- maildlp stderr (tail) ---\n{}",
            tail(&pf, 80),
            tail(&self.maildlp_log(), 60)
        )
    }

    /// Run `maildlp ARGS --data-dir DATA_DIR` as this OS user (no sudo attribution).
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_maildlp"))
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env_remove("SUDO_USER")
            .output()
            .expect("run maildlp")
    }

    /// A `maildlp` command that must succeed: its stdout.
    fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "maildlp {args:?} failed ({}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.context()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `quarantine list --format json [EXTRA]`, one value per message.
    fn list(&self, extra: &[&str]) -> (String, Vec<serde_json::Value>) {
        let mut args = vec!["quarantine", "list", "--format", "json"];
        args.extend_from_slice(extra);
        let text = self.cli_ok(&args);
        let rows = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("list line {l:?}: {e}")))
            .collect();
        (text, rows)
    }

    /// `quarantine audit --format json`.
    fn audit(&self) -> Vec<serde_json::Value> {
        self.cli_ok(&["quarantine", "audit", "--format", "json"])
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
            .collect()
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.sink.lock().map(|d| d.clone()).unwrap_or_default()
    }

    fn wait_for(&self, what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}\n{}", self.context());
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.milter.take();
        self.postfix.take();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("kept {} for inspection", self.dir.display());
        }
    }
}

/// The fixture policy with `security_officer = "security@city.test"` under [organisation] and
/// `[notices] smtp_port` = the release listener, edited as text.
fn edit_policy(fixture: &str, notice_port: u16) -> String {
    let mut section = String::new();
    let (mut officer, mut port) = (false, false);
    let mut out = String::new();
    for line in fixture.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            section = t.trim_matches(['[', ']']).to_string();
        }
        if section == "organisation" && t.starts_with("security_officer") {
            out.push_str("security_officer = \"security@city.test\"\n");
            officer = true;
        } else if section == "notices" && t.starts_with("smtp_port") {
            out.push_str(&format!("smtp_port = {notice_port}\n"));
            port = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(
        officer && port,
        "fixtures/policy/policy.toml changed: no security_officer under [organisation] or no \
         smtp_port under [notices]"
    );
    out
}

/// Send `message` (CRLF lines, ending in CRLF) over SMTP. Ok: the first refusal or the reply
/// to the end of DATA; Err: the connection failed or closed.
fn submit(port: u16, from: &str, rcpts: &[&str], message: &[u8]) -> Result<String, String> {
    let conn = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let mut out = conn.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::new(conn);
    let mut reply = || -> Result<String, String> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) => return Err(format!("connection closed after {all:?}")),
                Ok(_) => {}
                Err(e) => return Err(format!("read: {e}")),
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return Ok(all);
            }
        }
    };
    let mut send = |bytes: &[u8]| out.write_all(bytes).map_err(|e| format!("send: {e}"));
    let greeting = reply()?;
    if !greeting.starts_with("220") {
        return Ok(greeting);
    }
    send(b"EHLO tester.test\r\n")?;
    reply()?;
    send(format!("MAIL FROM:<{from}>\r\n").as_bytes())?;
    let r1 = reply()?;
    if !r1.starts_with('2') {
        return Ok(r1);
    }
    for rc in rcpts {
        send(format!("RCPT TO:<{rc}>\r\n").as_bytes())?;
        let r2 = reply()?;
        if !r2.starts_with('2') {
            return Ok(r2);
        }
    }
    send(b"DATA\r\n")?;
    let r3 = reply()?;
    if !r3.starts_with('3') {
        return Ok(r3);
    }
    assert!(message.ends_with(b"\r\n"), "messages end with CRLF");
    let mut wire = Vec::with_capacity(message.len() + 64);
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            wire.push(b'.');
        }
        wire.extend_from_slice(line);
    }
    wire.extend_from_slice(b".\r\n");
    send(&wire)?;
    let end = reply()?;
    let _ = send(b"QUIT\r\n");
    Ok(end)
}

/// (headers, body) at the first empty line.
fn split(message: &[u8]) -> (&[u8], &[u8]) {
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => (&message[..p + 2], &message[p + 4..]),
        None => (message, &[]),
    }
}

/// Header `name` of `message`, unfolded.
fn header(message: &[u8], name: &str) -> Option<String> {
    let (head, _) = split(message);
    let head = String::from_utf8_lossy(head)
        .replace("\r\n ", " ")
        .replace("\r\n\t", "\t");
    let prefix = format!("{}:", name.to_ascii_lowercase());
    head.lines()
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim().to_string())
}

/// Whether `bytes` hold the SSN in any usual spelling.
fn holds_ssn(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes).replace("=\r\n", "");
    [SSN, "536224817", "536 22 4817"]
        .iter()
        .any(|v| text.contains(v))
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// A quarantine-worthy message: the SSN labelled as such, plus bytes a careless relay would
/// change (leading dots, a lone dot, trailing blanks, tabs, 8-bit text, empty lines).
fn ssn_message(marker: &str, to: &str) -> Vec<u8> {
    let lines = [
        "From: Pat Clerk <pat@city.test>".to_string(),
        format!("To: {to}"),
        format!("Subject: Onboarding {marker}"),
        "X-Test-Folded: first part of a folded header".to_string(),
        "\tsecond part of it".to_string(),
        format!("Message-ID: <{marker}@city.test>"),
        "Date: Sun, 22 Nov 2026 10:00:00 +0000".to_string(),
        "MIME-Version: 1.0".to_string(),
        "Content-Type: text/plain; charset=utf-8".to_string(),
        "Content-Transfer-Encoding: 8bit".to_string(),
        String::new(),
        "Hello,".to_string(),
        String::new(),
        format!("Employee Jane Testperson, SSN {SSN}, starts Monday."),
        format!("Reference {marker}."),
        ".a line that starts with a dot".to_string(),
        "..two dots".to_string(),
        ".".to_string(),
        "trailing blanks   ".to_string(),
        "\ttab-indented line\twith a tab".to_string(),
        "Café in München, naïve façade – déjà vu".to_string(),
        String::new(),
        String::new(),
        "Thanks,".to_string(),
        "Pat".to_string(),
    ];
    let mut m = lines.join("\r\n");
    m.push_str("\r\n");
    m.into_bytes()
}

fn field<'a>(v: &'a serde_json::Value, name: &str) -> &'a str {
    v.get(name).and_then(|s| s.as_str()).unwrap_or("")
}

fn strings(v: &serde_json::Value, name: &str) -> Vec<String> {
    v.get(name)
        .and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn quarantined_mail_is_stored_released_exactly_and_audited() {
    let h = Harness::start("release");
    let sender = "pat@city.test";
    let rcpts = ["sam@example.com", "lee@partner.example"];
    let marker1 = format!("q1-{}", std::process::id());
    let marker2 = format!("q2-{}", std::process::id());
    let msg1 = ssn_message(&marker1, &rcpts.join(", "));
    let msg2 = ssn_message(&marker2, rcpts[0]);

    // 1. Accepted by Postfix (250), kept only by maildlp: not delivered, not in Postfix's queue.
    let r = submit(h.smtp_port, sender, &rcpts, &msg1);
    assert!(
        matches!(&r, Ok(s) if s.starts_with("250")),
        "quarantined message: {r:?}\n{}",
        h.context()
    );
    let r = submit(h.smtp_port, sender, &rcpts[..1], &msg2);
    assert!(
        matches!(&r, Ok(s) if s.starts_with("250")),
        "second quarantined message: {r:?}\n{}",
        h.context()
    );
    let queue = h.postfix().queue();
    assert!(
        !queue.contains("sam@example.com") && !queue.contains("lee@partner.example"),
        "a quarantined message is in Postfix's queue:\n{queue}\n{}",
        h.context()
    );
    std::thread::sleep(Duration::from_secs(3));
    let leaked: Vec<Delivery> = h
        .deliveries()
        .into_iter()
        .filter(|d| contains(&d.data, &marker1) || contains(&d.data, &marker2))
        .filter(|d| d.mail_from == sender)
        .collect();
    assert!(
        leaked.is_empty(),
        "a quarantined message reached the sink: {leaked:?}\n{}",
        h.context()
    );
    h.wait_for(
        "Postfix's log of the DISCARD of both messages",
        Duration::from_secs(10),
        || {
            h.postfix()
                .log()
                .matches("milter triggers DISCARD action")
                .count()
                >= 2
        },
    );
    let queue = h.postfix().queue();
    assert!(
        !queue.contains("sam@example.com"),
        "a quarantined message is in Postfix's queue:\n{queue}\n{}",
        h.context()
    );

    // 2. maildlp's store has both, held, with rules and kinds and no value.
    let (list_text, rows) = h.list(&[]);
    assert!(
        !holds_ssn(list_text.as_bytes()),
        "quarantine list shows the value:\n{list_text}"
    );
    let find = |rows: &[serde_json::Value], marker: &str| -> serde_json::Value {
        rows.iter()
            .find(|r| field(r, "subject").contains(marker))
            .cloned()
            .unwrap_or_else(|| panic!("no message with subject {marker} in the list:\n{rows:#?}"))
    };
    let m1 = find(&rows, &marker1);
    let m2 = find(&rows, &marker2);
    let id1 = field(&m1, "id").to_string();
    let id2 = field(&m2, "id").to_string();
    assert!(!id1.is_empty() && id1 != id2, "{m1} {m2}");
    for m in [&m1, &m2] {
        assert_eq!(field(m, "status"), "held", "{m}");
        assert!(
            strings(m, "rules").iter().any(|r| r == "sensitive_info"),
            "{m}"
        );
        assert!(strings(m, "kinds").iter().any(|k| k == "us_ssn"), "{m}");
        assert_eq!(field(m, "sender"), sender, "{m}");
    }
    assert_eq!(strings(&m1, "recipients"), rcpts.to_vec(), "{m1}");
    let show = h.cli_ok(&["quarantine", "show", &id1]);
    assert!(
        !holds_ssn(show.as_bytes()),
        "quarantine show holds the value:\n{show}"
    );
    assert!(
        show.contains(SSN_MASKED),
        "quarantine show lacks the masked sample {SSN_MASKED}:\n{show}"
    );
    let show_json = h.cli_ok(&["quarantine", "show", &id1, "--format", "json"]);
    assert!(
        !holds_ssn(show_json.as_bytes()) && show_json.contains(SSN_MASKED),
        "quarantine show --format json:\n{show_json}"
    );

    // The stored message is the one Postfix was given: headers and body unchanged. Exactness
    // findings are collected and asserted at the end, so that one of them does not hide the
    // rest of the quarantine's behaviour.
    let mut defects: Vec<String> = Vec::new();
    let raw = h
        .cli(&["quarantine", "show", &id1, "--raw", "--reason", "test"])
        .stdout;
    let (raw_head, raw_body) = split(&raw);
    let (sent_head, sent_body) = split(&msg1);
    if raw_body != sent_body {
        defects.push(format!(
            "stored body differs from the submitted one:\nstored:    {:?}\nsubmitted: {:?}",
            String::from_utf8_lossy(raw_body),
            String::from_utf8_lossy(sent_body)
        ));
    }
    for line in String::from_utf8_lossy(sent_head).split("\r\n") {
        if line.is_empty() || line.starts_with("X-Test-Folded") || line.starts_with('\t') {
            continue;
        }
        assert!(
            contains(raw_head, &format!("{line}\r\n")),
            "stored headers lack {line:?}:\n{:?}",
            String::from_utf8_lossy(raw_head)
        );
    }
    if !contains(raw_head, FOLDED) {
        defects.push(format!(
            "the folded header is not stored as it came (CRLF-terminated lines); stored \
             headers: {:?}",
            String::from_utf8_lossy(raw_head)
        ));
    }

    // 3. Notices through Postfix to the sink: one to the sender, one incident report, no value.
    let notices_for = |id: &str| -> Vec<Delivery> {
        h.deliveries()
            .into_iter()
            .filter(|d| d.mail_from == "maildlp@city.test")
            .filter(|d| header(&d.data, "Subject").is_some_and(|s| s.contains(id)))
            .collect()
    };
    h.wait_for(
        "the sender notice and the incident report of the first message",
        Duration::from_secs(20),
        || notices_for(&id1).len() >= 2,
    );
    std::thread::sleep(Duration::from_millis(500));
    let notices = notices_for(&id1);
    let to_sender: Vec<&Delivery> = notices
        .iter()
        .filter(|d| d.rcpt_to == [sender.to_string()])
        .collect();
    let to_officer: Vec<&Delivery> = notices
        .iter()
        .filter(|d| d.rcpt_to == ["security@city.test".to_string()])
        .collect();
    assert_eq!(
        (to_sender.len(), to_officer.len()),
        (1, 1),
        "notices about {id1}: {notices:#?}"
    );
    assert!(
        header(&to_officer[0].data, "Subject").is_some_and(|s| s.contains("incident")),
        "{:?}",
        String::from_utf8_lossy(&to_officer[0].data)
    );
    for d in h
        .deliveries()
        .iter()
        .filter(|d| d.mail_from == "maildlp@city.test")
    {
        assert!(
            !holds_ssn(&d.data),
            "a notice holds the value:\n{}",
            String::from_utf8_lossy(&d.data)
        );
    }

    // 4. Release: the original message with its envelope, one header more.
    let release_to = format!("127.0.0.1:{}", h.release_port);
    let out = h.cli(&[
        "quarantine",
        "release",
        &id1,
        "--reason",
        "approved by test",
        "--release-to",
        &release_to,
    ]);
    assert!(
        out.status.success(),
        "release failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        h.context()
    );
    let released = |h: &Harness| -> Vec<Delivery> {
        h.deliveries()
            .into_iter()
            .filter(|d| d.mail_from == sender && contains(&d.data, &marker1))
            .collect()
    };
    h.wait_for(
        "the released message at the sink",
        Duration::from_secs(20),
        || {
            let got: usize = released(&h).iter().map(|d| d.rcpt_to.len()).sum();
            got >= rcpts.len()
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    let got = released(&h);
    let mut envelope_rcpts: Vec<String> = got.iter().flat_map(|d| d.rcpt_to.clone()).collect();
    envelope_rcpts.sort();
    let mut want: Vec<String> = rcpts.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(
        envelope_rcpts, want,
        "envelope recipients of the released message"
    );
    for d in &got {
        let (head, body) = split(&d.data);
        let stamp = header(&d.data, "X-Maildlp-Released").unwrap_or_default();
        assert!(
            stamp.starts_with(&format!("id={id1};")) && stamp.contains("by=root"),
            "X-Maildlp-Released: {stamp:?}\nheaders:\n{}",
            String::from_utf8_lossy(head)
        );
        if body != sent_body {
            defects.push(format!(
                "released body differs from the submitted one:\nreleased:  {:?}\nsubmitted: {:?}",
                String::from_utf8_lossy(body),
                String::from_utf8_lossy(sent_body)
            ));
        }
        if !contains(head, FOLDED) {
            defects.push(format!(
                "the folded header did not reach the next hop as it was submitted; headers \
                 there: {:?}",
                String::from_utf8_lossy(head)
            ));
        }
    }

    // 5. Released once: listed as released, a second release is refused.
    let (_, rows) = h.list(&["--status", "released"]);
    assert!(
        rows.iter().any(|r| field(r, "id") == id1),
        "not listed as released: {rows:#?}"
    );
    let again = h.cli(&[
        "quarantine",
        "release",
        &id1,
        "--reason",
        "again",
        "--release-to",
        &release_to,
    ]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success() && err.contains("not held"),
        "second release: {} {err}",
        again.status
    );

    // 6. Release to a port where nothing listens: refused, the message stays held.
    let dead = format!("127.0.0.1:{}", free_port());
    let out = h.cli(&[
        "quarantine",
        "release",
        &id2,
        "--reason",
        "try a dead hop",
        "--release-to",
        &dead,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("delivery to") && err.contains("failed"),
        "release to a dead hop: {} {err}",
        out.status
    );
    let (_, rows) = h.list(&["--status", "held"]);
    assert!(
        rows.iter().any(|r| field(r, "id") == id2),
        "after a failed release the message is not held: {rows:#?}"
    );

    // 7. The audit log: hold, release (by root, with the reason), release_failed.
    let audit = h.audit();
    assert!(
        !holds_ssn(format!("{audit:?}").as_bytes()),
        "the audit log holds the value"
    );
    let entry = |id: &str, action: &str| -> Option<serde_json::Value> {
        audit
            .iter()
            .find(|e| field(e, "message_id") == id && field(e, "action") == action)
            .cloned()
    };
    assert!(entry(&id1, "hold").is_some(), "no hold entry: {audit:#?}");
    assert!(entry(&id2, "hold").is_some(), "no hold entry: {audit:#?}");
    let rel = entry(&id1, "release").unwrap_or_else(|| panic!("no release entry: {audit:#?}"));
    assert_eq!(field(&rel, "actor"), "root", "{rel}");
    assert_eq!(field(&rel, "reason"), "approved by test", "{rel}");
    assert!(
        entry(&id2, "release_failed").is_some(),
        "no release_failed entry: {audit:#?}"
    );
    assert!(
        entry(&id2, "release").is_none(),
        "a failed release recorded as release: {audit:#?}"
    );

    // 8. Delete: content erased, record kept.
    h.cli_ok(&["quarantine", "delete", &id2, "--reason", "x"]);
    let show = h.cli_ok(&["quarantine", "show", &id2]);
    assert!(
        show.contains("status:      deleted") && show.contains("content erased"),
        "show after delete:\n{show}"
    );
    let raw = h.cli(&["quarantine", "show", &id2, "--raw", "--reason", "x"]);
    assert!(
        !raw.status.success() && !contains(&raw.stdout, &marker2),
        "deleted content still readable"
    );

    let log = h.maildlp_log();
    assert!(!holds_ssn(log.as_bytes()), "a value reached maildlp's log");
    assert!(
        !holds_ssn(h.postfix().log().as_bytes()),
        "a value reached Postfix's log"
    );
    assert!(
        defects.is_empty(),
        "the quarantine does not keep or release the message exactly:\n{}",
        defects.join("\n")
    );
}

#[test]
fn kill_9_during_a_burst_loses_nothing() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 10;
    const KILL_AFTER: usize = 10;
    let mut h = Harness::start("burst");
    let sender = "burst@city.test";
    let answered = Arc::new(AtomicUsize::new(0));
    let replies: Arc<Mutex<BTreeMap<String, Result<String, String>>>> = Arc::default();
    let tag = std::process::id();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let answered = answered.clone();
            let replies = replies.clone();
            let port = h.smtp_port;
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let marker = format!("burst-{tag}-{}", t * PER_THREAD + i);
                    let msg = ssn_message(&marker, "sam@example.com");
                    let r = submit(port, sender, &["sam@example.com"], &msg);
                    if let Ok(mut m) = replies.lock() {
                        m.insert(marker, r);
                    }
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    let start = Instant::now();
    while answered.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "only {} of the burst answered in 40 s\n{}",
            answered.load(Ordering::SeqCst),
            h.context()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let answered_at_kill = answered.load(Ordering::SeqCst);
    // SIGKILL: no shutdown, no flush; whatever the store has committed is all there is.
    if let Some(mut m) = h.milter.take() {
        m.0.kill().expect("kill -9 maildlp");
        let _ = m.0.wait();
    }
    for t in threads {
        t.join().expect("submitting thread");
    }
    let replies = replies.lock().map(|m| m.clone()).unwrap_or_default();
    assert_eq!(replies.len(), THREADS * PER_THREAD);

    let (list_text, rows) = h.list(&[]);
    assert!(!holds_ssn(list_text.as_bytes()), "list shows the value");
    let mut accepted = 0;
    let mut refused = 0;
    let mut stored_after_4xx = 0;
    for (marker, reply) in &replies {
        let row = rows
            .iter()
            .find(|r| field(r, "subject").ends_with(&format!("Onboarding {marker}")));
        match reply {
            Ok(r) if r.starts_with("250") => {
                accepted += 1;
                let row = row.unwrap_or_else(|| {
                    panic!(
                        "{marker} got {r:?} but is not in the store (lost by the crash)\n\
                         store: {list_text}\n{}",
                        h.context()
                    )
                });
                assert_eq!(field(row, "status"), "held", "{row}");
                let raw = h.cli(&[
                    "quarantine",
                    "show",
                    field(row, "id"),
                    "--raw",
                    "--reason",
                    "crash-test",
                ]);
                assert!(
                    raw.status.success() && contains(&raw.stdout, &format!("Reference {marker}.")),
                    "{marker}: stored but not whole or not decryptable: {}\n{}",
                    raw.status,
                    String::from_utf8_lossy(&raw.stderr)
                );
            }
            Ok(r) if r.starts_with('4') => {
                refused += 1;
                if row.is_some() {
                    // Stored, then killed before the answer: kept twice at worst, never lost.
                    stored_after_4xx += 1;
                }
            }
            Err(e) => {
                refused += 1;
                if row.is_some() {
                    stored_after_4xx += 1;
                }
                eprintln!("{marker}: connection error {e}");
            }
            Ok(r) => panic!("{marker}: neither 250 nor 4xx: {r:?}\n{}", h.context()),
        }
    }
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for reply in replies.values() {
        let first = match reply {
            // The reply code and text, without Postfix's queue id.
            Ok(r) => r
                .lines()
                .next()
                .unwrap_or("")
                .split(": queued as")
                .next()
                .unwrap_or("")
                .to_string(),
            Err(e) => format!("error: {e}"),
        };
        *kinds.entry(first).or_default() += 1;
    }
    eprintln!("burst replies: {kinds:?}");
    eprintln!(
        "burst: {accepted} accepted, {refused} refused ({stored_after_4xx} of them stored before \
         the kill), {answered_at_kill} answered at the kill"
    );
    assert!(
        accepted >= 1,
        "no message was accepted before the kill: the test proves nothing\n{}",
        h.context()
    );
    assert!(
        refused >= 1,
        "every message was accepted before the kill took effect: the test proves nothing \
         (kill earlier)\n{}",
        h.context()
    );

    // Nothing of the burst was delivered: accepted ones are discarded by Postfix (maildlp has
    // them), refused ones stay with the client.
    std::thread::sleep(Duration::from_secs(2));
    let leaked: Vec<String> = h
        .deliveries()
        .iter()
        .filter(|d| d.mail_from == sender)
        .map(|d| String::from_utf8_lossy(&d.data).into_owned())
        .collect();
    assert!(
        leaked.is_empty(),
        "burst messages reached the sink: {leaked:#?}\n{}",
        h.context()
    );
    let queue: String = h.postfix().queue().split_whitespace().collect();
    assert!(
        !queue.contains(&format!("\"sender\":\"{sender}\"")),
        "burst messages in Postfix's queue:\n{queue}"
    );
}

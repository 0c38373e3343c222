//! maildlp in a real Sendmail's path: Debian's Sendmail 8.17 unpacked by
//! `.ci/install-sendmail.sh`, run as a private daemon on loopback ports (own config, queue and
//! pid files; tests/support/sendmail.rs) with `maildlp milter` as its `INPUT_MAIL_FILTER`
//! (`F=T`), relaying to a loopback SMTP sink. Checks what Sendmail does with each verdict:
//! clean and tagged mail delivered with maildlp's headers, a rejected message refused at the
//! end of DATA with the policy's reason, a quarantined message discarded by Sendmail and kept
//! in maildlp's store (store mode) or kept in Sendmail's own quarantine (hold mode), and a
//! tempfail when maildlp is down. Fails when Sendmail is not installed, unless
//! `MAILDLP_SKIP_SENDMAIL=1`. Needs root, as in CI.

#[path = "support/postfix.rs"]
mod postfix;
#[path = "support/sendmail.rs"]
mod sendmail;

use postfix::{Delivery, Milter, Outgoing, Sink, free_port, submit, submit_all};
use sendmail::{Ports, Sendmail};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The synthetic SSN of the fixtures (not a real person's).
const SSN: &str = "536-22-4817";

fn fixture(name: &str) -> Vec<u8> {
    let raw = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/policy/mail")
            .join(name),
    )
    .expect("fixture message");
    // CRLF lines, as on the wire.
    let text = String::from_utf8_lossy(&raw).replace("\r\n", "\n");
    text.replace('\n', "\r\n").into_bytes()
}

/// The body of `message` (after the first empty line).
fn body(message: &[u8]) -> &[u8] {
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => &message[p + 4..],
        None => &[],
    }
}

fn holds_ssn(text: &str) -> bool {
    [SSN, "536224817", "536 22 4817"]
        .iter()
        .any(|v| text.contains(v))
}

/// The fixture policy, with notices sent straight to the sink (not through Sendmail).
fn policy(dir: &Path, sink_port: u16) -> PathBuf {
    let fixture = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/policy/policy.toml"),
    )
    .expect("fixture policy");
    assert!(
        fixture.contains("\nsmtp_port = 25\n"),
        "fixtures/policy/policy.toml changed: no `smtp_port = 25` under [notices]"
    );
    let path = dir.join("policy.toml");
    std::fs::write(
        &path,
        fixture.replace(
            "\nsmtp_port = 25\n",
            &format!("\nsmtp_port = {sink_port}\n"),
        ),
    )
    .expect("policy");
    path
}

/// `maildlp milter --listen LISTEN` (`inet:127.0.0.1:PORT` or `unix:/path`) in quarantine
/// `mode`, its stderr appended to `dir/maildlp.log`; returns once it accepts connections.
fn start_maildlp(dir: &Path, listen: &str, policy: &Path, mode: &str) -> Milter {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("maildlp.log"))
        .expect("maildlp log");
    let child = Command::new(env!("CARGO_BIN_EXE_maildlp"))
        .args(["milter", "--listen", listen])
        .args(["--quarantine-mode", mode, "--policy"])
        .arg(policy)
        .arg("--data-dir")
        .arg(dir.join("maildlp-data"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start maildlp milter");
    let milter = Milter(child);
    let up = || match listen.strip_prefix("unix:") {
        Some(path) => std::os::unix::net::UnixStream::connect(path).is_ok(),
        None => TcpStream::connect(listen.trim_start_matches("inet:")).is_ok(),
    };
    let start = Instant::now();
    while !up() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "maildlp milter did not start on {listen}:\n{}",
            std::fs::read_to_string(dir.join("maildlp.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    milter
}

/// Sendmail's queue id in its reply to the end of DATA: `250 2.0.0 <id> Message accepted ...`.
fn queue_id(reply: &str) -> String {
    reply.split_whitespace().nth(2).unwrap_or("").to_string()
}

/// `maildlp quarantine list --format json` with the test's store: one value per message.
fn quarantine_list(dir: &Path) -> (String, Vec<serde_json::Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_maildlp"))
        .args(["quarantine", "list", "--format", "json", "--data-dir"])
        .arg(dir.join("maildlp-data"))
        .output()
        .expect("run maildlp quarantine list");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "quarantine list failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("list line {l:?}: {e}")))
        .collect();
    (text, rows)
}

fn field<'a>(v: &'a serde_json::Value, name: &str) -> &'a str {
    v.get(name).and_then(|s| s.as_str()).unwrap_or("")
}

/// A test's directory, removed at the end unless the test failed.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path =
            std::env::temp_dir().join(format!("maildlp-sendmail-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("test dir");
        Dir(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for inspection", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn sendmail_delivers_rejects_quarantines_and_tempfails_by_the_policy() {
    let Some(prefix) = sendmail::installed_or_skip() else {
        return;
    };
    let dir = Dir::new("tcp");
    let dir_path = dir.0.clone();
    let sink = Sink::start();
    let ports = Ports {
        smtp: free_port(),
        sink: sink.port,
        milter: free_port(),
    };
    let policy = policy(&dir_path, sink.port);
    let inet = format!("inet:127.0.0.1:{}", ports.milter);
    let mut milter = Some(start_maildlp(&dir_path, &inet, &policy, "store"));
    let sm = Sendmail::start(&prefix, &dir_path.join("sendmail"), &ports);
    let maildlp_log = || std::fs::read_to_string(dir_path.join("maildlp.log")).unwrap_or_default();
    let context = || format!("{}\n--- maildlp log ---\n{}", sm.context(), maildlp_log());
    let mail = |d: &Delivery| d.mail_from != "maildlp@city.test";

    // 1. One SMTP session, six transactions (the filter's message state must be reset between
    // them): each verdict on its own, in the default store mode.
    let clean = fixture("clean_outbound.eml");
    let personal = fixture("ssn_personal_account.eml");
    let outbound = fixture("ssn_outbound.eml");
    // The same with headers whose spacing an MTA would change unless asked not to.
    let odd = [
        b"X-Spaces:    four\r\nX-Tab:\tone tab\r\nX-None:tight\r\nX-Empty:\r\n\
          X-Folded: first\r\n\tsecond\r\n"
            .as_slice(),
        &outbound,
    ]
    .concat();
    let internal = fixture("ssn_internal.eml");
    let exception = fixture("exception_valid.eml");
    // Larger than Sendmail's 64 KiB body chunks: the filter gets it in several packets.
    let mut large = b"From: Pat Clerk <pat@city.test>\r\nTo: lee@partner.example\r\n\
        Subject: Minutes\r\nMessage-ID: <large@city.test>\r\n\r\n"
        .to_vec();
    for i in 0..6000 {
        large.extend_from_slice(
            format!("Line {i:05} of the minutes of the planning meeting.\r\n").as_bytes(),
        );
    }
    let replies = submit_all(
        sm.port,
        &[
            Outgoing {
                from: "pat@city.test",
                rcpts: &["sam@example.com"],
                message: &clean,
            },
            Outgoing {
                from: "pat@city.test",
                rcpts: &["me@gmail.com"],
                message: &personal,
            },
            Outgoing {
                from: "pat@city.test",
                rcpts: &["sam@example.com"],
                message: &odd,
            },
            Outgoing {
                from: "pat@city.test",
                rcpts: &["hr@city.test"],
                message: &internal,
            },
            Outgoing {
                from: "payroll@city.test",
                rcpts: &["agent@irs.example"],
                message: &exception,
            },
            Outgoing {
                from: "pat@city.test",
                rcpts: &["lee@partner.example"],
                message: &large,
            },
        ],
    );
    let reply = |i: usize| -> String {
        match &replies[i] {
            Ok(r) => r.clone(),
            Err(e) => panic!("transaction {i}: {e}\n{}", context()),
        }
    };
    for (i, what) in [
        (0, "clean"),
        (2, "quarantined"),
        (3, "tagged"),
        (4, "excepted"),
        (5, "large"),
    ] {
        assert!(
            reply(i).starts_with("250 "),
            "{what} message: {:?}\n{}",
            reply(i),
            context()
        );
    }

    // maildlp judged each accepted message under Sendmail's queue id (macro `i`).
    let log = maildlp_log();
    for i in [0, 2, 3, 4, 5] {
        let qid = queue_id(&reply(i));
        assert!(
            log.lines()
                .any(|l| l.contains("verdict") && l.contains(&format!("queue_id=\"{qid}\""))),
            "no verdict for Sendmail's queue id {qid:?} in maildlp's log:\n{log}"
        );
    }

    // Clean: delivered as sent, through Sendmail (its Received header), nothing added.
    let clean_d = sink
        .wait_for(Duration::from_secs(20), |d| {
            mail(d) && d.rcpt_to == ["sam@example.com"] && d.data.ends_with(body(&clean))
        })
        .unwrap_or_else(|| panic!("the clean message did not reach the sink\n{}", context()));
    assert!(
        clean_d.text().contains("by maildlp-e2e.test"),
        "{}",
        clean_d.head()
    );
    assert_eq!(clean_d.mail_from, "pat@city.test");
    assert_eq!(
        clean_d.header("X-Maildlp-Verdict"),
        None,
        "{}",
        clean_d.head()
    );

    // Large: judged whole (maildlp's verdict line) and delivered unchanged.
    let large_d = sink
        .wait_for(Duration::from_secs(20), |d| {
            mail(d) && d.rcpt_to == ["lee@partner.example"]
        })
        .unwrap_or_else(|| panic!("the large message did not reach the sink\n{}", context()));
    assert!(
        large_d.data.ends_with(body(&large)),
        "the large message's body changed on the way ({} bytes delivered, {} sent)",
        large_d.data.len(),
        large.len()
    );

    // Rejected: 550 5.7.1 with the policy's reason at the end of DATA, no value in it.
    let r = reply(1);
    assert!(r.starts_with("550 5.7.1 "), "{r}\n{}", context());
    assert!(
        r.contains("may not be sent to a personal account (gmail.com)"),
        "the policy's reason is not in Sendmail's reply: {r}"
    );
    assert!(!holds_ssn(&r), "the reply holds the value: {r}");

    // Tagged (internal) and excepted (must travel over TLS): delivered with maildlp's headers.
    let tagged = sink
        .wait_for(Duration::from_secs(20), |d| {
            mail(d) && d.rcpt_to == ["hr@city.test"]
        })
        .unwrap_or_else(|| panic!("the tagged message did not reach the sink\n{}", context()));
    assert!(
        tagged
            .head()
            .contains("\r\nX-Maildlp-Verdict: tag; rules=sensitive_info"),
        "{}",
        tagged.head()
    );
    let excepted = sink
        .wait_for(Duration::from_secs(20), |d| {
            mail(d) && d.rcpt_to == ["agent@irs.example"]
        })
        .unwrap_or_else(|| panic!("the excepted message did not reach the sink\n{}", context()));
    assert!(
        excepted.head().contains("\r\nX-Maildlp-Require-TLS: yes"),
        "{}",
        excepted.head()
    );

    // Quarantined, store mode: Sendmail said 250 and discarded it; maildlp's store has it,
    // under Sendmail's queue id, with the rule and kind and without the value.
    let qid = queue_id(&reply(2));
    let (list_text, rows) = quarantine_list(&dir_path);
    assert!(!holds_ssn(&list_text), "quarantine list shows the value");
    let row = rows
        .iter()
        .find(|r| field(r, "queue_id") == qid)
        .unwrap_or_else(|| {
            panic!("Sendmail's queue id {qid:?} is not in maildlp's store:\n{list_text}")
        });
    assert_eq!(field(row, "status"), "held", "{row}");
    assert_eq!(field(row, "mode"), "store", "{row}");
    assert_eq!(field(row, "sender"), "pat@city.test", "{row}");
    assert_eq!(
        row["recipients"],
        serde_json::json!(["sam@example.com"]),
        "{row}"
    );
    assert!(
        row["rules"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r == "sensitive_info")),
        "{row}"
    );
    assert!(
        row["kinds"]
            .as_array()
            .is_some_and(|a| a.iter().any(|k| k == "us_ssn")),
        "{row}"
    );
    // The store holds the message Sendmail was given, byte for byte, odd header spacing and
    // all (Sendmail does not show its own Received header to filters).
    let raw = Command::new(env!("CARGO_BIN_EXE_maildlp"))
        .args([
            "quarantine",
            "show",
            field(row, "id"),
            "--raw",
            "--reason",
            "test",
        ])
        .arg("--data-dir")
        .arg(dir_path.join("maildlp-data"))
        .output()
        .expect("run maildlp quarantine show --raw");
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    let head = |m: &[u8]| String::from_utf8_lossy(&m[..m.len() - body(m).len()]).into_owned();
    assert!(
        raw.stdout == odd,
        "the stored message differs from the submitted one ({} bytes stored, {} sent; bodies \
         {}); stored headers:\n{:?}\nsubmitted headers:\n{:?}",
        raw.stdout.len(),
        odd.len(),
        if body(&raw.stdout) == body(&odd) {
            "equal"
        } else {
            "differ"
        },
        head(&raw.stdout),
        head(&odd)
    );
    let files = sm.queue_files();
    assert!(
        !files.iter().any(|f| f.ends_with(&qid)),
        "a discarded message is still in Sendmail's queue: {files:?}\n{}",
        context()
    );

    // 2. maildlp down: F=T makes Sendmail answer 4xx (the client keeps the message).
    drop(milter.take());
    let r = submit(sm.port, "pat@city.test", &["sam@example.com"], &clean);
    let r = r.unwrap_or_else(|e| panic!("with maildlp down: {e}\n{}", context()));
    assert!(
        r.starts_with("451 4.3.2 "),
        "with maildlp down Sendmail answered {r:?}, not a tempfail\n{}",
        context()
    );

    // 3. Hold mode: stored by maildlp and kept in Sendmail's quarantine (an hf file, listed by
    // `sendmail -bp -qQ` with maildlp's reason), the store's id in a header; not delivered.
    let _milter = start_maildlp(&dir_path, &inet, &policy, "hold");
    let r = submit(sm.port, "pat@city.test", &["sam@example.com"], &outbound);
    let r = r.unwrap_or_else(|e| panic!("hold mode: {e}\n{}", context()));
    assert!(r.starts_with("250 "), "hold mode: {r}\n{}", context());
    let hid = queue_id(&r);
    let hf = sm.dir.join("queue").join(format!("hf{hid}"));
    let hf_text = String::from_utf8_lossy(
        &std::fs::read(&hf).unwrap_or_else(|e| panic!("{}: {e}\n{}", hf.display(), context())),
    )
    .into_owned();
    let (list_text, rows) = quarantine_list(&dir_path);
    let row = rows
        .iter()
        .find(|r| field(r, "queue_id") == hid)
        .unwrap_or_else(|| panic!("queue id {hid:?} is not in maildlp's store:\n{list_text}"));
    assert_eq!(field(row, "mode"), "hold", "{row}");
    let store_id = field(row, "id");
    assert!(
        hf_text.contains(&format!("X-Maildlp-Quarantine-Id: {store_id}")),
        "Sendmail's quarantined copy lacks the store's id {store_id}:\n{}",
        hf_text
            .lines()
            .filter(|l| l.starts_with('H') || l.starts_with('q'))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        hf_text.contains("\nqmaildlp: sensitive_info"),
        "no quarantine reason in {}",
        hf.display()
    );
    let quarantined = sm.quarantine();
    assert!(
        quarantined.contains(&hid) && quarantined.contains("QUARANTINE: maildlp: sensitive_info"),
        "`sendmail -bp -qQ` does not list {hid} with maildlp's reason:\n{quarantined}"
    );
    let files = sm.queue_files();
    assert!(
        !files.contains(&format!("qf{hid}")),
        "the quarantined message is also in the delivery queue: {files:?}"
    );

    // Nothing quarantined or rejected reached the sink, and no value reached a log.
    std::thread::sleep(Duration::from_millis(500));
    let leaked: Vec<String> = sink
        .deliveries()
        .iter()
        .filter(|d| mail(d) && d.rcpt_to != ["hr@city.test"] && d.rcpt_to != ["agent@irs.example"])
        .filter(|d| holds_ssn(&d.text()))
        .map(|d| format!("to {:?}, subject {:?}", d.rcpt_to, d.header("Subject")))
        .collect();
    assert!(
        leaked.is_empty(),
        "quarantined or rejected mail delivered: {leaked:#?}"
    );
    let log = maildlp_log();
    assert!(log.contains("verdict"), "{log}");
    assert!(!holds_ssn(&log), "a value reached maildlp's log");
    assert!(
        !holds_ssn(&sm.output()),
        "a value reached Sendmail's output"
    );
}

/// maildlp on a Unix socket (`S=unix:/path`, the faster socket): Sendmail connects to it and
/// applies its verdicts as over TCP.
#[test]
fn sendmail_over_a_unix_socket() {
    let Some(prefix) = sendmail::installed_or_skip() else {
        return;
    };
    let dir = Dir::new("unix");
    let sink = Sink::start();
    let policy = policy(&dir.0, sink.port);
    // Sendmail refuses a socket with a group- or world-writable directory anywhere above it
    // ("unsafe: World writable directory"): not under /tmp, but where a real one would be.
    let run = Dir(PathBuf::from(format!(
        "/run/maildlp-sendmail-test-{}",
        std::process::id()
    )));
    let _ = std::fs::remove_dir_all(&run.0);
    std::fs::create_dir_all(&run.0).expect("socket dir in /run");
    let socket = run.0.join("maildlp.sock");
    let _milter = start_maildlp(
        &dir.0,
        &format!("unix:{}", socket.display()),
        &policy,
        "store",
    );
    let sm = Sendmail::start_with(
        &prefix,
        &dir.0.join("sendmail"),
        free_port(),
        sink.port,
        &format!("unix:{}", socket.display()),
    );
    let context = || {
        format!(
            "{}\n--- maildlp log ---\n{}",
            sm.context(),
            std::fs::read_to_string(dir.0.join("maildlp.log")).unwrap_or_default()
        )
    };
    let internal = fixture("ssn_internal.eml");
    let personal = fixture("ssn_personal_account.eml");
    let replies = submit_all(
        sm.port,
        &[
            Outgoing {
                from: "pat@city.test",
                rcpts: &["hr@city.test"],
                message: &internal,
            },
            Outgoing {
                from: "pat@city.test",
                rcpts: &["me@gmail.com"],
                message: &personal,
            },
        ],
    );
    assert!(
        matches!(&replies[0], Ok(r) if r.starts_with("250 ")),
        "tagged message: {:?}\n{}",
        replies[0],
        context()
    );
    assert!(
        matches!(&replies[1], Ok(r) if r.starts_with("550 5.7.1 ")),
        "rejected message: {:?}\n{}",
        replies[1],
        context()
    );
    let tagged = sink
        .wait_for(Duration::from_secs(20), |d| d.rcpt_to == ["hr@city.test"])
        .unwrap_or_else(|| panic!("the tagged message did not reach the sink\n{}", context()));
    assert_eq!(
        tagged.header("X-Maildlp-Verdict").as_deref(),
        Some("tag; rules=sensitive_info"),
        "{}",
        tagged.head()
    );
}

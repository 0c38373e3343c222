//! `maildlp relay` as Postfix's after-queue content filter, end to end: a private Postfix
//! (tests/support/postfix.rs) with `content_filter = maildlp:[127.0.0.1]:RELAY`, the `maildlp`
//! smtp transport and the re-injection smtpd of the README's recipe in master.cf; the relay's
//! next hop is that re-injection port; Postfix relays everything to a loopback sink. Clean mail
//! arrives at the sink; a rejected message is bounced by Postfix to its sender (with the
//! policy's 550 text); a quarantined one is held in the relay's store and never arrives; while
//! the re-injection listener is down, Postfix keeps the message deferred (the relay said 451)
//! and delivers it once the listener is back. Needs Debian's postfix and root, as in CI.

#[path = "support/postfix.rs"]
mod postfix;
#[path = "support/relay_sink.rs"]
mod relay_sink;

use postfix::Sink;
use postfix::{Milter, Ports, Postfix, free_port};
use relay_sink::Client;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A synthetic SSN (not a real person's).
const SSN: &str = "536-22-4817";

/// The README's master.cf entries: the filter transport and the re-injection listener.
fn filter_services(reinject: u16) -> String {
    format!(
        "maildlp unix - - n - 10 smtp\n  \
         -o smtp_send_xforward_command=yes\n  \
         -o disable_mime_output_conversion=yes\n\
         {}",
        reinject_service(reinject)
    )
}

fn reinject_service(reinject: u16) -> String {
    format!(
        "127.0.0.1:{reinject} inet n - n - 10 smtpd\n  \
         -o content_filter=\n  \
         -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters\n  \
         -o smtpd_milters=\n  \
         -o smtpd_helo_restrictions=\n  \
         -o smtpd_client_restrictions=\n  \
         -o smtpd_sender_restrictions=\n  \
         -o smtpd_recipient_restrictions=permit_mynetworks,reject\n  \
         -o smtpd_relay_restrictions=permit_mynetworks,reject\n  \
         -o mynetworks=127.0.0.0/8\n  \
         -o smtpd_authorized_xforward_hosts=127.0.0.0/8\n"
    )
}

fn wait_port(port: u16, what: &str, context: impl Fn() -> String) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what} on {port} did not start\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_until(
    what: &str,
    timeout: Duration,
    mut ok: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < timeout,
            "timed out waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Pat Clerk <pat@city.test>\r\nTo: Sam Vendor <sam@example.com>\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@city.test>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// The queue id in Postfix's `250 2.0.0 Ok: queued as ID`.
fn queued_as(reply: &str) -> String {
    reply
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The fixture policy (domains city.test: the bounce to the sender is internal mail), with
/// notices sent to a closed port instead of port 25.
fn policy(dir: &Path) -> PathBuf {
    let fixture = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/policy/policy.toml"),
    )
    .expect("fixture policy");
    assert!(
        fixture.contains("smtp_port = 25\n"),
        "fixture policy changed"
    );
    let text = fixture.replace(
        "smtp_port = 25\n",
        &format!("smtp_port = {}\n", free_port()),
    );
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).expect("policy");
    path
}

#[test]
fn postfix_content_filter_end_to_end() {
    let dir = std::env::temp_dir().join(format!(
        "maildlp-relay-pf-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).expect("test dir");
    let sink = Sink::start();
    let (smtp, relay_port, reinject) = (free_port(), free_port(), free_port());
    let data_dir = dir.join("maildlp-data");

    let log = std::fs::File::create(dir.join("relay.log")).expect("log");
    let relay = Milter(
        Command::new(env!("CARGO_BIN_EXE_maildlp"))
            .args(["relay", "--listen", &format!("127.0.0.1:{relay_port}")])
            .args(["--next-hop", &format!("127.0.0.1:{reinject}")])
            .arg("--policy")
            .arg(policy(&dir))
            .arg("--data-dir")
            .arg(&data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start maildlp relay"),
    );
    let relay_log = || std::fs::read_to_string(dir.join("relay.log")).unwrap_or_default();
    wait_port(relay_port, "maildlp relay", relay_log);

    // No milter here (milter port 0): the filter runs after the queue.
    let extra_main = format!(
        "content_filter = maildlp:[127.0.0.1]:{relay_port}\n\
         maximal_backoff_time = 10s\nminimal_backoff_time = 5s\nqueue_run_delay = 5s\n"
    );
    let pf = Postfix::start(
        &dir,
        &Ports {
            smtp,
            sink: sink.port,
            milter: 0,
        },
        &extra_main,
        &filter_services(reinject),
    );
    let context = || {
        let tail = |s: String, n: usize| {
            let l: Vec<&str> = s.lines().collect();
            l[l.len().saturating_sub(n)..].join("\n")
        };
        format!(
            "--- postfix log ---\n{}\n--- relay log ---\n{}\n--- queue ---\n{}",
            tail(pf.log(), 60),
            tail(relay_log(), 40),
            pf.queue()
        )
    };
    wait_port(smtp, "postfix smtpd", context);
    wait_port(reinject, "postfix re-injection smtpd", context);

    let mut c = Client::connect(smtp);
    assert!(c.reply().starts_with("220"));
    assert!(c.cmd("EHLO client.test").starts_with("250"));

    // Clean: queued by Postfix, filtered, re-injected, delivered to the sink unchanged.
    let clean = message("clean", "The north lot is resurfaced on Thursday.");
    let r = c.send_message("pat@city.test", &["sam@example.com"], &clean);
    assert!(r.starts_with("250"), "{r}\n{}", context());
    let clean_qid = queued_as(&r);
    let d = sink.wait_all("the clean message", Duration::from_secs(30), |d| {
        d.iter().any(|m| m.rcpt_to == ["sam@example.com"])
    });
    let got = &d[0];
    assert_eq!(got.mail_from, "pat@city.test");
    let text = String::from_utf8_lossy(&got.data);
    assert!(text.contains("Subject: clean"), "{text}");
    assert!(
        got.data
            .ends_with(b"\r\n\r\nThe north lot is resurfaced on Thursday.\r\n"),
        "{text}"
    );
    // Postfix told the relay its queue id (XFORWARD): the verdict line carries it.
    assert!(
        relay_log().contains(&format!("queue_id=\"{clean_qid}\"")),
        "no verdict line for {clean_qid}\n{}",
        context()
    );

    // Rejected (a password to an outside address): the relay answers 550, Postfix bounces the
    // message to its sender; the bounce is internal mail and reaches the sink.
    let secret = message("creds", "Your password: Xk9#mQ2!vL7p for the portal.");
    let r = c.send_message("pat@city.test", &["sam@example.com"], &secret);
    assert!(r.starts_with("250"), "{r}");
    let secret_qid = queued_as(&r);
    wait_until(
        "the bounce of the rejected message",
        Duration::from_secs(30),
        || {
            pf.log().lines().any(|l| {
                l.contains(&secret_qid) && l.contains("status=bounced") && l.contains("550 5.7.1")
            })
        },
        context,
    );
    let d = sink.wait_all("the bounce at the sink", Duration::from_secs(30), |d| {
        d.iter()
            .any(|m| m.mail_from.is_empty() && m.rcpt_to == ["pat@city.test"])
    });
    let bounce = d
        .iter()
        .find(|m| m.mail_from.is_empty())
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .unwrap_or_default();
    assert!(bounce.contains("550 5.7.1"), "{bounce}");
    assert!(bounce.contains("password"), "{bounce}");

    // Quarantined (an SSN to an outside address): held in the store, not delivered.
    let ssn = message("ssn", &format!("Employee SSN: {SSN}"));
    let r = c.send_message("pat@city.test", &["sam@example.com"], &ssn);
    assert!(r.starts_with("250"), "{r}");
    let ssn_qid = queued_as(&r);
    wait_until(
        "Postfix handing the SSN message to the relay",
        Duration::from_secs(30),
        || {
            pf.log().lines().any(|l| {
                l.contains(&ssn_qid) && l.contains("status=sent") && l.contains("quarantine")
            })
        },
        context,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_maildlp"))
        .args(["quarantine", "list", "--format", "json", "--data-dir"])
        .arg(&data_dir)
        .output()
        .expect("quarantine list");
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    let held: Vec<serde_json::Value> = listed
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(held.len(), 1, "{listed}\n{}", context());
    assert_eq!(held[0]["sender"], "pat@city.test");
    assert_eq!(held[0]["queue_id"], ssn_qid.as_str(), "{listed}");
    assert!(!listed.contains(SSN));

    // The re-injection listener goes away: the relay answers 451, Postfix defers the message.
    let master = std::fs::read_to_string(dir.join("master.cf")).expect("master.cf");
    let without = master.replace(&reinject_service(reinject), "");
    assert_ne!(master, without);
    std::fs::write(dir.join("master.cf"), &without).expect("master.cf");
    let reload = |what: &str| {
        let out = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&dir)
            .arg("reload")
            .output()
            .expect("postfix reload");
        assert!(
            out.status.success(),
            "postfix reload ({what}) failed\n{}",
            context()
        );
    };
    reload("without re-injection");
    wait_until(
        "the re-injection port to close",
        Duration::from_secs(20),
        || TcpStream::connect(("127.0.0.1", reinject)).is_err(),
        context,
    );
    let later = message("later", "Delivered once the next hop is back.");
    let r = c.send_message("pat@city.test", &["lee@example.com"], &later);
    assert!(r.starts_with("250"), "{r}");
    let later_qid = queued_as(&r);
    wait_until(
        "the message to be deferred with the relay's 451",
        Duration::from_secs(30),
        || {
            pf.log().lines().any(|l| {
                l.contains(&later_qid) && l.contains("status=deferred") && l.contains("451 4.4.1")
            })
        },
        context,
    );
    assert!(
        pf.queue().contains(&later_qid),
        "deferred in Postfix's queue\n{}",
        context()
    );
    assert!(
        !sink
            .deliveries()
            .iter()
            .any(|m| m.rcpt_to == ["lee@example.com"])
    );

    // Back: the retry (forced with postqueue -f) delivers it.
    std::fs::write(dir.join("master.cf"), &master).expect("master.cf");
    reload("with re-injection");
    wait_port(reinject, "re-injection smtpd again", context);
    let flush = Command::new("/usr/sbin/postqueue")
        .arg("-c")
        .arg(&dir)
        .arg("-f")
        .status()
        .expect("postqueue -f");
    assert!(flush.success());
    sink.wait_all(
        "the deferred message after the retry",
        Duration::from_secs(30),
        |d| d.iter().any(|m| m.rcpt_to == ["lee@example.com"]),
    );
    let _ = c.cmd("QUIT");

    assert_eq!(
        sink.deliveries()
            .iter()
            .filter(|m| m.rcpt_to == ["sam@example.com"])
            .count(),
        1,
        "only the clean message reached sam@example.com"
    );
    assert!(!relay_log().contains("panicked"), "{}", relay_log());
    assert!(!relay_log().contains(SSN));
    drop(relay);
    drop(pf);
    let _ = std::fs::remove_dir_all(&dir);
}

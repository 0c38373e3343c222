//! maildlp in a real Postfix's path: a private Postfix instance (own config, queue and data
//! directories, loopback ports) with `smtpd_milters` pointing at `maildlp milter`, a local SMTP
//! sink as relay host, and messages submitted over SMTP. Needs Debian's postfix
//! (`.ci/install-postfix.sh` installs it) and root, as in CI.

#[path = "support/postfix.rs"]
mod postfix;

use postfix::{Milter, Ports, Postfix, free_port};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A minimal SMTP server that accepts everything and keeps the messages.
fn start_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind sink");
    let port = listener.local_addr().expect("sink addr").port();
    let store = Arc::new(Mutex::new(Vec::new()));
    let kept = store.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let kept = kept.clone();
            std::thread::spawn(move || {
                let _ = sink_session(conn, &kept);
            });
        }
    });
    (port, store)
}

fn sink_session(conn: TcpStream, store: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut out = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    out.write_all(b"220 sink ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.to_ascii_uppercase();
        if cmd.starts_with("DATA") {
            out.write_all(b"354 go ahead\r\n")?;
            let mut data = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(&line);
            }
            if let Ok(mut s) = store.lock() {
                s.push(data);
            }
            out.write_all(b"250 kept\r\n")?;
        } else if cmd.starts_with("QUIT") {
            out.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"250 ok\r\n")?;
        }
    }
}

/// A private Postfix instance, stopped when dropped.
/// Submit a message over SMTP; returns the reply to the end of DATA (or the first failure).
fn submit(port: u16, from: &str, rcpts: &[String], message: &str) -> String {
    let conn = TcpStream::connect(("127.0.0.1", port)).expect("connect to postfix");
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut out = conn.try_clone().expect("clone");
    let mut r = BufReader::new(conn);
    let mut reply = || {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return all;
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    };
    reply();
    let send = |out: &mut TcpStream, cmd: &str| {
        out.write_all(cmd.as_bytes()).expect("send");
    };
    send(&mut out, "EHLO tester.test\r\n");
    reply();
    send(&mut out, &format!("MAIL FROM:<{from}>\r\n"));
    let r1 = reply();
    if !r1.starts_with('2') {
        return r1;
    }
    for rc in rcpts {
        send(&mut out, &format!("RCPT TO:<{rc}>\r\n"));
        let r2 = reply();
        if !r2.starts_with('2') {
            return r2;
        }
    }
    send(&mut out, "DATA\r\n");
    let r3 = reply();
    if !r3.starts_with('3') {
        return r3;
    }
    let body = message.replace("\r\n", "\n").replace('\n', "\r\n");
    let dotted = body
        .split("\r\n")
        .map(|l| {
            if l.starts_with('.') {
                format!(".{l}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    send(&mut out, &format!("{dotted}\r\n.\r\n"));
    let end = reply();
    send(&mut out, "QUIT\r\n");
    end
}

fn fixture(name: &str) -> String {
    let raw = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/policy/mail")
            .join(name),
    )
    .expect("fixture");
    String::from_utf8_lossy(&raw).into_owned()
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool, log: impl Fn() -> String) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}; postfix log:\n{}", log());
}

#[test]
fn postfix_delivers_rejects_holds_and_tags_by_the_policy() {
    let dir = std::env::temp_dir().join(format!("maildlp-postfix-{}", std::process::id()));
    let (sink_port, delivered) = start_sink();
    let (tls_port, delivered_tls) = start_sink();
    let milter_port = free_port();
    let smtp_port = free_port();

    let mut child = Command::new(env!("CARGO_BIN_EXE_maildlp"))
        .args([
            "milter",
            "--listen",
            &format!("inet:127.0.0.1:{milter_port}"),
            // This test checks what Postfix does with each verdict, quarantine included:
            // the MTA's hold queue (maildlp's own store is tested in postfix_quarantine).
            "--quarantine-mode",
            "hold",
            "--policy",
        ])
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/policy/policy.toml"))
        .arg("--data-dir")
        .arg(dir.join("maildlp-data"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start maildlp milter");
    let stderr = child.stderr.take();
    let milter = Milter(child);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", milter_port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "milter did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&dir);
    // The README's require-TLS recipe: mail maildlp marks goes through a TLS-only transport.
    // Here the transport's relay is a second sink (without TLS, so only the routing is checked;
    // in production the transport sets smtp_tls_security_level=encrypt).
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("milter_header_checks"),
        format!("/^X-Maildlp-Require-TLS: yes/ FILTER smtp-tls:[127.0.0.1]:{tls_port}\n"),
    )
    .expect("milter_header_checks");
    let postfix = Postfix::start(
        &dir,
        &Ports {
            smtp: smtp_port,
            sink: sink_port,
            milter: milter_port,
        },
        &format!(
            "milter_header_checks = regexp:{}/milter_header_checks\n",
            dir.display()
        ),
        "smtp-tls unix - - n - - smtp\n",
    );
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", smtp_port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "postfix smtpd did not start; log:\n{}",
            postfix.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let count = || delivered.lock().map(|d| d.len()).unwrap_or(0);

    // 1. A clean message is delivered to the sink.
    let r = submit(
        smtp_port,
        "pat@city.test",
        &["sam@example.com".into()],
        &fixture("clean_outbound.eml"),
    );
    assert!(
        r.starts_with("250"),
        "clean message: {r}\n{}",
        postfix.log()
    );
    wait_for(
        "the clean message at the sink",
        Duration::from_secs(30),
        || count() >= 1,
        || postfix.log(),
    );

    // 2. Sensitive information to a personal account: 5xx with the policy's text at DATA.
    let r = submit(
        smtp_port,
        "pat@city.test",
        &["me@gmail.com".into()],
        &fixture("ssn_personal_account.eml"),
    );
    assert!(r.starts_with("550 5.7.1"), "{r}");
    assert!(r.contains("personal"), "{r}");
    assert!(
        !r.contains("4817"),
        "the reply must not hold the value: {r}"
    );

    // 3. Sensitive information leaving the City: held in Postfix's hold queue.
    let r = submit(
        smtp_port,
        "pat@city.test",
        &["sam@example.com".into()],
        &fixture("ssn_outbound.eml"),
    );
    assert!(r.starts_with("250"), "{r}");
    wait_for(
        "the held message in the hold queue",
        Duration::from_secs(20),
        || {
            let q: String = postfix.queue().split_whitespace().collect();
            q.contains("\"queue_name\":\"hold\"")
        },
        || postfix.log(),
    );

    // 4. A visible mass mailing is rejected; the same list in Bcc passes.
    let list: Vec<String> = (0..26)
        .map(|i| format!("resident{i}@example.com"))
        .collect();
    let r = submit(
        smtp_port,
        "pat@city.test",
        &list,
        &fixture("visible_26.eml"),
    );
    assert!(r.starts_with("550 5.7.1"), "{r}");
    assert!(r.contains("Bcc"), "{r}");
    let before = count();
    let r = submit(smtp_port, "pat@city.test", &list, &fixture("bcc_40.eml"));
    assert!(r.starts_with("250"), "Bcc list: {r}");
    wait_for(
        "the Bcc mailing at the sink",
        Duration::from_secs(30),
        || count() > before,
        || postfix.log(),
    );

    // 5. Internal mail with sensitive information is delivered with the verdict header.
    let before = count();
    let r = submit(
        smtp_port,
        "pat@city.test",
        &["hr@city.test".into()],
        &fixture("ssn_internal.eml"),
    );
    assert!(r.starts_with("250"), "{r}");
    wait_for(
        "the tagged message",
        Duration::from_secs(30),
        || count() > before,
        || postfix.log(),
    );
    let tagged = delivered
        .lock()
        .map(|d| d.last().cloned().unwrap_or_default())
        .unwrap_or_default();
    assert!(
        tagged.contains("X-Maildlp-Verdict: tag; rules=sensitive_info"),
        "headers of the tagged message:\n{}",
        tagged
            .lines()
            .take_while(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    );

    // 6. Sensitive mail allowed out by a written exception must travel over TLS: Postfix routes
    // it on maildlp's header to the TLS-only transport.
    let r = submit(
        smtp_port,
        "payroll@city.test",
        &["agent@irs.example".into()],
        &fixture("exception_valid.eml"),
    );
    assert!(r.starts_with("250"), "{r}");
    let tls_count = || delivered_tls.lock().map(|d| d.len()).unwrap_or(0);
    wait_for(
        "the require-TLS message at the TLS relay",
        Duration::from_secs(30),
        || tls_count() >= 1,
        || postfix.log(),
    );
    let routed = delivered_tls
        .lock()
        .map(|d| d.first().cloned().unwrap_or_default())
        .unwrap_or_default();
    assert!(routed.contains("X-Maildlp-Require-TLS: yes"));

    // The milter logged a verdict line per message and no value.
    drop(postfix);
    drop(milter);
    let mut log = String::new();
    if let Some(mut e) = stderr {
        let _ = e.read_to_string(&mut log);
    }
    assert!(log.contains("verdict"), "{log}");
    assert!(!log.contains("536-22-4817"), "a value reached the log");
    let _ = std::fs::remove_dir_all(&dir);
}

//! Notices through a real SMTP receiver on loopback: queued with the held message, sent by the
//! worker, retried while the server is down, rate-limited per sender, kept across a restart,
//! and the daily digest queued once across nodes. No notice carries a sensitive value.

use maildlp::detect::Detector;
use maildlp::limits::Limits;
use maildlp::notify::{self, MessageFacts, Notifier};
use maildlp::policy::{self, Policy};
use maildlp::quarantine::store::now_ms;
use maildlp::quarantine::{Details, HeldRecord, Mode, Store, StoreUrl, new_id};
use maildlp::scan::Scanner;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const SSN: &str = "536-22-4817";

/// One message as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    rcpt: Vec<String>,
    data: String,
}

/// A minimal SMTP receiver that keeps what it is given.
fn receiver(listener: TcpListener) -> Arc<Mutex<Vec<Received>>> {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let k = kept.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let k = k.clone();
            std::thread::spawn(move || {
                let _ = session(conn, &k);
            });
        }
    });
    kept
}

fn session(conn: TcpStream, kept: &Mutex<Vec<Received>>) -> std::io::Result<()> {
    let mut out = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    out.write_all(b"220 receiver ESMTP\r\n")?;
    let mut rcpt = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            out.write_all(b"250 receiver\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            rcpt.push(
                line[8..]
                    .trim()
                    .trim_matches(['<', '>'])
                    .to_ascii_lowercase(),
            );
            out.write_all(b"250 ok\r\n")?;
        } else if upper.starts_with("DATA") {
            out.write_all(b"354 go on\r\n")?;
            let mut data = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(&line);
            }
            kept.lock().expect("lock").push(Received {
                rcpt: std::mem::take(&mut rcpt),
                data,
            });
            out.write_all(b"250 kept\r\n")?;
        } else if upper.starts_with("QUIT") {
            out.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"250 ok\r\n")?;
        }
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "maildlp-notices-{name}-{}-{}",
        std::process::id(),
        now_ms()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

async fn open(dir: &Path) -> Store {
    Store::open(
        &StoreUrl::sqlite(&dir.join("quarantine.db")),
        &dir.join("quarantine.key"),
        true,
    )
    .await
    .expect("open the store")
}

fn policy(port: u16) -> Policy {
    let mut p = Policy::default_policy().expect("policy");
    p.organisation.security_officer = "security@city.test".into();
    p.notices.smtp_port = port;
    p.notices.from = "maildlp@city.test".into();
    p.notices.max_per_sender_per_hour = 2;
    p.notices.digest_hour = 0;
    p
}

/// Hold one synthetic SSN message from `sender`, with its notices.
async fn hold(store: &Store, notifier: &Notifier, policy: &Policy, sender: &str) -> String {
    let raw = format!(
        "From: {sender}\r\nTo: sam@example.com\r\nSubject: Enrolment\r\n\r\nEmployee SSN: {SSN}\r\n"
    );
    let scanner = Scanner::new(Detector::new(&[]).expect("patterns"), Limits::default());
    let report = scanner.scan(raw.as_bytes());
    let recipients = vec!["sam@example.com".to_string()];
    let verdict = policy::evaluate(
        policy,
        &report,
        &policy::Envelope {
            sender: Some(sender.into()),
            recipients: recipients.clone(),
        },
    );
    assert_eq!(verdict.action, policy::Action::Quarantine, "{verdict:?}");
    let details = Details::new(&report, &verdict);
    let id = new_id();
    let notices = notifier.for_held(&MessageFacts {
        id: Some(&id),
        received_ms: now_ms(),
        sender,
        recipients: &recipients,
        queue_id: Some("Q1"),
        client_addr: None,
        node: store.node(),
        details: &details,
    });
    let record = HeldRecord {
        received_ms: now_ms(),
        mode: Mode::Store,
        queue_id: Some("Q1".into()),
        client_addr: None,
        sender: sender.into(),
        recipients,
        details,
        notices,
    };
    let sealed = record.seal(store.key(), id.clone(), raw.as_bytes());
    store.hold_batch(&[sealed]).await.expect("hold");
    id
}

fn count(counts: &[(String, u64)], status: &str) -> u64 {
    counts
        .iter()
        .find(|(s, _)| s == status)
        .map(|(_, n)| *n)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_are_sent_retried_rate_limited_and_kept_across_a_restart() {
    let dir = temp_dir("flow");
    // A port with nothing behind it yet: the SMTP server is "down".
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let policy = policy(port);
    let notifier = Notifier::new(&policy).expect("notifier");
    let store = open(&dir).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(hold(&store, &notifier, &policy, "pat@city.test").await);
    }
    // Three sender notices and three incident reports are queued with the messages.
    assert_eq!(
        count(&store.notice_counts().await.expect("counts"), "pending"),
        6
    );

    // Server down: nothing is sent, the notice is kept and retried later (not at once).
    assert_eq!(notify::send_due(&store, &notifier).await.expect("pass"), 0);
    assert_eq!(notify::send_due(&store, &notifier).await.expect("pass"), 0);
    let counts = store.notice_counts().await.expect("counts");
    assert_eq!(count(&counts, "pending"), 6, "{counts:?}");
    assert_eq!(count(&counts, "sent"), 0);

    // maildlp restarts: the queue is still there.
    store.close().await;
    drop(store);
    let store = open(&dir).await;
    assert_eq!(
        count(&store.notice_counts().await.expect("counts"), "pending"),
        6
    );

    // The server comes up and the back-off has passed (made due now by hand: the test does
    // not wait 30 s).
    let received = receiver(TcpListener::bind(("127.0.0.1", port)).expect("bind receiver"));
    let db = sqlx::SqlitePool::connect(&format!("sqlite:{}", dir.join("quarantine.db").display()))
        .await
        .expect("sqlite");
    sqlx::query("UPDATE notices SET due_ms = 0")
        .execute(&db)
        .await
        .expect("make due");
    let mut sent = 0;
    for _ in 0..5 {
        sent += notify::send_due(&store, &notifier).await.expect("pass");
    }
    // 3 incident reports, and 2 sender notices: the third is over the per-sender limit.
    assert_eq!(sent, 5);
    let counts = store.notice_counts().await.expect("counts");
    assert_eq!(count(&counts, "sent"), 5, "{counts:?}");
    assert_eq!(count(&counts, "suppressed"), 1, "{counts:?}");
    assert_eq!(count(&counts, "pending"), 0, "{counts:?}");

    let got = received.lock().expect("lock").clone();
    assert_eq!(got.len(), 5);
    let digits = SSN.replace('-', "");
    for m in &got {
        assert!(
            !m.data.contains(SSN) && !m.data.contains(&digits),
            "a notice carries the SSN:\n{}",
            m.data
        );
        assert!(
            m.data.contains("Auto-Submitted: auto-generated"),
            "{}",
            m.data
        );
    }
    let incidents: Vec<&Received> = got
        .iter()
        .filter(|m| m.rcpt == ["security@city.test"])
        .collect();
    assert_eq!(incidents.len(), 3);
    assert!(
        incidents[0].data.contains("***-**-4817"),
        "{}",
        incidents[0].data
    );
    let to_sender: Vec<&Received> = got.iter().filter(|m| m.rcpt == ["pat@city.test"]).collect();
    assert_eq!(to_sender.len(), 2);
    for m in &to_sender {
        assert!(
            ids.iter().any(|id| m.data.contains(id.as_str())),
            "the sender notice names its quarantine id:\n{}",
            m.data
        );
        assert!(m.data.contains("sam@example.com"));
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_digest_is_queued_once_across_nodes_and_lists_what_waits() {
    let dir = temp_dir("digest");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let received = receiver(listener);
    let mut policy = policy(port);
    policy.notices.sender_on_quarantine = false;
    policy.notices.incident_reports = false;
    let notifier = Notifier::new(&policy).expect("notifier");
    let node_a = open(&dir).await;
    let node_b = open(&dir).await;
    let id = hold(&node_a, &notifier, &policy, "pat@city.test").await;

    assert!(
        notify::digest_if_due(&node_a, &notifier)
            .await
            .expect("digest")
    );
    assert!(
        !notify::digest_if_due(&node_b, &notifier)
            .await
            .expect("digest")
    );
    assert!(
        !notify::digest_if_due(&node_a, &notifier)
            .await
            .expect("digest")
    );
    assert_eq!(notify::send_due(&node_b, &notifier).await.expect("send"), 1);
    let got = received.lock().expect("lock").clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt, ["security@city.test"]);
    assert!(got[0].data.contains(&id), "{}", got[0].data);
    assert!(got[0].data.contains("1 message held"), "{}", got[0].data);
    assert!(!got[0].data.contains("4817"), "{}", got[0].data);

    // With no officer there is no digest.
    let mut quiet = policy.clone();
    quiet.organisation.security_officer.clear();
    let quiet = Notifier::new(&quiet).expect("notifier");
    assert!(
        !notify::digest_if_due(&node_a, &quiet)
            .await
            .expect("digest")
    );
    node_a.close().await;
    node_b.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

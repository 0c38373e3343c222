//! The milter under faults: an MTA that drops the connection in the middle of a message,
//! SMFIC_ABORT and SMFIC_QUIT_NC between messages, ten times more connections than allowed, a
//! peer that sends one byte a second, SIGHUP and SIGTERM under load, and a message crafted to
//! be slow, cut at the scan time limit. (A panicking judge is in milter_server.rs.)

use maildlp::detect::Detector;
use maildlp::filter::PolicyHandler;
use maildlp::limits::Limits;
use maildlp::milter::client::{Client, split_message};
use maildlp::milter::server::{self, Config, Server};
use maildlp::milter::{Handler, Listen};
use maildlp::policy::Policy;
use maildlp::scan::Scanner;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn engine() -> Arc<dyn Handler> {
    let scanner = Scanner::new(Detector::new(&[]).expect("patterns"), Limits::default());
    let policy = Policy::load(&root().join("fixtures/policy/policy.toml"), &[]).expect("policy");
    Arc::new(PolicyHandler::new(scanner, policy))
}

async fn start(
    config: Config,
) -> (
    std::net::SocketAddr,
    watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let server = Server::bind(
        &Listen::Inet("127.0.0.1:0".into()),
        config,
        server::shared(engine()),
    )
    .await
    .expect("bind");
    let addr = server.local_addr().expect("addr");
    let (tx, rx) = watch::channel(false);
    (addr, tx, tokio::spawn(server.run(rx)))
}

fn frame(cmd: u8, data: &[u8]) -> Vec<u8> {
    let mut out = ((data.len() + 1) as u32).to_be_bytes().to_vec();
    out.push(cmd);
    out.extend_from_slice(data);
    out
}

async fn read_reply(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.ok()?;
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.ok()?;
    let cmd = buf.remove(0);
    Some((cmd, buf))
}

/// A connection on which every step is answered (no no-reply flags).
async fn acked_connection(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut data = Vec::new();
    for v in [6u32, 0x1ff, 0] {
        data.extend_from_slice(&v.to_be_bytes());
    }
    s.write_all(&frame(b'O', &data)).await.expect("optneg");
    assert_eq!(read_reply(&mut s).await.expect("optneg reply").0, b'O');
    s
}

async fn acked(s: &mut TcpStream, cmd: u8, data: &[u8]) {
    s.write_all(&frame(cmd, data)).await.expect("write");
    let (c, _) = read_reply(s).await.expect("reply");
    assert_eq!(c as char, 'c', "step {}", cmd as char);
}

/// The final answer after end-of-body: action byte and reply text.
async fn end_of_message(s: &mut TcpStream) -> Option<(char, String)> {
    s.write_all(&frame(b'E', b"")).await.ok()?;
    loop {
        let (c, data) = read_reply(s).await?;
        match c {
            b'h' | b'q' | b'm' => continue,
            b'y' => {
                let text = String::from_utf8_lossy(data.strip_suffix(&[0]).unwrap_or(&data));
                return Some(('y', text.into_owned()));
            }
            other => return Some((other as char, String::new())),
        }
    }
}

/// Everything but the end of `fixtures/policy/mail/visible_26.eml` with its 26 recipients.
async fn visible_26(s: &mut TcpStream) {
    let raw = std::fs::read(root().join("fixtures/policy/mail/visible_26.eml")).expect("fixture");
    let (headers, body) = split_message(&raw);
    acked(s, b'M', b"<pat@city.test>\0").await;
    acked(s, b'R', b"<resident0@example.com>\0").await;
    for (n, v) in &headers {
        let mut data = n.clone();
        data.push(0);
        data.extend_from_slice(v.strip_prefix(b" ").unwrap_or(v));
        data.push(0);
        acked(s, b'L', &data).await;
    }
    acked(s, b'N', b"").await;
    acked(s, b'B', &body).await;
}

async fn start_message(s: &mut TcpStream, subject: &str, body: &[u8]) {
    acked(s, b'M', b"<pat@city.test>\0").await;
    acked(s, b'R', b"<sam@example.com>\0").await;
    acked(s, b'L', format!("Subject\0{subject}\0").as_bytes()).await;
    acked(s, b'N', b"").await;
    for chunk in body.chunks(60_000) {
        acked(s, b'B', chunk).await;
    }
}

/// With a buffer budget of 200 kB, five connections each drop in the middle of a 120 kB
/// message; if a dropped message kept its share, the sixth would not fit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mta_dropping_the_connection_mid_message_costs_nothing() {
    let (addr, stop, task) = start(Config {
        max_buffered_bytes: 200_000,
        ..Config::default()
    })
    .await;
    let body = vec![b'x'; 120_000];
    for _ in 0..5 {
        let mut s = acked_connection(addr).await;
        start_message(&mut s, "dropped", &body).await;
        drop(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut s = acked_connection(addr).await;
    start_message(&mut s, "whole", &body).await;
    let (action, reply) = end_of_message(&mut s).await.expect("answered");
    assert_eq!(action, 'a', "the budget was given back ({reply})");
    let _ = stop.send(true);
    task.await.expect("stops");
}

/// SMFIC_ABORT in the middle of a message, and SMFIC_QUIT_NC (the MTA reuses the connection
/// for a new SMTP session): what follows is judged on its own, with nothing left over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_and_quit_nc_between_messages() {
    let (addr, stop, task) = start(Config::default()).await;
    // How a message with 26 visible recipients is judged on a fresh connection (rejected by
    // the fixture policy's mass-mailing rule).
    let mut fresh = acked_connection(addr).await;
    visible_26(&mut fresh).await;
    let expected = end_of_message(&mut fresh).await.expect("answer");
    assert_eq!(expected.0, 'y', "{expected:?}");
    let mut s = acked_connection(addr).await;
    // A message with a (synthetic) SSN, aborted before its end.
    start_message(&mut s, "aborted", b"Employee SSN: 536-22-4817\r\n").await;
    s.write_all(&frame(b'A', b"")).await.expect("abort");
    // A clean message after it is accepted: the aborted body is gone.
    start_message(&mut s, "clean", b"Lunch at noon?\r\n").await;
    assert_eq!(end_of_message(&mut s).await.expect("answer").0, 'a');
    // 26 recipients, QUIT_NC, then a new session on the same connection: nothing of the
    // first envelope is left, and the same message is judged as on a fresh connection.
    acked(&mut s, b'M', b"<pat@city.test>\0").await;
    for i in 0..26 {
        acked(
            &mut s,
            b'R',
            format!("<resident{i}@example.com>\0").as_bytes(),
        )
        .await;
    }
    s.write_all(&frame(b'K', b"")).await.expect("quit_nc");
    start_message(&mut s, "after quit_nc", b"Lunch at noon?\r\n").await;
    assert_eq!(
        end_of_message(&mut s).await.expect("answer").0,
        'a',
        "recipients from before QUIT_NC were kept"
    );
    visible_26(&mut s).await;
    assert_eq!(end_of_message(&mut s).await.expect("answer"), expected);
    start_message(&mut s, "clean again", b"See you.\r\n").await;
    assert_eq!(end_of_message(&mut s).await.expect("answer").0, 'a');
    let _ = stop.send(true);
    task.await.expect("stops");
}

/// Ten times --max-connections at once: the extra ones wait in the backlog (nothing refused,
/// nothing crashes), every message is judged, and the server still answers afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_times_the_connection_limit() {
    let (addr, stop, task) = start(Config {
        max_connections: 4,
        ..Config::default()
    })
    .await;
    let raw =
        std::fs::read(root().join("fixtures/policy/mail/clean_outbound.eml")).expect("fixture");
    let (h, b) = split_message(&raw);
    let mut jobs = Vec::new();
    for _ in 0..40 {
        let (h, b) = (h.clone(), b.clone());
        jobs.push(tokio::spawn(async move {
            let s = TcpStream::connect(addr).await.expect("connect");
            let mut c = Client::negotiate(s).await.expect("negotiate");
            let o = c
                .message("pat@city.test", &["sam@example.com"], &h, &b)
                .await
                .expect("outcome");
            let _ = c.quit().await;
            o.action
        }));
    }
    let done = tokio::time::timeout(Duration::from_secs(60), async {
        let mut actions = Vec::new();
        for j in jobs {
            actions.push(j.await.expect("job"));
        }
        actions
    })
    .await
    .expect("all 40 served within a minute");
    assert!(done.iter().all(|a| *a == 'a'), "{done:?}");
    let _ = stop.send(true);
    task.await.expect("stops");
}

/// A peer sending one byte a second never completes a packet within --read-timeout: it is
/// cut off, while other connections are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_byte_a_second_is_cut_off() {
    let (addr, stop, task) = start(Config {
        read_timeout: Duration::from_secs(2),
        ..Config::default()
    })
    .await;
    let mut slow = acked_connection(addr).await;
    let started = Instant::now();
    let packet = frame(b'M', b"<pat@city.test>\0");
    let mut cut = false;
    for byte in packet.iter().cycle().take(20) {
        if slow.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        let mut probe = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(1000), slow.read(&mut probe)).await
        {
            cut = true;
            break;
        }
    }
    assert!(
        cut,
        "a byte a second was tolerated for {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let mut s = acked_connection(addr).await;
    start_message(&mut s, "meanwhile", b"Lunch at noon?\r\n").await;
    assert_eq!(end_of_message(&mut s).await.expect("answer").0, 'a');
    let _ = stop.send(true);
    task.await.expect("stops");
}

// ---- the binary, with signals ----

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("kill {sig} {pid}")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill {sig} {pid}");
}

fn wait_log(path: &PathBuf, needle: &str, count: usize) {
    let start = Instant::now();
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.matches(needle).count() >= count {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no {needle:?} ×{count} in the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Milter {
    child: Child,
    port: u16,
    log: PathBuf,
    dir: PathBuf,
}

impl Milter {
    fn start(name: &str, policy: &str, extra: &[&str]) -> Milter {
        let dir =
            std::env::temp_dir().join(format!("maildlp-faults-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("policy.toml"), policy).expect("policy");
        let log = dir.join("milter.log");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let child = Command::new(env!("CARGO_BIN_EXE_maildlp"))
            .args([
                "milter",
                "--listen",
                &format!("inet:127.0.0.1:{port}"),
                "--quarantine-mode",
                "mta",
                "--policy",
            ])
            .arg(dir.join("policy.toml"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start maildlp milter");
        wait_log(&log, "ready", 1);
        Milter {
            child,
            port,
            log,
            dir,
        }
    }
}

impl Drop for Milter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// SIGHUP ten times while eight connections send a message with 26 visible recipients
/// nonstop, the policy file switching between a limit of 25 (reject) and 50 (accept): every
/// message gets one policy's answer or the other's, never a tempfail or an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_under_load_never_judges_with_half_a_policy() {
    let original =
        std::fs::read_to_string(root().join("fixtures/policy/policy.toml")).expect("policy");
    let m = Milter::start("hup", &original, &[]);
    let raw = std::fs::read(root().join("fixtures/policy/mail/visible_26.eml")).expect("fixture");
    let (h, b) = split_message(&raw);
    let running = Arc::new(AtomicBool::new(true));
    let (rejects, accepts, other) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(std::sync::Mutex::new(Vec::<String>::new())),
    );
    let mut jobs = Vec::new();
    for _ in 0..8 {
        let (h, b, port) = (h.clone(), b.clone(), m.port);
        let (running, rejects, accepts, other) = (
            running.clone(),
            rejects.clone(),
            accepts.clone(),
            other.clone(),
        );
        jobs.push(tokio::spawn(async move {
            let s = TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect");
            let mut c = Client::negotiate(s).await.expect("negotiate");
            while running.load(Ordering::Relaxed) {
                match c
                    .message("pat@city.test", &["resident0@example.com"], &h, &b)
                    .await
                {
                    Ok(o) if o.action == 'a' => {
                        accepts.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(o)
                        if o.action == 'y'
                            && o.reply.as_deref().is_some_and(|r| r.starts_with('5')) =>
                    {
                        rejects.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(o) => other
                        .lock()
                        .expect("lock")
                        .push(format!("{} {:?}", o.action, o.reply)),
                    Err(e) => other.lock().expect("lock").push(format!("error: {e}")),
                }
            }
        }));
    }
    let policy = m.dir.join("policy.toml");
    for i in 1..=10 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let limit = if i % 2 == 1 {
            "max_visible = 50"
        } else {
            "max_visible = 25"
        };
        std::fs::write(&policy, original.replace("max_visible = 25", limit)).expect("write policy");
        signal(m.child.id(), "-HUP");
        wait_log(&m.log, "reloaded", i);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    running.store(false, Ordering::Relaxed);
    for j in jobs {
        j.await.expect("job");
    }
    let other = other.lock().expect("lock").clone();
    assert!(
        other.is_empty(),
        "answers that are neither policy's: {other:?}"
    );
    let (r, a) = (
        rejects.load(Ordering::Relaxed),
        accepts.load(Ordering::Relaxed),
    );
    assert!(
        r > 0 && a > 0,
        "both policies judged: {r} rejected, {a} accepted"
    );
}

/// SIGTERM with twelve messages in the middle of their transfer and more connections
/// streaming: each message the milter had begun is answered after the signal, new connections
/// are refused, and the process exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_answers_every_message_in_flight() {
    let original =
        std::fs::read_to_string(root().join("fixtures/policy/policy.toml")).expect("policy");
    let mut m = Milter::start("term", &original, &[]);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", m.port).parse().expect("addr");
    // Background load: four connections streaming clean messages.
    let raw =
        std::fs::read(root().join("fixtures/policy/mail/clean_outbound.eml")).expect("fixture");
    let (h, b) = split_message(&raw);
    let mut load = Vec::new();
    for _ in 0..4 {
        let (h, b) = (h.clone(), b.clone());
        load.push(tokio::spawn(async move {
            let Ok(s) = TcpStream::connect(addr).await else {
                return 0;
            };
            let Ok(mut c) = Client::negotiate(s).await else {
                return 0;
            };
            let mut n = 0;
            while c
                .message("pat@city.test", &["sam@example.com"], &h, &b)
                .await
                .is_ok()
            {
                n += 1;
            }
            n
        }));
    }
    // Twelve messages begun (every step acknowledged, so the milter has them), not ended.
    let mut in_flight = Vec::new();
    for i in 0..12 {
        let mut s = acked_connection(addr).await;
        start_message(&mut s, &format!("in flight {i}"), b"Lunch at noon?\r\n").await;
        in_flight.push(s);
    }
    signal(m.child.id(), "-TERM");
    wait_log(&m.log, "shutting down", 1);
    for (i, s) in in_flight.iter_mut().enumerate() {
        let answer = tokio::time::timeout(Duration::from_secs(10), end_of_message(s))
            .await
            .unwrap_or_else(|_| panic!("message {i} in flight not answered within 10 s"));
        assert_eq!(answer.map(|a| a.0), Some('a'), "message {i} in flight");
    }
    let mut streamed = 0;
    for j in load {
        streamed += j.await.expect("load job");
    }
    assert!(streamed > 0, "the background load ran");
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(s)) = m.child.try_wait() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "milter did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after SIGTERM"
    );
    let log = std::fs::read_to_string(&m.log).unwrap_or_default();
    assert!(log.contains("stopped"), "{log}");
}

/// A message crafted to be slow — a thousand parts each holding a deeply nested zip of many
/// small entries full of number-like text — is cut at --max-scan-millis and gets the
/// unscannable verdict instead of holding a worker (or the MTA) for its whole length.
#[test]
fn a_slow_message_is_cut_at_the_scan_time_limit() {
    let mut body = String::new();
    let boundary = "slowslowslow";
    body.push_str(&format!(
        "From: pat@city.test\r\nTo: sam@example.com\r\nSubject: slow\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
    ));
    // Text dense with candidate numbers (every group a possible SSN, card or account number).
    let dense: String = (0..20_000)
        .map(|i| {
            format!(
                "{:03}-{:02}-{:04} ",
                100 + i % 800,
                10 + i % 89,
                1000 + i % 8999
            )
        })
        .collect();
    for i in 0..200 {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Type: text/plain; name=\"p{i}.txt\"\r\n\r\n{dense}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let path = std::env::temp_dir().join(format!("maildlp-slow-{}.eml", std::process::id()));
    std::fs::write(&path, &body).expect("write");
    let run = |millis: &str| {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_maildlp"))
            .args(["scan", "--max-scan-millis", millis, "--format", "json"])
            .arg(&path)
            .output()
            .expect("scan");
        (
            started.elapsed(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (took, out) = run("300");
    assert!(
        out.contains("time limit"),
        "{}",
        &out[..out.len().min(2000)]
    );
    assert!(
        took < Duration::from_secs(5),
        "cut at 300 ms, took {took:?}"
    );
    let _ = std::fs::remove_file(&path);
}

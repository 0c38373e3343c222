//! `maildlp milter` as an administrator runs it: SIGHUP reloads the policy (an invalid file
//! keeps the previous one and says why), SIGTERM stops it cleanly.

use maildlp::milter::client::{Client, split_message};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn signal(pid: u32, sig: &str) {
    // The shell's built-in kill: no procps needed.
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
            start.elapsed() < Duration::from_secs(10),
            "no {needle:?} in the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn visible_26(port: u16) -> char {
    let raw = std::fs::read(root().join("fixtures/policy/mail/visible_26.eml")).expect("fixture");
    let (h, b) = split_message(&raw);
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut c = Client::negotiate(stream).await.expect("negotiate");
    let o = c
        .message("pat@city.test", &["resident0@example.com"], &h, &b)
        .await
        .expect("outcome");
    let _ = c.quit().await;
    o.action
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_policy_and_keeps_it_when_the_new_one_is_invalid() {
    let dir = std::env::temp_dir().join(format!("maildlp-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let policy = dir.join("policy.toml");
    let original =
        std::fs::read_to_string(root().join("fixtures/policy/policy.toml")).expect("policy");
    std::fs::write(&policy, &original).expect("write policy");
    let log = dir.join("milter.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let mut child = Command::new(env!("CARGO_BIN_EXE_maildlp"))
        .args([
            "milter",
            "--listen",
            &format!("inet:127.0.0.1:{port}"),
            "--policy",
        ])
        .arg(&policy)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start milter");
    let pid = child.id();
    wait_log(&log, "ready", 1);

    assert_eq!(
        visible_26(port).await,
        'y',
        "26 visible recipients are rejected"
    );

    std::fs::write(
        &policy,
        original.replace("max_visible = 25", "max_visible = 50"),
    )
    .expect("write");
    signal(pid, "-HUP");
    wait_log(&log, "reloaded", 1);
    assert_eq!(visible_26(port).await, 'a', "the new limit applies");

    std::fs::write(
        &policy,
        original.replace("max_visible = 25", "max_visible = \"x\""),
    )
    .expect("write");
    signal(pid, "-HUP");
    wait_log(&log, "reload failed", 1);
    assert_eq!(visible_26(port).await, 'a', "the previous policy is kept");

    signal(pid, "-TERM");
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "milter did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("stopped"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

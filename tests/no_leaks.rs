//! No sensitive value in full in anything maildlp prints: the evasion fixtures put values in
//! file names, archive entry names, headers and connection strings; `scan` (JSON and text),
//! `replay` and the milter's 550 reply must show them masked only.

use maildlp::detect::Detector;
use maildlp::filter::PolicyHandler;
use maildlp::limits::Limits;
use maildlp::milter::client::{Client, split_message};
use maildlp::milter::server::{self, Config, Server};
use maildlp::milter::{Handler, Listen};
use maildlp::policy::Policy;
use maildlp::scan::Scanner;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The synthetic values of `fixtures/make_evasion_fixtures.py`, as written and as digits.
const VALUES: &[&str] = &[
    "536-22-4817",
    "536224817",
    "4539148803436467",
    "Tr0ub4dor&3x",
    "Tr0ub4dor",
    "S3cretPassw0rd9",
    "Passw0rd9",
];

fn leaks(what: &str, text: &str) -> Vec<String> {
    VALUES
        .iter()
        .filter(|v| text.contains(*v))
        .map(|v| {
            format!(
                "{what}: holds a value ending {}",
                &v[v.len().saturating_sub(2)..]
            )
        })
        .collect()
}

#[test]
fn scan_and_replay_print_no_value() {
    let dir = root().join("fixtures/evasion");
    let mut problems = Vec::new();
    for args in [
        vec!["scan", "--format", "json"],
        vec!["scan", "--format", "text"],
        vec!["replay"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_maildlp"))
            .args(&args)
            .arg(&dir)
            .output()
            .expect("run maildlp");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            text.contains("c5_ssn_in_attachment_name") || args[0] == "replay",
            "{args:?}: the fixtures were not scanned"
        );
        problems.extend(leaks(&args.join(" "), &text));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_milter_reply_and_headers_hold_no_value() {
    let policy = Policy::load(&root().join("fixtures/policy/policy.toml"), &[]).expect("policy");
    let handler: Arc<dyn Handler> = Arc::new(PolicyHandler::new(
        Scanner::new(Detector::new(&[]).expect("patterns"), Limits::default()),
        policy,
    ));
    let server = Server::bind(
        &Listen::Inet("127.0.0.1:0".into()),
        Config::default(),
        server::shared(handler),
    )
    .await
    .expect("bind");
    let addr = server.local_addr().expect("addr");
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(server.run(rx));
    let mut client =
        Client::negotiate(tokio::net::TcpStream::connect(addr).await.expect("connect"))
            .await
            .expect("negotiate");
    let mut problems = Vec::new();
    let mut rejected = 0;
    for name in [
        "leak_password_in_zip_entry_name.eml",
        "leak_connection_url_password.eml",
        "leak_card_in_binary_attachment_name.eml",
        "c5_ssn_in_attachment_name.eml",
    ] {
        let raw = std::fs::read(root().join("fixtures/evasion").join(name)).expect("fixture");
        let (h, b) = split_message(&raw);
        let o = client
            .message("pat@city.test", &["sam@example.com"], &h, &b)
            .await
            .expect("outcome");
        let reply = o.reply.clone().unwrap_or_default();
        if reply.starts_with("550") {
            rejected += 1;
        }
        let said = format!("{reply} {:?} {:?}", o.headers, o.quarantine);
        problems.extend(leaks(name, &said));
    }
    assert_eq!(
        rejected, 2,
        "the password and the connection URL are refused"
    );
    let _ = stop.send(true);
    let _ = task.await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

//! The same message gets the same verdict through `scan` and through the milter: every fixture
//! of `fixtures/scan/`, `fixtures/evasion*/` and `fixtures/policy/mail/` is judged once directly
//! (scan + policy) and once played over a real socket to the milter as an MTA hands it over
//! (headers one by one as bytes, body in chunks), with the same envelope. The action and the
//! headers the MTA is told to add must agree.

use maildlp::detect::Detector;
use maildlp::filter::PolicyHandler;
use maildlp::limits::Limits;
use maildlp::milter::client::{Client, Outcome, split_message};
use maildlp::milter::server::{self, Config, Server};
use maildlp::milter::{Handler, Listen};
use maildlp::policy::{self, Action, Policy};
use maildlp::scan::Scanner;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpStream;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> Vec<PathBuf> {
    let mut dirs = vec![
        "fixtures/scan".to_string(),
        "fixtures/policy/mail".to_string(),
    ];
    for e in std::fs::read_dir(root().join("fixtures"))
        .expect("fixtures")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "evasion" || name.starts_with("evasion-") {
            dirs.push(format!("fixtures/{name}"));
        }
    }
    let mut out = Vec::new();
    for dir in &dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .expect("fixture dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

/// The action the MTA was told, in the policy's words.
fn milter_action(o: &Outcome) -> Action {
    match o.action {
        'y' if o.reply.as_deref().is_some_and(|r| r.starts_with('5')) => Action::Reject,
        'a' if o.quarantine.is_some() => Action::Quarantine,
        'a' if o.headers.iter().any(|(n, _)| n == "X-Maildlp-Verdict") => Action::Tag,
        'a' => Action::Accept,
        other => panic!("unexpected milter answer {other:?} ({:?})", o.reply),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_and_milter_agree_on_every_fixture() {
    let policy = Policy::load(&root().join("fixtures/policy/policy.toml"), &[]).expect("policy");
    let scanner = Scanner::new(Detector::new(&[]).expect("patterns"), Limits::default());
    let handler: Arc<dyn Handler> = Arc::new(PolicyHandler::new(
        Scanner::new(Detector::new(&[]).expect("patterns"), Limits::default()),
        policy.clone(),
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
    let mut client = Client::negotiate(TcpStream::connect(addr).await.expect("connect"))
        .await
        .expect("negotiate");

    let mut problems = Vec::new();
    let files = fixtures();
    assert!(files.len() > 80, "only {} fixtures found", files.len());
    for path in &files {
        let raw = std::fs::read(path).expect("fixture");
        let name = path
            .strip_prefix(root())
            .unwrap_or(path)
            .display()
            .to_string();
        let report = scanner.scan(&raw);
        let mut env = policy::Envelope::from_headers(&report);
        let sender = env.sender.clone().unwrap_or_default();
        env.sender = Some(sender.clone());
        let direct = policy::evaluate(&policy, &report, &env);

        let (headers, body) = split_message(&raw);
        let rcpts: Vec<&str> = env.recipients.iter().map(String::as_str).collect();
        let o = client
            .message(&sender, &rcpts, &headers, &body)
            .await
            .unwrap_or_else(|e| panic!("{name}: milter: {e}"));
        let via_milter = milter_action(&o);
        if via_milter != direct.action {
            problems.push(format!(
                "{name}: scan says {} ({:?}), the milter {via_milter}",
                direct.action,
                direct.rule_names()
            ));
            continue;
        }
        if direct.action != Action::Reject && o.headers != direct.headers {
            problems.push(format!(
                "{name}: headers differ: scan {:?}, milter {:?}",
                direct.headers, o.headers
            ));
        }
    }
    let _ = stop.send(true);
    let _ = task.await;
    assert!(
        problems.is_empty(),
        "{} of {} fixtures judged differently:\n{}",
        problems.len(),
        files.len(),
        problems.join("\n")
    );
}

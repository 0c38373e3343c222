//! The milter server over real sockets, driven by the MTA-side client: the real engine and
//! policy, several messages per connection, abort, garbage and stalled peers, a panicking
//! handler, oversize messages, Unix sockets, graceful shutdown.

use maildlp::detect::Detector;
use maildlp::filter::PolicyHandler;
use maildlp::limits::Limits;
use maildlp::milter::client::{Client, split_message};
use maildlp::milter::server::{self, Config, Server};
use maildlp::milter::{Decision, Envelope, Handler, Listen};
use maildlp::policy::Policy;
use maildlp::scan::Scanner;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

fn engine() -> Arc<dyn Handler> {
    let scanner = Scanner::new(Detector::new(&[]).expect("patterns"), Limits::default());
    let policy = Policy::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/policy/policy.toml"),
        &[],
    )
    .expect("policy");
    Arc::new(PolicyHandler::new(scanner, policy))
}

async fn start(
    handler: Arc<dyn Handler>,
    config: Config,
) -> (
    std::net::SocketAddr,
    watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let server = Server::bind(
        &Listen::Inet("127.0.0.1:0".into()),
        config,
        server::shared(handler),
    )
    .await
    .expect("bind");
    let addr = server.local_addr().expect("tcp addr");
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(server.run(rx));
    (addr, tx, task)
}

async fn client(addr: std::net::SocketAddr) -> Client<TcpStream> {
    Client::negotiate(TcpStream::connect(addr).await.expect("connect"))
        .await
        .expect("negotiate")
}

#[allow(clippy::type_complexity)]
fn fixture(name: &str) -> (Vec<(Vec<u8>, Vec<u8>)>, Vec<u8>) {
    let raw = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/policy/mail")
            .join(name),
    )
    .expect("fixture");
    split_message(&raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_reach_the_mta_and_a_connection_carries_many_messages() {
    let (addr, stop, task) = start(engine(), Config::default()).await;
    let mut c = client(addr).await;

    let (h, b) = fixture("clean_outbound.eml");
    let o = c
        .message("pat@city.test", &["sam@example.com"], &h, &b)
        .await
        .expect("clean");
    assert_eq!(o.action, 'a');
    assert!(o.headers.is_empty());

    let (h, b) = fixture("ssn_personal_account.eml");
    let o = c
        .message("pat@city.test", &["me@gmail.com"], &h, &b)
        .await
        .expect("reject");
    assert_eq!(o.action, 'y');
    let reply = o.reply.unwrap_or_default();
    assert!(reply.starts_with("550 5.7.1 "), "{reply}");
    assert!(reply.contains("personal"), "{reply}");
    assert!(!reply.contains("4817"), "{reply}");

    let (h, b) = fixture("ssn_outbound.eml");
    let o = c
        .message("pat@city.test", &["sam@example.com"], &h, &b)
        .await
        .expect("quarantine");
    assert_eq!(o.action, 'a');
    assert!(
        o.quarantine
            .as_deref()
            .unwrap_or("")
            .contains("sensitive_info")
    );
    assert!(
        o.headers
            .iter()
            .any(|(n, v)| n == "X-Maildlp-Require-TLS" && v == "yes")
    );

    let (h, b) = fixture("ssn_internal.eml");
    let o = c
        .message("pat@city.test", &["hr@city.test"], &h, &b)
        .await
        .expect("tag");
    assert_eq!(o.action, 'a');
    assert!(o.quarantine.is_none());
    assert!(
        o.headers
            .iter()
            .any(|(n, v)| n == "X-Maildlp-Verdict" && v.starts_with("tag"))
    );

    // The envelope decides direction: the same internal message sent outside is held.
    let o = c
        .message("pat@city.test", &["x@example.com"], &h, &b)
        .await
        .expect("envelope");
    assert!(o.quarantine.is_some());

    // An aborted message leaves no trace on the next one.
    let (h2, _) = fixture("ssn_outbound.eml");
    c.send_raw(&frame(b'M', b"<pat@city.test>\0"))
        .await
        .expect("mail");
    c.send_raw(&frame(b'L', b"Subject\0SSN 536-22-4817\0"))
        .await
        .expect("hdr");
    c.abort().await.expect("abort");
    let (h, b) = fixture("clean_outbound.eml");
    let _ = h2;
    let o = c
        .message("pat@city.test", &["sam@example.com"], &h, &b)
        .await
        .expect("after abort");
    assert_eq!(o.action, 'a');
    assert!(o.quarantine.is_none());

    c.quit().await.expect("quit");
    let _ = stop.send(true);
    task.await.expect("server stops");
}

fn frame(cmd: u8, data: &[u8]) -> Vec<u8> {
    let mut out = ((data.len() + 1) as u32).to_be_bytes().to_vec();
    out.push(cmd);
    out.extend_from_slice(data);
    out
}

struct Panics;
impl Handler for Panics {
    fn judge(&self, _: &Envelope, _: &[u8]) -> Decision {
        panic!("handler bug")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_gives_tempfail_and_the_server_lives_on() {
    let (addr, stop, task) = start(Arc::new(Panics), Config::default()).await;
    for _ in 0..2 {
        let mut c = client(addr).await;
        let o = c
            .message(
                "a@city.test",
                &["b@example.com"],
                &[("Subject", "x")],
                b"hi\r\n",
            )
            .await
            .expect("outcome");
        assert_eq!(o.action, 'y');
        assert!(o.reply.unwrap_or_default().starts_with("451 4.7.1"));
    }
    let _ = stop.send(true);
    task.await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_stalls_close_only_that_connection() {
    let config = Config {
        read_timeout: Duration::from_millis(1500),
        ..Config::default()
    };
    let (addr, stop, task) = start(engine(), config).await;
    let mut buf = [0u8; 16];

    // A truncated packet, then silence: closed after the read timeout.
    let mut stall = TcpStream::connect(addr).await.expect("connect");
    stall
        .write_all(&[0, 0, 0, 50, b'B', 1, 2])
        .await
        .expect("write");

    // A length far over the limit.
    let mut bad = TcpStream::connect(addr).await.expect("connect");
    bad.write_all(&[0x7f, 0xff, 0xff, 0xff, b'O'])
        .await
        .expect("write");
    assert_eq!(bad.read(&mut buf).await.unwrap_or(0), 0, "closed");

    // An unknown command byte.
    let mut bad = TcpStream::connect(addr).await.expect("connect");
    bad.write_all(&frame(b'Z', b"junk")).await.expect("write");
    assert_eq!(bad.read(&mut buf).await.unwrap_or(0), 0, "closed");

    // Meanwhile a well-behaved connection is served.
    let mut good = client(addr).await;
    let (h, b) = fixture("clean_outbound.eml");
    let o = good
        .message("pat@city.test", &["sam@example.com"], &h, &b)
        .await
        .expect("still served");
    assert_eq!(o.action, 'a');

    let closed = tokio::time::timeout(Duration::from_secs(5), stall.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "stalled peer closed"
    );
    let _ = stop.send(true);
    task.await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_messages_get_the_unscannable_action() {
    let config = Config {
        max_message_bytes: 10_000,
        ..Config::default()
    };
    let (addr, stop, task) = start(engine(), config).await;
    let mut c = client(addr).await;
    let body = vec![b'x'; 50_000];
    let o = c
        .message(
            "pat@city.test",
            &["sam@example.com"],
            &[("Subject", "big")],
            &body,
        )
        .await
        .expect("outcome");
    // fixtures/policy/policy.toml tags unscannable mail.
    assert_eq!(o.action, 'a');
    assert!(
        o.headers.iter().any(|(_, v)| v.contains("unscannable")),
        "{:?}",
        o.headers
    );
    let _ = stop.send(true);
    task.await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_and_graceful_shutdown_finish_the_message_in_flight() {
    let path = std::env::temp_dir().join(format!("maildlp-test-{}.sock", std::process::id()));
    let server = Server::bind(
        &Listen::Unix(path.clone()),
        Config::default(),
        server::shared(engine()),
    )
    .await
    .expect("bind unix");
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(server.run(rx));
    let stream = tokio::net::UnixStream::connect(&path)
        .await
        .expect("connect");
    let mut c = Client::negotiate(stream).await.expect("negotiate");
    // Start a message, ask the server to stop, then finish the message.
    c.send_raw(&frame(b'M', b"<pat@city.test>\0"))
        .await
        .expect("mail");
    c.send_raw(&frame(b'R', b"<sam@example.com>\0"))
        .await
        .expect("rcpt");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = stop.send(true);
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.send_raw(&frame(b'L', b"Subject\0hello\0"))
        .await
        .expect("hdr");
    c.send_raw(&frame(b'N', b"")).await.expect("eoh");
    c.send_raw(&frame(b'B', b"plain text\r\n"))
        .await
        .expect("body");
    c.send_raw(&frame(b'E', b"")).await.expect("eob");
    let o = c.outcome().await.expect("message in flight is finished");
    assert_eq!(o.action, 'a');
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("server stops after the message")
        .expect("join");
    assert!(!path.exists(), "socket file removed");
}

/// Recipients past the cap are not silently dropped (a dropped outside recipient could make the
/// message look internal): the message is tempfailed with a reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_recipients_than_the_cap_is_a_tempfail_not_a_smaller_envelope() {
    let (addr, stop, task) = start(engine(), Config::default()).await;
    let mut c = client(addr).await;
    let (h, b) = fixture("ssn_internal.eml");
    let mut rcpts: Vec<String> = (0..10_000).map(|i| format!("staff{i}@city.test")).collect();
    rcpts.push("outsider@example.com".into());
    let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    let o = c
        .message("pat@city.test", &refs, &h, &b)
        .await
        .expect("outcome");
    assert_eq!(o.action, 'y');
    let reply = o.reply.unwrap_or_default();
    assert!(reply.starts_with("452 4.5.3"), "{reply}");
    // The next message on the same connection is judged normally.
    let (h, b) = fixture("clean_outbound.eml");
    let o = c
        .message("pat@city.test", &["sam@example.com"], &h, &b)
        .await
        .expect("outcome");
    assert_eq!(o.action, 'a');
    let _ = stop.send(true);
    let _ = task.await;
}

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
    // Nothing of it was read: a whole-message limit, so `limit_action` (quarantine by
    // default) applies, not the tag fixtures/policy/policy.toml gives one unreadable part.
    assert_eq!(o.action, 'a');
    assert!(o.quarantine.is_some(), "{o:?}");
    assert!(
        o.headers
            .iter()
            .any(|(_, v)| v == "quarantine; rules=unscannable"),
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

/// Read one reply frame: (command byte, data).
async fn read_reply(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.expect("reply length");
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.expect("reply");
    let cmd = buf.remove(0);
    (cmd, buf)
}

/// A connection that negotiates no no-reply flag, so that every step is answered: when a step's
/// `c` is read, the filter has taken that step (and buffered its bytes).
async fn acked_connection(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut data = Vec::new();
    for v in [6u32, 0x1ff, 0] {
        data.extend_from_slice(&v.to_be_bytes());
    }
    s.write_all(&frame(b'O', &data)).await.expect("optneg");
    assert_eq!(read_reply(&mut s).await.0, b'O');
    s
}

async fn acked(s: &mut TcpStream, cmd: u8, data: &[u8]) {
    s.write_all(&frame(cmd, data)).await.expect("write");
    let (c, _) = read_reply(s).await;
    assert_eq!(c as char, 'c', "step {}", cmd as char);
}

/// Everything of a message up to (not including) its end, each step acknowledged.
async fn acked_message_without_end(s: &mut TcpStream, body: &[u8]) {
    acked(s, b'M', b"<pat@city.test>\0").await;
    acked(s, b'R', b"<sam@example.com>\0").await;
    acked(s, b'L', b"Subject\0budget\0").await;
    acked(s, b'N', b"").await;
    for chunk in body.chunks(60_000) {
        acked(s, b'B', chunk).await;
    }
}

/// The final reply of a message after its end: the action byte and any reply text.
async fn end_of_message(s: &mut TcpStream) -> (char, String) {
    s.write_all(&frame(b'E', b"")).await.expect("eom");
    loop {
        let (c, data) = read_reply(s).await;
        match c {
            b'h' | b'q' => continue,
            b'y' => {
                let text = String::from_utf8_lossy(data.strip_suffix(&[0]).unwrap_or(&data));
                return ('y', text.into_owned());
            }
            other => return (other as char, String::new()),
        }
    }
}

/// The bytes buffered by all connections are bounded: with a 200 kB budget, two concurrent
/// 120 kB messages do not both fit, so the second is answered 451 4.3.2 (the MTA retries it)
/// and the first is judged; once both are done the budget is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_buffer_budget_tempfails_what_does_not_fit_and_is_given_back() {
    let config = Config {
        max_buffered_bytes: 200_000,
        ..Config::default()
    };
    let (addr, stop, task) = start(engine(), config).await;
    let body: Vec<u8> = b"Meeting notes, nothing sensitive here.\r\n"
        .iter()
        .copied()
        .cycle()
        .take(120_000)
        .collect();

    // A holds 120 kB, not yet finished.
    let mut a = acked_connection(addr).await;
    acked_message_without_end(&mut a, &body).await;
    // B's message does not fit beside it.
    let mut b = acked_connection(addr).await;
    acked_message_without_end(&mut b, &body).await;
    let (action, reply) = end_of_message(&mut b).await;
    assert_eq!(action, 'y');
    assert!(reply.starts_with("451 4.3.2 "), "{reply}");
    assert!(reply.contains("try again later"), "{reply}");
    // A is judged as usual.
    let (action, reply) = end_of_message(&mut a).await;
    assert_eq!(action, 'a', "{reply}");

    // Both done: the budget is free, a third message (on B's connection) and a fourth on a new
    // one are judged normally, and so is a message from a closed connection's budget.
    acked_message_without_end(&mut b, &body).await;
    let (action, reply) = end_of_message(&mut b).await;
    assert_eq!(action, 'a', "{reply}");
    acked_message_without_end(&mut a, &body).await;
    drop(a); // closed in the middle of a message: its bytes are given back
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = client(addr).await;
    let o = c
        .message(
            "pat@city.test",
            &["sam@example.com"],
            &[("Subject", "budget")],
            &body,
        )
        .await
        .expect("third");
    assert_eq!(o.action, 'a', "{:?}", o.reply);
    acked_message_without_end(&mut b, &body).await;
    let (action, reply) = end_of_message(&mut b).await;
    assert_eq!(action, 'a', "{reply}");
    let _ = stop.send(true);
    task.await.expect("stops");
}

/// A peer that skips option negotiation is not an MTA speaking the protocol: its connection is
/// closed before anything is processed; other connections go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_before_option_negotiation_close_the_connection() {
    let (addr, stop, task) = start(engine(), Config::default()).await;
    let mut buf = [0u8; 64];
    for first in [
        frame(b'M', b"<pat@city.test>\0"),
        frame(b'R', b"<sam@example.com>\0"),
        frame(b'L', b"Subject\0hi\0"),
        frame(b'B', b"body"),
        frame(b'E', b""),
    ] {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(&first).await.expect("write");
        // Whatever follows is not answered: the connection is closed.
        let _ = s.write_all(&frame(b'E', b"")).await;
        let got = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("closed promptly");
        assert!(
            matches!(got, Ok(0) | Err(_)),
            "command {} before OPTNEG got {got:?}",
            first[4] as char
        );
    }
    let mut good = client(addr).await;
    let (h, b) = fixture("clean_outbound.eml");
    let o = good
        .message("pat@city.test", &["sam@example.com"], &h, &b)
        .await
        .expect("served");
    assert_eq!(o.action, 'a');
    let _ = stop.send(true);
    task.await.expect("stops");
}

/// The restricted list is found in the SMTP envelope whatever form its address takes there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_list_in_the_envelope_in_any_form_is_rejected() {
    let (addr, stop, task) = start(engine(), Config::default()).await;
    let mut c = client(addr).await;
    let (h, b) = fixture("clean_outbound.eml");
    for rcpt in [
        "all-employees+picnic@city.test",
        "\"all-employees\"@city.test",
        "all-employees@city.test.",
        "All-Employees@City.Test",
    ] {
        let o = c
            .message("pat@city.test", &[rcpt], &h, &b)
            .await
            .expect("outcome");
        assert_eq!(o.action, 'y', "{rcpt}");
        let reply = o.reply.unwrap_or_default();
        assert!(
            reply.starts_with("550 5.7.1 ") && reply.contains("restricted list"),
            "{rcpt}: {reply}"
        );
    }
    let _ = stop.send(true);
    task.await.expect("stops");
}

//! `maildlp relay` as a client and a next hop see it: the built binary listening on loopback,
//! a loopback SMTP sink as its next hop. Clean and tagged mail is forwarded with the envelope
//! unchanged and the X-Maildlp headers; a password is refused with the policy's 550; an SSN is
//! held in the quarantine store (read back with `maildlp quarantine list`) and not forwarded;
//! a next hop that is down or refuses gets 4xx / its 5xx; bad input (long lines, bare LF, DATA
//! before RCPT, a stalled client, garbage, too many recipients, commands or connections) gets
//! the right code, no panic, and the server goes on serving; SIGTERM closes idle connections
//! with 421 and exits.

#[path = "support/relay_sink.rs"]
mod relay_sink;

#[path = "support/smtp_sink.rs"]
mod smtp_sink;
use relay_sink::{Client, stuffed};
use smtp_sink::Sink;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A synthetic SSN (not a real person's), as the milter tests use it.
const SSN: &str = "536-22-4817";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running `maildlp relay`, killed when dropped.
struct Relay {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Relay {
    fn start(name: &str, next_hop: u16, extra: &[&str]) -> Relay {
        let dir = std::env::temp_dir().join(format!(
            "maildlp-relay-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("test dir");
        let port = free_port();
        let log = std::fs::File::create(dir.join("relay.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_maildlp"))
            .args(["relay", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--next-hop", &format!("127.0.0.1:{next_hop}")])
            .args(["--hostname", "relay.test", "--next-hop-timeout", "10"])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start maildlp relay");
        let r = Relay {
            child: Some(child),
            port,
            dir,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "relay did not start\n{}",
                r.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("relay.log")).unwrap_or_default()
    }

    /// A connection past the greeting and EHLO.
    fn client(&self) -> Client {
        let mut c = Client::connect(self.port);
        let greeting = c.reply();
        assert!(greeting.starts_with("220 relay.test"), "{greeting}");
        let ehlo = c.cmd("EHLO client.test");
        assert!(ehlo.starts_with("250-relay.test"), "{ehlo}");
        c
    }

    /// `maildlp quarantine list --format json` on this relay's store.
    fn quarantine(&self) -> Vec<serde_json::Value> {
        let out = Command::new(env!("CARGO_BIN_EXE_maildlp"))
            .args(["quarantine", "list", "--format", "json", "--data-dir"])
            .arg(self.dir.join("data"))
            .output()
            .expect("quarantine list");
        assert!(
            out.status.success(),
            "quarantine list: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    }

    /// Still serving: a fresh connection gets the greeting and NOOP works.
    fn assert_serving(&self) {
        let mut c = self.client();
        let r = c.cmd("NOOP");
        assert!(r.starts_with("250"), "{r}\n{}", self.log());
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("relay log:\n{}", self.log());
        }
    }
}

fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Pat Clerk <pat@city.test>\r\nTo: Sam Vendor <sam@example.com>\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@city.test>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// (headers, body) of a message at its first empty line.
fn split(m: &[u8]) -> (String, &[u8]) {
    let p = m
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header/body separator");
    (
        String::from_utf8_lossy(&m[..p + 2]).into_owned(),
        &m[p + 4..],
    )
}

#[test]
fn clean_tagged_rejected_and_quarantined_mail() {
    let sink = Sink::start();
    let relay = Relay::start("verdicts", sink.port, &[]);
    let mut c = relay.client();

    // Clean: forwarded as it came (a leading dot survives stuffing), envelope unchanged.
    let clean = message(
        "clean",
        "The north lot is resurfaced on Thursday.\r\n.A line that starts with a dot.",
    );
    let r = c.send_message(
        "pat@city.test",
        &["sam@example.com", "lee@example.org"],
        &clean,
    );
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert!(r.contains("forwarded"), "{r}");
    let d = sink.wait_all("the clean message", Duration::from_secs(10), |d| {
        d.len() == 1
    });
    assert_eq!(d[0].mail_from, "pat@city.test");
    assert_eq!(d[0].rcpt_to, ["sam@example.com", "lee@example.org"]);
    assert_eq!(
        d[0].data, clean,
        "a clean message is forwarded byte for byte"
    );

    // Tagged (a privilege marking to an outside address): forwarded with the verdict headers
    // on top of the original message.
    let tagged = message(
        "tagged",
        "ATTORNEY-CLIENT PRIVILEGED\r\nOur advice on the lease follows.",
    );
    let r = c.send_message("pat@city.test", &["counsel@lawfirm.example"], &tagged);
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let d = sink.wait_all("the tagged message", Duration::from_secs(10), |d| {
        d.len() == 2
    });
    assert_eq!(d[1].rcpt_to, ["counsel@lawfirm.example"]);
    let (headers, body) = split(&d[1].data);
    assert!(
        headers.starts_with("X-Maildlp-Verdict: tag; rules="),
        "{headers}"
    );
    assert!(headers.contains("sensitive_info"), "{headers}");
    assert!(
        d[1].data.ends_with(&tagged),
        "the original follows the added headers"
    );
    assert_eq!(body, split(&tagged).1);

    // The null sender (a bounce) keeps its empty reverse path.
    let bounce = message("bounce", "Delivery report.");
    let r = c.send_message("", &["pat@city.test"], &bounce);
    assert!(r.starts_with("250"), "{r}");
    let d = sink.wait_all("the bounce", Duration::from_secs(10), |d| d.len() == 3);
    assert_eq!(d[2].mail_from, "");

    // A disclosed password: refused with the policy's 550 and reason, not forwarded.
    let secret = message("creds", "Your password: Xk9#mQ2!vL7p for the portal.");
    let r = c.send_message("pat@city.test", &["sam@example.com"], &secret);
    assert!(r.starts_with("550 5.7.1 "), "{r}");
    assert!(r.contains("password"), "the reason names the kind: {r}");
    assert!(
        !r.contains("Xk9#mQ2"),
        "the reason never holds the value: {r}"
    );

    // An SSN: held in the store, answered 250 with the quarantine id, not forwarded.
    let ssn = message("ssn", &format!("Employee SSN: {SSN}"));
    let r = c.send_message("pat@city.test", &["sam@example.com"], &ssn);
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert!(r.contains("quarantine"), "{r}");
    let held = relay.quarantine();
    assert_eq!(held.len(), 1, "{held:?}");
    let id = held[0]["id"].as_str().expect("id");
    assert!(
        r.contains(id),
        "the reply names the quarantine id {id}: {r}"
    );
    assert_eq!(held[0]["sender"], "pat@city.test");
    assert_eq!(held[0]["recipients"][0], "sam@example.com");
    assert!(
        !serde_json::to_string(&held)
            .unwrap_or_default()
            .contains(SSN)
    );

    // A recipient the next hop refuses: its 5xx is passed on (the MTA in front bounces).
    let r = c.send_message(
        "pat@city.test",
        &["refuse-me@example.com"],
        &message("refused", "Nothing sensitive."),
    );
    assert!(r.starts_with("550 5.0.0"), "{r}");
    assert!(r.contains("refused"), "{r}");

    let r = c.cmd("QUIT");
    assert!(r.starts_with("221"), "{r}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        sink.deliveries().len(),
        3,
        "only clean, tagged and bounce were forwarded"
    );
    assert!(!relay.log().contains(SSN), "the log never holds the value");
    assert!(!relay.log().contains("panicked"), "{}", relay.log());
}

#[test]
fn next_hop_down_is_a_tempfail_and_the_store_still_takes_held_mail() {
    let down = free_port();
    let relay = Relay::start("down", down, &[]);
    let mut c = relay.client();
    let r = c.send_message(
        "pat@city.test",
        &["sam@example.com"],
        &message("down", "Nothing sensitive."),
    );
    assert!(
        r.starts_with("451 4.4.1"),
        "never 250 before the next hop took it: {r}"
    );
    // The same connection goes on; a quarantined message does not need the next hop.
    let r = c.send_message(
        "pat@city.test",
        &["sam@example.com"],
        &message("ssn", &format!("Employee SSN: {SSN}")),
    );
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(relay.quarantine().len(), 1);
}

#[test]
fn bad_input_gets_the_right_codes_and_the_server_goes_on() {
    let sink = Sink::start();
    let relay = Relay::start(
        "bad",
        sink.port,
        &[
            "--command-timeout",
            "2",
            "--max-message-size",
            "100000",
            "--max-recipients",
            "3",
            "--max-commands",
            "40",
        ],
    );
    let mut c = relay.client();

    // Out of order: DATA and RCPT before MAIL, DATA without a recipient, nested MAIL.
    assert!(c.cmd("DATA").starts_with("503 5.5.1"));
    assert!(c.cmd("RCPT TO:<sam@example.com>").starts_with("503 5.5.1"));
    assert!(c.cmd("MAIL FROM:<pat@city.test>").starts_with("250"));
    let r = c.cmd("DATA");
    assert!(r.starts_with("503 5.5.1"), "DATA without RCPT: {r}");
    assert!(c.cmd("MAIL FROM:<pat@city.test>").starts_with("503"));
    assert!(c.cmd("RSET").starts_with("250"));
    // Syntax and parameters.
    assert!(c.cmd("MAIL FROM:pat@city.test").starts_with("501"));
    assert!(
        c.cmd("MAIL FROM:<pat@city.test> SIZE=100001")
            .starts_with("552 5.3.4")
    );
    assert!(
        c.cmd("MAIL FROM:<pat@city.test> RET=FULL")
            .starts_with("555 5.5.4")
    );
    assert!(c.cmd("MAIL FROM:<not an address>").starts_with("553"));
    assert!(c.cmd("BDAT 10 LAST").starts_with("502 5.5.1"));

    // An overlong command: 500 5.5.2, and the connection is still usable.
    let long = format!("NOOP {}", "x".repeat(2000));
    let r = c.cmd(&long);
    assert!(r.starts_with("500 5.5.2"), "{r}");
    assert!(c.cmd("NOOP").starts_with("250"));

    // Recipients past the limit: 452 (the client sends them in another transaction).
    assert!(
        c.cmd("MAIL FROM:<pat@city.test> SIZE=500 BODY=8BITMIME")
            .starts_with("250")
    );
    for i in 0..3 {
        assert!(
            c.cmd(&format!("RCPT TO:<r{i}@example.com>"))
                .starts_with("250")
        );
    }
    let r = c.cmd("RCPT TO:<r3@example.com>");
    assert!(r.starts_with("452 4.5.3"), "{r}");
    assert!(c.cmd("RSET").starts_with("250"));

    // An overlong line inside the message: refused after its end, nothing forwarded.
    let mut long_line = message("long", "short line");
    long_line.extend_from_slice(&[b'y'; 1500]);
    long_line.extend_from_slice(b"\r\n");
    let r = c.send_message("pat@city.test", &["sam@example.com"], &long_line);
    assert!(r.starts_with("500 5.5.2"), "{r}");

    // Too large: 552 after the end of DATA.
    let big = message("big", &format!("{}\r\n", "z".repeat(900)).repeat(120));
    let r = c.send_message("pat@city.test", &["sam@example.com"], &big);
    assert!(r.starts_with("552 5.3.4"), "{r}");

    // A bare LF inside the text: refused (554 5.5.2), the connection goes on.
    let r = c.cmd("MAIL FROM:<pat@city.test>");
    assert!(r.starts_with("250"), "{r}");
    assert!(c.cmd("RCPT TO:<sam@example.com>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: bare\r\n\r\nline one\nline two\r\n.\r\n");
    let r = c.reply();
    assert!(r.starts_with("554 5.5.2"), "{r}");
    assert!(c.cmd("NOOP").starts_with("250"));
    assert_eq!(sink.deliveries().len(), 0);

    // SMTP smuggling: a bare-LF "." and a second transaction behind it. The relay refuses and
    // closes; the hidden MAIL FROM is never run and nothing is forwarded.
    let mut c = relay.client();
    assert!(c.cmd("MAIL FROM:<pat@city.test>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<sam@example.com>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(
        b"Subject: outer\r\n\r\nhello\n.\nMAIL FROM:<ceo@city.test>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n\
          Subject: smuggled\r\n\r\nsmuggled\r\n.\r\n",
    );
    let r = c.reply();
    assert!(r.starts_with("554 5.5.2"), "{r}");
    assert!(
        c.closed(),
        "the connection is closed after a bare-LF end of data"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.deliveries().len(), 0, "nothing smuggled through");

    // Garbage: binary bytes and non-UTF-8 lines get 500; enough of them close the connection.
    let mut g = relay.client();
    g.send(b"\x00\xff\xfe\x80garbage\r\n");
    assert!(g.reply().starts_with("500"));
    let mut closed_with = String::new();
    for _ in 0..30 {
        g.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n");
        let r = g.reply();
        if r.starts_with("421") || r.is_empty() {
            closed_with = r;
            break;
        }
        assert!(r.starts_with("50"), "{r}");
    }
    assert!(closed_with.starts_with("421 4.7.0"), "{closed_with:?}");

    // Too many commands on one connection: 421.
    let mut n = relay.client();
    let mut last = String::new();
    for _ in 0..45 {
        last = n.cmd("NOOP");
        if !last.starts_with("250") {
            break;
        }
    }
    assert!(last.starts_with("421 4.7.0"), "{last}");

    // A client that stalls: 421 4.4.2 after the command timeout, then the connection closes.
    let mut s = relay.client();
    s.set_read_timeout(Duration::from_secs(10));
    let started = Instant::now();
    let r = s.reply();
    assert!(r.starts_with("421 4.4.2"), "{r:?}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(s.closed());
    // Stalled inside DATA too.
    let mut s = relay.client();
    s.set_read_timeout(Duration::from_secs(10));
    assert!(s.cmd("MAIL FROM:<pat@city.test>").starts_with("250"));
    assert!(s.cmd("RCPT TO:<sam@example.com>").starts_with("250"));
    assert!(s.cmd("DATA").starts_with("354"));
    s.send(b"Subject: half a message\r\n");
    assert!(s.reply().starts_with("421 4.4.2"));

    // Abrupt disconnects mid-command and mid-DATA are no trouble either.
    let mut a = relay.client();
    a.send(b"MAIL FROM:<pat@ci");
    drop(a);
    let mut a = relay.client();
    assert!(a.cmd("MAIL FROM:<pat@city.test>").starts_with("250"));
    assert!(a.cmd("RCPT TO:<sam@example.com>").starts_with("250"));
    assert!(a.cmd("DATA").starts_with("354"));
    a.send(b"Subject: cut\r\n\r\nhalf");
    drop(a);

    relay.assert_serving();
    // After all that, a good message still goes through.
    let mut c = relay.client();
    let ok = message("after", "All fine.");
    assert!(
        c.send_message("pat@city.test", &["sam@example.com"], &ok)
            .starts_with("250")
    );
    sink.wait_all(
        "the message after the bad input",
        Duration::from_secs(10),
        |d| d.len() == 1,
    );
    assert!(!relay.log().contains("panicked"), "{}", relay.log());
}

#[test]
fn pipelining_connection_limit_and_sigterm() {
    let sink = Sink::start();
    let relay = Relay::start("pipe", sink.port, &["--max-connections", "2"]);

    // A whole transaction in one write: the replies come back in order.
    let mut c = relay.client();
    let mut batch = b"MAIL FROM:<pat@city.test>\r\nRCPT TO:<sam@example.com>\r\nRCPT TO:<lee@example.com>\r\nDATA\r\n".to_vec();
    c.send(&batch);
    for want in ["250 2.1.0", "250 2.1.5", "250 2.1.5", "354"] {
        let r = c.reply();
        assert!(r.starts_with(want), "{want}: {r}");
    }
    batch = stuffed(&message("pipelined", "Sent in one go."));
    batch.extend_from_slice(b"NOOP\r\n");
    c.send(&batch);
    assert!(c.reply().starts_with("250 2.0.0"));
    assert!(c.reply().starts_with("250"));
    let d = sink.wait_all("the pipelined message", Duration::from_secs(10), |d| {
        d.len() == 1
    });
    assert_eq!(d[0].rcpt_to, ["sam@example.com", "lee@example.com"]);

    // Two connections are open (c and this one): a third is told to come back later.
    let second = relay.client();
    let mut third = Client::connect(relay.port);
    let r = third.reply();
    assert!(r.starts_with("421 4.3.2"), "{r}");
    drop((second, third));

    // A message in flight when SIGTERM comes (connected once the slot is free again).
    let start = Instant::now();
    let mut d = loop {
        let mut d = Client::connect(relay.port);
        if d.reply().starts_with("220") {
            break d;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no slot freed");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(d.cmd("EHLO late.test").starts_with("250"));
    assert!(d.cmd("MAIL FROM:<pat@city.test>").starts_with("250"));
    assert!(d.cmd("RCPT TO:<kim@example.com>").starts_with("250"));
    assert!(d.cmd("DATA").starts_with("354"));
    d.send(b"Subject: in flight\r\n\r\nfirst half\r\n");

    // SIGHUP reloads the policy; the relay goes on serving.
    let pid = relay.child.as_ref().map(|c| c.id()).expect("pid");
    let hup = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(hup.success());
    let start = Instant::now();
    while !relay.log().contains("policy and patterns reloaded") {
        assert!(start.elapsed() < Duration::from_secs(15), "{}", relay.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(c.cmd("NOOP").starts_with("250"));

    // SIGTERM: idle connections are told 421 and the relay exits cleanly.
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let r = c.reply();
    assert!(r.starts_with("421 4.3.2"), "{r:?}");
    // The message in flight is finished and forwarded; then that connection is closed too.
    d.send(b"second half\r\n.\r\n");
    let r = d.reply();
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert!(d.cmd("NOOP").starts_with("421 4.3.2"));
    sink.wait_all(
        "the message in flight at SIGTERM",
        Duration::from_secs(10),
        |m| m.iter().any(|m| m.rcpt_to == ["kim@example.com"]),
    );
    let mut relay = relay;
    let mut child = relay.child.take().expect("child");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}\n{}", relay.log());
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "relay did not stop\n{}",
            relay.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(relay.log().contains("stopped"), "{}", relay.log());
}

/// A throw-away self-signed certificate for relay.test and 127.0.0.1: (cert file, key file).
fn certificate(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["relay.test".into(), "127.0.0.1".into()])
        .expect("certificate");
    std::fs::create_dir_all(dir).expect("cert dir");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).expect("cert");
    std::fs::write(&key, ck.key_pair.serialize_pem()).expect("key");
    (cert, key)
}

#[test]
fn starttls_on_both_sides() {
    let sink = Sink::start();
    let certs = std::env::temp_dir().join(format!("maildlp-relay-tls-{}", std::process::id()));
    let (cert, key) = certificate(&certs);
    let (cert_s, key_s) = (cert.to_string_lossy(), key.to_string_lossy());
    // B offers STARTTLS with the certificate and forwards to the sink.
    let b = Relay::start(
        "tls-b",
        sink.port,
        &["--tls-cert", &cert_s, "--tls-key", &key_s],
    );

    // What a client sees of it: STARTTLS advertised; arguments refused; anything pipelined
    // behind STARTTLS in clear text is not run.
    let mut c = b.client();
    let ehlo = c.cmd("EHLO again.test");
    assert!(
        ehlo.contains("250-STARTTLS") || ehlo.contains("250 STARTTLS"),
        "{ehlo}"
    );
    assert!(c.cmd("STARTTLS now").starts_with("501"));
    c.send(b"STARTTLS\r\nMAIL FROM:<injected@city.test>\r\n");
    assert!(c.reply().starts_with("220 2.0.0"));
    drop(c);
    let start = Instant::now();
    while !b
        .log()
        .contains("clear-text input after STARTTLS discarded")
    {
        assert!(start.elapsed() < Duration::from_secs(5), "{}", b.log());
        std::thread::sleep(Duration::from_millis(50));
    }

    // A: required TLS to B, B's certificate trusted through --next-hop-ca.
    let a = Relay::start(
        "tls-a",
        b.port,
        &["--next-hop-tls", "required", "--next-hop-ca", &cert_s],
    );
    let clean = message("over-tls", "Encrypted between the relays.");
    let r = a
        .client()
        .send_message("pat@city.test", &["sam@example.com"], &clean);
    assert!(r.starts_with("250 2.0.0"), "{r}\n{}", b.log());
    let d = sink.wait_all(
        "the message through both relays",
        Duration::from_secs(10),
        |d| d.len() == 1,
    );
    assert_eq!(d[0].data, clean);
    assert_eq!(d[0].rcpt_to, ["sam@example.com"]);
    assert_eq!(b.log().matches("TLS established").count(), 1, "{}", b.log());

    // Opportunistic (the default): encrypts to B without checking its certificate.
    let opp = Relay::start("tls-opp", b.port, &[]);
    let r = opp
        .client()
        .send_message("pat@city.test", &["sam@example.com"], &clean);
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert_eq!(b.log().matches("TLS established").count(), 2, "{}", b.log());

    // Required, but B's certificate chains to no trusted CA: 451, nothing forwarded.
    let untrusted = Relay::start("tls-untrusted", b.port, &["--next-hop-tls", "required"]);
    let r = untrusted
        .client()
        .send_message("pat@city.test", &["sam@example.com"], &clean);
    assert!(r.starts_with("451 4.4.1"), "{r}");
    // Required, and the next hop offers no STARTTLS: 451.
    let plain = Relay::start("tls-plain", sink.port, &["--next-hop-tls", "required"]);
    let r = plain
        .client()
        .send_message("pat@city.test", &["sam@example.com"], &clean);
    assert!(r.starts_with("451 4.4.1"), "{r}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.deliveries().len(), 2);
    let _ = std::fs::remove_dir_all(&certs);
}

//! A loopback SMTP next hop for tests: accepts every message (recipients whose local part
//! starts with `refuse-` get 550) and keeps envelopes and messages, dot-stuffing undone. Where
//! released mail, notices and relayed or MTA-delivered mail arrive. Include it with
//! `#[path = "smtp_sink.rs"] mod smtp_sink;` from another support module, or
//! `#[path = "support/smtp_sink.rs"] mod smtp_sink;` from a test.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One message the sink accepted: its envelope and its content.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
}

impl Delivery {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// The header section (for assertion messages: a body may hold a test's sensitive value).
    pub fn head(&self) -> String {
        let text = self.text();
        text.split("\r\n\r\n").next().unwrap_or("").to_string()
    }

    /// Header `name`, unfolded, if the message has it.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.head().replace("\r\n ", " ").replace("\r\n\t", "\t");
        let prefix = format!("{}:", name.to_ascii_lowercase());
        head.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    }
}

/// A running sink; its threads end with the test process.
#[derive(Clone)]
pub struct Sink {
    pub port: u16,
    pub kept: Arc<Mutex<Vec<Delivery>>>,
}

impl Sink {
    pub fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the SMTP sink");
        let port = listener.local_addr().expect("sink address").port();
        let kept: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let k = kept.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let k = k.clone();
                std::thread::spawn(move || {
                    let _ = session(conn, &k);
                });
            }
        });
        Sink { port, kept }
    }

    /// Everything delivered so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.kept.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// Wait up to `within` for a delivery that `pick` selects.
    pub fn wait_for(&self, within: Duration, pick: impl Fn(&Delivery) -> bool) -> Option<Delivery> {
        let end = Instant::now() + within;
        loop {
            if let Some(d) = self.deliveries().into_iter().find(|d| pick(d)) {
                return Some(d);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until `ok` holds for all deliveries so far (or panic naming `what`).
    pub fn wait_all(
        &self,
        what: &str,
        within: Duration,
        ok: impl Fn(&[Delivery]) -> bool,
    ) -> Vec<Delivery> {
        let end = Instant::now() + within;
        loop {
            let d = self.deliveries();
            if ok(&d) {
                return d;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {what}; sink has {d:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The address in `MAIL FROM:<a> SIZE=..` / `RCPT TO:<a>`.
fn path_arg(line: &str) -> String {
    let after = line.split_once(':').map(|(_, a)| a).unwrap_or("");
    match (after.find('<'), after.find('>')) {
        (Some(a), Some(b)) if a < b => after[a + 1..b].to_string(),
        _ => after.split_whitespace().next().unwrap_or("").to_string(),
    }
}

fn session(conn: TcpStream, kept: &Mutex<Vec<Delivery>>) -> std::io::Result<()> {
    let mut out = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    out.write_all(b"220 sink.test ESMTP\r\n")?;
    let (mut mail_from, mut rcpt_to) = (String::new(), Vec::new());
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line).into_owned();
        let cmd = text.to_ascii_uppercase();
        if cmd.starts_with("EHLO") {
            out.write_all(b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")?;
        } else if cmd.starts_with("MAIL FROM:") {
            mail_from = path_arg(text.trim_end());
            rcpt_to.clear();
            out.write_all(b"250 2.1.0 ok\r\n")?;
        } else if cmd.starts_with("RCPT TO:") {
            let rcpt = path_arg(text.trim_end());
            if rcpt.starts_with("refuse-") {
                out.write_all(b"550 5.1.1 sink refuses this recipient\r\n")?;
            } else {
                rcpt_to.push(rcpt);
                out.write_all(b"250 2.1.5 ok\r\n")?;
            }
        } else if cmd.starts_with("RSET") {
            mail_from.clear();
            rcpt_to.clear();
            out.write_all(b"250 ok\r\n")?;
        } else if cmd.starts_with("DATA") {
            out.write_all(b"354 go ahead\r\n")?;
            let mut data = Vec::new();
            loop {
                line.clear();
                if reader.read_until(b'\n', &mut line)? == 0 {
                    return Ok(());
                }
                // Only CRLF.CRLF ends the data: a bare-LF end smuggled past a filter stays
                // visible in what the sink kept.
                if line == b".\r\n" {
                    break;
                }
                // RFC 5321 4.5.2: a leading dot was doubled by the client.
                data.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
            }
            if let Ok(mut k) = kept.lock() {
                k.push(Delivery {
                    mail_from: std::mem::take(&mut mail_from),
                    rcpt_to: std::mem::take(&mut rcpt_to),
                    data,
                });
            }
            out.write_all(b"250 2.0.0 kept by sink\r\n")?;
        } else if cmd.starts_with("QUIT") {
            out.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"250 ok\r\n")?;
        }
    }
}

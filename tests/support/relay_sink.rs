//! A loopback SMTP next hop for the relay tests that keeps every envelope and message it accepts, and a
//! small line-level SMTP client that shows the server's replies as they are. Include with
//! `#[path = "support/relay_sink.rs"] mod relay_sink;`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One message the sink accepted: its envelope and its content (dot-stuffing undone).
#[derive(Clone, Debug)]
pub struct Delivery {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
}

/// A running sink; its thread ends with the test process.
#[derive(Clone)]
pub struct Sink {
    pub port: u16,
    kept: Arc<Mutex<Vec<Delivery>>>,
}

impl Sink {
    /// Accepts everything, except recipients whose local part starts with `refuse-` (550).
    pub fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind sink");
        let port = listener.local_addr().expect("sink addr").port();
        let kept: Arc<Mutex<Vec<Delivery>>> = Arc::new(Mutex::new(Vec::new()));
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

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.kept.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Wait until `ok` holds for the deliveries (or panic with `what`).
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&[Delivery]) -> bool,
    ) -> Vec<Delivery> {
        let start = Instant::now();
        loop {
            let d = self.deliveries();
            if ok(&d) {
                return d;
            }
            assert!(
                start.elapsed() < timeout,
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
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
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
                if line == b".\r\n" {
                    break;
                }
                let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
                data.extend_from_slice(unstuffed);
            }
            if let Ok(mut s) = kept.lock() {
                s.push(Delivery {
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

/// A client that writes raw bytes and reads whole (multi-line) replies.
pub struct Client {
    out: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        // On a loaded 2-core CI machine a loopback connect was once reset during the
        // handshake (ECONNRESET before the relay could accept it); try again briefly.
        let mut tries = 0;
        let conn = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(c) => break c,
                Err(e) if tries < 5 => {
                    tries += 1;
                    eprintln!("connect to the relay: {e}; trying again");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("connect to the relay: {e}"),
            }
        };
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let out = conn.try_clone().expect("clone");
        Client {
            out,
            r: BufReader::new(conn),
        }
    }

    pub fn set_read_timeout(&self, d: Duration) {
        self.out.set_read_timeout(Some(d)).expect("timeout");
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.out.write_all(bytes).expect("send");
    }

    /// Send a line (CRLF added) and read the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// The next reply, all its lines; "" when the server closed the connection.
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            match self.r.read_line(&mut line) {
                Ok(0) | Err(_) => return all,
                Ok(_) => {}
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    /// True when the server has closed the connection (read returns end of file).
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.r.read(&mut b), Ok(0) | Err(_))
    }

    /// EHLO, MAIL, RCPT..., DATA with `message` (CRLF lines, dot-stuffed here): the reply to
    /// the first refused step or to the end of DATA.
    pub fn send_message(&mut self, from: &str, rcpts: &[&str], message: &[u8]) -> String {
        let r = self.cmd(&format!("MAIL FROM:<{from}>"));
        if !r.starts_with('2') {
            return r;
        }
        for rc in rcpts {
            let r = self.cmd(&format!("RCPT TO:<{rc}>"));
            if !r.starts_with('2') {
                return r;
            }
        }
        let r = self.cmd("DATA");
        if !r.starts_with('3') {
            return r;
        }
        self.send(&stuffed(message));
        self.reply()
    }
}

/// `message` as DATA text: leading dots doubled, the ending CRLF "." CRLF added.
pub fn stuffed(message: &[u8]) -> Vec<u8> {
    assert!(message.ends_with(b"\r\n"), "messages end with CRLF");
    let mut wire = Vec::with_capacity(message.len() + 64);
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            wire.push(b'.');
        }
        wire.extend_from_slice(line);
    }
    wire.extend_from_slice(b".\r\n");
    wire
}

//! A minimal SMTP receiver on loopback that accepts everything and keeps envelopes and
//! messages: where released mail and notices arrive in tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
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

#[derive(Clone)]
pub struct Sink {
    pub port: u16,
    pub kept: Arc<Mutex<Vec<Delivery>>>,
}

impl Sink {
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
        self.kept.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// Wait until a delivery satisfies `pred`.
    pub fn wait_for(&self, within: Duration, pred: impl Fn(&Delivery) -> bool) -> Option<Delivery> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Some(d) = self.deliveries().into_iter().find(|d| pred(d)) {
                return Some(d);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

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
    out.write_all(b"220 sink ESMTP\r\n")?;
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
            out.write_all(b"250-sink\r\n250 8BITMIME\r\n")?;
        } else if cmd.starts_with("MAIL FROM:") {
            mail_from = path_arg(text.trim_end());
            rcpt_to.clear();
            out.write_all(b"250 ok\r\n")?;
        } else if cmd.starts_with("RCPT TO:") {
            rcpt_to.push(path_arg(text.trim_end()));
            out.write_all(b"250 ok\r\n")?;
        } else if cmd.starts_with("DATA") {
            out.write_all(b"354 go ahead\r\n")?;
            let mut data = Vec::new();
            loop {
                line.clear();
                if reader.read_until(b'\n', &mut line)? == 0 {
                    return Ok(());
                }
                if line == b".\r\n" || line == b".\n" {
                    break;
                }
                data.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
            }
            if let Ok(mut k) = kept.lock() {
                k.push(Delivery {
                    mail_from: std::mem::take(&mut mail_from),
                    rcpt_to: std::mem::take(&mut rcpt_to),
                    data,
                });
            }
            out.write_all(b"250 kept\r\n")?;
        } else if cmd.starts_with("QUIT") {
            out.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"250 ok\r\n")?;
        }
    }
}

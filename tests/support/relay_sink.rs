//! A small line-level SMTP client for the relay tests that shows the server's replies as they
//! are (the next hop they relay to is `support/smtp_sink.rs`). Include with
//! `#[path = "support/relay_sink.rs"] mod relay_sink;`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

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

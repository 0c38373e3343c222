//! One SMTP connection: the command state machine (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT,
//! STARTTLS, XFORWARD) and every per-connection limit. What happens to a received message is
//! the [`Deliver`] implementation's business.
//!
//! Line ends: commands may end in CRLF or a bare LF (as Postfix accepts). Message text must
//! use CRLF: the only end of DATA is CRLF "." CRLF. A bare LF or bare CR inside the text gets
//! the message refused (554 5.5.2) at its end, and a "." line ended by a bare LF — what an SMTP
//! smuggling attempt or a broken client sends to end the message — is answered with 554 5.5.2
//! and the connection is closed: nothing after it is read as commands.

use super::{Config, MAX_LINE, Reservation};
use crate::milter::Envelope;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::watch;

/// A connection's byte stream: TCP, TLS over TCP, or an in-memory pipe in tests.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An SMTP reply: the code and the text after it (enhanced status code first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            text: text.into(),
        }
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        // Replies are one line of printable ASCII whatever the text came from.
        let text = crate::milter::codec::sanitize(&self.text, 500);
        out.extend_from_slice(format!("{} {}\r\n", self.code, text).as_bytes());
    }
}

/// What becomes of a received message.
pub trait Deliver: Send + Sync + 'static {
    /// Judge and forward or store `message` (the text as received, CRLF line ends, dots
    /// unstuffed); the reply is what the client is told at the end of DATA.
    fn deliver(&self, envelope: Envelope, message: Vec<u8>) -> impl Future<Output = Reply> + Send;
}

/// Tell a connection over the limit to come back later.
pub async fn refuse(mut stream: tokio::net::TcpStream, hostname: String) {
    let line = format!("421 4.3.2 {hostname} too many connections, try again later\r\n");
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.write_all(line.as_bytes()),
    )
    .await;
}

enum Line {
    Complete,
    TooLong,
    Eof,
}

/// Why a line was not read.
enum Stop {
    /// Closed by the client, or a read or write failed: nothing more to say.
    Gone,
    /// Tell the client this, then close.
    Close(Reply),
}

/// Read one line (through its LF) into `buf`; a longer line than `max` is consumed whole but
/// not kept.
async fn read_line(
    conn: &mut BufReader<Box<dyn Io>>,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let avail = conn.fill_buf().await?;
        if avail.is_empty() {
            return Ok(Line::Eof);
        }
        let (take, done) = match memchr::memchr(b'\n', avail) {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        if !too_long && buf.len() + take <= max {
            buf.extend_from_slice(&avail[..take]);
        } else {
            too_long = true;
            buf.clear();
        }
        conn.consume(take);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

pub struct Session<D: Deliver> {
    conn: Option<BufReader<Box<dyn Io>>>,
    out: Vec<u8>,
    peer: SocketAddr,
    id: u64,
    config: Arc<Config>,
    deliver: Arc<D>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    budget: Arc<super::Budget>,
    stop: watch::Receiver<bool>,
    started: Instant,
    encrypted: bool,
    helo: Option<String>,
    /// XFORWARD attributes from the MTA in front (client address, HELO, its queue id).
    forwarded: Envelope,
    mail_from: Option<String>,
    rcpts: Vec<String>,
    messages: u64,
    commands: usize,
    errors: usize,
}

/// Continue the session or end it.
enum Flow {
    Go,
    End,
}

impl<D: Deliver> Session<D> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        io: Box<dyn Io>,
        peer: SocketAddr,
        id: u64,
        config: Arc<Config>,
        deliver: Arc<D>,
        tls: Option<tokio_rustls::TlsAcceptor>,
        budget: Arc<super::Budget>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Session {
            conn: Some(BufReader::with_capacity(16 * 1024, io)),
            out: Vec::with_capacity(512),
            peer,
            id,
            config,
            deliver,
            tls,
            budget,
            stop,
            started: Instant::now(),
            encrypted: false,
            helo: None,
            forwarded: Envelope::default(),
            mail_from: None,
            rcpts: Vec::new(),
            messages: 0,
            commands: 0,
            errors: 0,
        }
    }

    fn reply(&mut self, code: u16, text: impl Into<String>) {
        Reply::new(code, text).write_to(&mut self.out);
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let res = tokio::time::timeout(self.config.command_timeout, async {
            conn.get_mut().write_all(&self.out).await?;
            conn.get_mut().flush().await
        })
        .await;
        self.out.clear();
        match res {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client did not read the reply in time",
            )),
        }
    }

    /// Read a line within the command timeout and what is left of the connection's time;
    /// `idle`: no message is in progress, so a shutdown may end the session here.
    async fn next_line(&mut self, buf: &mut Vec<u8>, idle: bool) -> Result<Line, Stop> {
        // Replies wait while the client has pipelined more whole commands (one write per
        // batch); they go out before any read that may wait for the client.
        let pending = self
            .conn
            .as_ref()
            .is_some_and(|c| memchr::memchr(b'\n', c.buffer()).is_some());
        if !pending && self.flush().await.is_err() {
            return Err(Stop::Gone);
        }
        let left = self
            .config
            .connection_timeout
            .saturating_sub(self.started.elapsed());
        if left.is_zero() {
            return Err(Stop::Close(Reply::new(
                421,
                format!(
                    "4.4.2 {} connection time limit reached, closing",
                    self.config.hostname
                ),
            )));
        }
        let wait = self.config.command_timeout.min(left);
        let Some(conn) = self.conn.as_mut() else {
            return Err(Stop::Gone);
        };
        let mut stop = self.stop.clone();
        let read = tokio::time::timeout(wait, read_line(conn, buf, MAX_LINE));
        let result = if idle {
            tokio::select! {
                r = read => r,
                _ = super::stopped(&mut stop) => {
                    return Err(Stop::Close(Reply::new(
                        421,
                        format!("4.3.2 {} shutting down, try again later", self.config.hostname),
                    )));
                }
            }
        } else {
            read.await
        };
        match result {
            Ok(Ok(Line::Eof)) | Ok(Err(_)) => Err(Stop::Gone),
            Ok(Ok(line)) => Ok(line),
            Err(_) => Err(Stop::Close(Reply::new(
                421,
                format!(
                    "4.4.2 {} timeout waiting for input, closing",
                    self.config.hostname
                ),
            ))),
        }
    }

    /// Serve the connection to its end.
    pub async fn run(mut self) {
        let greeting = format!("{} ESMTP maildlp relay", self.config.hostname);
        self.reply(220, greeting);
        let mut buf = Vec::with_capacity(MAX_LINE);
        loop {
            let idle = self.mail_from.is_none();
            let line = match self.next_line(&mut buf, idle).await {
                Ok(l) => l,
                Err(Stop::Gone) => break,
                Err(Stop::Close(r)) => {
                    tracing::info!(peer = %self.peer, session = self.id, "closing: {}", r.text);
                    r.write_to(&mut self.out);
                    let _ = self.flush().await;
                    break;
                }
            };
            self.commands += 1;
            if self.commands > self.config.max_commands {
                tracing::warn!(peer = %self.peer, session = self.id, "too many commands: closed");
                self.reply(421, "4.7.0 too many commands in one connection, closing");
                let _ = self.flush().await;
                break;
            }
            let flow = match line {
                Line::TooLong => {
                    self.error(500, "5.5.2 line too long (RFC 5321 allows 1000 bytes)");
                    Flow::Go
                }
                Line::Complete => self.command(&buf).await,
                Line::Eof => Flow::End,
            };
            if matches!(flow, Flow::End) {
                let _ = self.flush().await;
                break;
            }
            if self.errors > self.config.max_errors {
                tracing::warn!(peer = %self.peer, session = self.id, errors = self.errors, "too many errors: closed");
                self.reply(421, "4.7.0 too many errors, closing");
                let _ = self.flush().await;
                break;
            }
        }
        if let Some(mut conn) = self.conn.take() {
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(2), conn.get_mut().shutdown())
                    .await;
        }
    }

    /// A refused command (counted against `max_errors`).
    fn error(&mut self, code: u16, text: &str) {
        self.errors += 1;
        self.reply(code, text);
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpts.clear();
    }

    async fn command(&mut self, line: &[u8]) -> Flow {
        let Ok(text) = std::str::from_utf8(line) else {
            self.error(500, "5.5.2 command is not valid UTF-8");
            return Flow::Go;
        };
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, arg) = match text.split_once(' ') {
            Some((v, a)) => (v, a.trim()),
            None => (text, ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" | "HELO" if arg.is_empty() => self.error(501, "5.5.4 give your host name"),
            "EHLO" => {
                self.reset();
                // Cleaned like XFORWARD values: it may reach logs and quarantine records.
                self.helo = Some(crate::milter::codec::sanitize(arg, 255));
                let c = &self.config;
                let mut lines = vec![
                    format!(
                        "{} hello {}",
                        c.hostname,
                        crate::milter::codec::sanitize(arg, 100)
                    ),
                    format!("SIZE {}", c.max_message_bytes),
                    "8BITMIME".into(),
                    "SMTPUTF8".into(),
                    "PIPELINING".into(),
                    "ENHANCEDSTATUSCODES".into(),
                ];
                if self.peer.ip().is_loopback() {
                    lines.push("XFORWARD NAME ADDR PROTO HELO IDENT SOURCE".into());
                }
                if self.tls.is_some() && !self.encrypted {
                    lines.push("STARTTLS".into());
                }
                let last = lines.len() - 1;
                for (i, l) in lines.iter().enumerate() {
                    let sep = if i == last { ' ' } else { '-' };
                    self.out
                        .extend_from_slice(format!("250{sep}{l}\r\n").as_bytes());
                }
            }
            "HELO" => {
                self.reset();
                // Cleaned like XFORWARD values: it may reach logs and quarantine records.
                self.helo = Some(crate::milter::codec::sanitize(arg, 255));
                let name = self.config.hostname.clone();
                self.reply(250, name);
            }
            "MAIL" => self.mail(arg),
            "RCPT" => self.rcpt(arg),
            "DATA" if !arg.is_empty() => self.error(501, "5.5.4 DATA takes no argument"),
            "DATA" => return self.data().await,
            "RSET" => {
                self.reset();
                self.reply(250, "2.0.0 Ok");
            }
            "NOOP" => self.reply(250, "2.0.0 Ok"),
            "QUIT" => {
                self.reply(221, "2.0.0 Bye");
                return Flow::End;
            }
            "VRFY" => self.reply(
                252,
                "2.5.0 cannot VRFY; send the message and it will be tried",
            ),
            "HELP" => self.reply(
                214,
                "2.0.0 EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS XFORWARD",
            ),
            "STARTTLS" => return self.starttls(arg).await,
            "XFORWARD" => self.xforward(arg),
            "" => self.error(500, "5.5.2 empty command"),
            _ => {
                let shown = crate::milter::codec::sanitize(verb, 20);
                self.error(502, &format!("5.5.1 command {shown} not implemented"));
            }
        }
        Flow::Go
    }

    fn mail(&mut self, arg: &str) {
        if self.helo.is_none() {
            return self.error(503, "5.5.1 send EHLO or HELO first");
        }
        if self.mail_from.is_some() {
            return self.error(503, "5.5.1 nested MAIL command");
        }
        let Some((addr, params)) = path(arg, "FROM:") else {
            return self.error(501, "5.5.4 syntax: MAIL FROM:<address>");
        };
        let mut smtputf8 = false;
        for p in params.split_whitespace() {
            let (key, value) = p.split_once('=').unwrap_or((p, ""));
            match key.to_ascii_uppercase().as_str() {
                "SIZE" => match value.parse::<u64>() {
                    Ok(n) if n > self.config.max_message_bytes as u64 => {
                        return self.error(
                            552,
                            &format!(
                                "5.3.4 message size {n} exceeds the limit of {} bytes",
                                self.config.max_message_bytes
                            ),
                        );
                    }
                    Ok(_) => {}
                    Err(_) => return self.error(501, "5.5.4 SIZE takes a number of bytes"),
                },
                "BODY" if value.eq_ignore_ascii_case("7BIT") => {}
                "BODY" if value.eq_ignore_ascii_case("8BITMIME") => {}
                "SMTPUTF8" if value.is_empty() => smtputf8 = true,
                _ => {
                    let shown = crate::milter::codec::sanitize(p, 40);
                    return self.error(555, &format!("5.5.4 unsupported parameter {shown}"));
                }
            }
        }
        if !addr.is_empty()
            && let Err(r) = check_address(&addr, smtputf8)
        {
            return self.error(r.code, &r.text);
        }
        self.mail_from = Some(addr);
        self.reply(250, "2.1.0 Ok");
    }

    fn rcpt(&mut self, arg: &str) {
        if self.mail_from.is_none() {
            return self.error(503, "5.5.1 send MAIL first");
        }
        let Some((addr, params)) = path(arg, "TO:") else {
            return self.error(501, "5.5.4 syntax: RCPT TO:<address>");
        };
        if let Some(p) = params.split_whitespace().next() {
            let shown = crate::milter::codec::sanitize(p, 40);
            return self.error(555, &format!("5.5.4 unsupported parameter {shown}"));
        }
        if self.rcpts.len() >= self.config.max_recipients {
            // Not an error of the client: it sends the rest in another transaction.
            return self.reply(
                452,
                format!(
                    "4.5.3 too many recipients (at most {} per message)",
                    self.config.max_recipients
                ),
            );
        }
        if addr.is_empty() {
            return self.error(553, "5.1.3 a recipient address is required");
        }
        // The client may send non-ASCII recipients only after MAIL ... SMTPUTF8; the relay
        // accepts them either way and lettre asks the next hop for SMTPUTF8.
        if let Err(r) = check_address(&addr, true) {
            return self.error(r.code, &r.text);
        }
        self.rcpts.push(addr);
        self.reply(250, "2.1.5 Ok");
    }

    /// Postfix's XFORWARD: the original client and queue id, for log lines and quarantine
    /// records only. Taken from loopback clients (the MTA on the same host) only, so a remote
    /// sender cannot write them.
    fn xforward(&mut self, arg: &str) {
        if !self.peer.ip().is_loopback() {
            return self.error(550, "5.7.0 XFORWARD is taken from loopback clients only");
        }
        if self.mail_from.is_some() {
            return self.error(503, "5.5.1 XFORWARD inside a transaction");
        }
        for attr in arg.split_whitespace() {
            let Some((name, value)) = attr.split_once('=') else {
                return self.error(501, "5.5.4 syntax: XFORWARD NAME=VALUE ...");
            };
            let value = crate::milter::codec::sanitize(value, 255);
            let known = !value.starts_with("[UNAVAILABLE]") && !value.starts_with("[TEMPUNAVAIL]");
            match name.to_ascii_uppercase().as_str() {
                "ADDR" if known => self.forwarded.client_addr = Some(value),
                "HELO" if known => self.forwarded.helo = Some(value),
                "IDENT" if known => self.forwarded.queue_id = Some(value),
                "NAME" | "PROTO" | "SOURCE" | "ADDR" | "HELO" | "IDENT" => {}
                _ => return self.error(501, "5.5.4 unknown XFORWARD attribute"),
            }
        }
        self.reply(250, "2.0.0 Ok");
    }

    async fn starttls(&mut self, arg: &str) -> Flow {
        let Some(acceptor) = self.tls.clone() else {
            self.error(
                502,
                "5.5.1 STARTTLS not available (no certificate configured)",
            );
            return Flow::Go;
        };
        if self.encrypted {
            self.error(503, "5.5.1 TLS already active");
            return Flow::Go;
        }
        if !arg.is_empty() {
            self.error(501, "5.5.4 STARTTLS takes no argument");
            return Flow::Go;
        }
        self.reply(220, "2.0.0 ready to start TLS");
        if self.flush().await.is_err() {
            return Flow::End;
        }
        let Some(conn) = self.conn.take() else {
            return Flow::End;
        };
        // Commands pipelined after STARTTLS came in clear text: they are dropped, never run
        // inside the TLS session (CVE-2011-0411).
        if !conn.buffer().is_empty() {
            tracing::warn!(peer = %self.peer, session = self.id, "clear-text input after STARTTLS discarded");
        }
        let io = conn.into_inner();
        match tokio::time::timeout(self.config.command_timeout, acceptor.accept(io)).await {
            Ok(Ok(tls)) => {
                let (_, state) = tls.get_ref();
                tracing::info!(
                    peer = %self.peer,
                    session = self.id,
                    version = ?state.protocol_version(),
                    cipher = ?state.negotiated_cipher_suite().map(|c| c.suite()),
                    "STARTTLS: TLS established"
                );
                self.conn = Some(BufReader::with_capacity(16 * 1024, Box::new(tls)));
                self.encrypted = true;
                // RFC 3207: the client starts again with EHLO.
                self.helo = None;
                self.reset();
                Flow::Go
            }
            Ok(Err(e)) => {
                tracing::info!(peer = %self.peer, session = self.id, "TLS handshake failed: {e}");
                Flow::End
            }
            Err(_) => {
                tracing::info!(peer = %self.peer, session = self.id, "TLS handshake timed out");
                Flow::End
            }
        }
    }

    async fn data(&mut self) -> Flow {
        if self.mail_from.is_none() {
            self.error(503, "5.5.1 send MAIL first");
            return Flow::Go;
        }
        if self.rcpts.is_empty() {
            self.error(503, "5.5.1 send RCPT first (no valid recipients)");
            return Flow::Go;
        }
        self.reply(354, "end data with <CR><LF>.<CR><LF>");
        let mut message = Vec::new();
        let mut reservation = Reservation::new(&self.budget);
        // The first reason to refuse the message; the text is read to its end all the same.
        let mut refused: Option<Reply> = None;
        let mut buf = Vec::with_capacity(MAX_LINE);
        loop {
            let line = match self.next_line(&mut buf, false).await {
                Ok(l) => l,
                Err(Stop::Gone) => return Flow::End,
                Err(Stop::Close(r)) => {
                    tracing::info!(peer = %self.peer, session = self.id, "closing in DATA: {}", r.text);
                    r.write_to(&mut self.out);
                    return Flow::End;
                }
            };
            if let Line::TooLong = line {
                refused.get_or_insert(Reply::new(
                    500,
                    "5.5.2 message has a line longer than 1000 bytes (RFC 5321); encode it or wrap it",
                ));
                continue;
            }
            if buf == b".\r\n" {
                break;
            }
            if buf == b".\n" || buf == b".\r\r\n" {
                tracing::warn!(peer = %self.peer, session = self.id, "bare-LF end of data: refused and closed (SMTP smuggling defence)");
                self.errors += 1;
                self.reply(
                    554,
                    "5.5.2 message ended with a bare LF; lines must end in CRLF, closing",
                );
                return Flow::End;
            }
            let bare =
                !buf.ends_with(b"\r\n") || memchr::memchr(b'\r', &buf[..buf.len() - 2]).is_some();
            if bare {
                refused.get_or_insert(Reply::new(
                    554,
                    "5.5.2 bare LF or CR in the message; lines must end in CRLF (RFC 5321 2.3.8)",
                ));
            }
            if refused.is_some() {
                // Nothing more is kept of a refused message.
                message = Vec::new();
                continue;
            }
            let text = buf.strip_prefix(b".").unwrap_or(&buf);
            if message.len() + text.len() > self.config.max_message_bytes {
                refused = Some(Reply::new(
                    552,
                    format!(
                        "5.3.4 message exceeds the limit of {} bytes",
                        self.config.max_message_bytes
                    ),
                ));
                continue;
            }
            if !reservation.grow(text.len()) {
                tracing::warn!(peer = %self.peer, session = self.id, "buffer budget exhausted: message deferred");
                refused = Some(Reply::new(
                    452,
                    "4.3.1 the DLP relay is busy (buffer full); try again later",
                ));
                continue;
            }
            message.extend_from_slice(text);
        }
        let from = self.mail_from.take().unwrap_or_default();
        let rcpts = std::mem::take(&mut self.rcpts);
        if let Some(r) = refused {
            if r.code >= 500 {
                self.errors += 1;
            }
            tracing::info!(peer = %self.peer, session = self.id, code = r.code, "message refused: {}", r.text);
            r.write_to(&mut self.out);
            return Flow::Go;
        }
        self.messages += 1;
        let envelope = Envelope {
            client_addr: self
                .forwarded
                .client_addr
                .clone()
                .or_else(|| Some(self.peer.ip().to_string())),
            helo: self.forwarded.helo.clone().or_else(|| self.helo.clone()),
            mail_from: from,
            rcpt_to: rcpts,
            queue_id: Some(
                self.forwarded
                    .queue_id
                    .clone()
                    .unwrap_or_else(|| format!("R{}.{}", self.id, self.messages)),
            ),
            ..Envelope::default()
        };
        let reply = self.deliver.deliver(envelope, message).await;
        drop(reservation);
        reply.write_to(&mut self.out);
        // One message per XFORWARD, as Postfix sends it before each MAIL.
        self.forwarded = Envelope::default();
        Flow::Go
    }
}

/// `FROM:<addr> PARAMS` (the keyword matched without case; a space after the colon and a
/// source route tolerated): the address without brackets and the rest.
fn path<'a>(arg: &'a str, keyword: &str) -> Option<(String, &'a str)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    let mut addr = &rest[..end];
    // RFC 5321 4.1.2: a source route `@a,@b:user@d` is ignored.
    if addr.starts_with('@')
        && let Some((_, a)) = addr.split_once(':')
    {
        addr = a;
    }
    Some((addr.to_string(), rest[end + 1..].trim()))
}

/// An address the next hop can be given (lettre's rules); non-ASCII only with SMTPUTF8.
fn check_address(addr: &str, smtputf8: bool) -> Result<(), Reply> {
    if !addr.is_ascii() && !smtputf8 {
        return Err(Reply::new(553, "5.6.7 non-ASCII address without SMTPUTF8"));
    }
    addr.parse::<lettre::Address>().map(|_| ()).map_err(|_| {
        Reply::new(
            553,
            format!(
                "5.1.3 bad address syntax {}",
                crate::milter::codec::sanitize(addr, 100)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_as_clients_write_them() {
        assert_eq!(
            path("FROM:<a@b.test> SIZE=10", "FROM:"),
            Some(("a@b.test".into(), "SIZE=10"))
        );
        assert_eq!(path("from: <>", "FROM:"), Some(("".into(), "")));
        assert_eq!(
            path("TO:<@relay.test:u@d.test>", "TO:"),
            Some(("u@d.test".into(), ""))
        );
        assert_eq!(path("TO:u@d.test", "TO:"), None);
        assert_eq!(path("TO", "TO:"), None);
        assert_eq!(path("TÖ:<a@b>", "TO:"), None);
    }

    #[test]
    fn addresses_are_checked() {
        assert!(check_address("pat@city.test", false).is_ok());
        assert_eq!(
            check_address("pät@city.test", false).map_err(|r| r.code),
            Err(553)
        );
        assert!(check_address("not an address", true).is_err());
    }

    #[test]
    fn replies_are_one_printable_line() {
        let mut out = Vec::new();
        Reply::new(550, "5.7.1 bad\r\nRCPT TO:<x>").write_to(&mut out);
        assert_eq!(out, b"550 5.7.1 bad  RCPT TO:<x>\r\n");
    }
}

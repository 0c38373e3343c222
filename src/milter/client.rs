//! The MTA's side of the milter protocol: used by the tests and by the load generator
//! (`maildlp milter-load`) to drive a milter the way Postfix does.

use super::codec;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What the filter answered for one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Final action byte: `a` accept, `c` continue, `r` reject, `t` tempfail, `d` discard,
    /// `y` reply code (its text in `reply`).
    pub action: char,
    pub reply: Option<String>,
    pub headers: Vec<(String, String)>,
    pub quarantine: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("unexpected reply 0x{0:02x}")]
    Unexpected(u8),
    #[error("bad frame: {0}")]
    Frame(#[from] codec::CodecError),
}

pub struct Client<S> {
    stream: S,
    /// Protocol flags granted by the filter: which steps it answers.
    protocol: u32,
}

fn frame(cmd: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 5);
    out.extend_from_slice(&((data.len() + 1) as u32).to_be_bytes());
    out.push(cmd);
    out.extend_from_slice(data);
    out
}

fn cstrs<T: AsRef<[u8]>>(parts: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(p.as_ref());
        out.push(0);
    }
    out
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Negotiate as Postfix 3 does (version 6, every action and protocol flag offered).
    pub async fn negotiate(mut stream: S) -> Result<Self, ClientError> {
        let mut data = Vec::new();
        for v in [6u32, 0x1ff, 0x1fffff] {
            data.extend_from_slice(&v.to_be_bytes());
        }
        stream.write_all(&frame(b'O', &data)).await?;
        let (cmd, reply) = read_reply(&mut stream).await?;
        if cmd != b'O' || reply.len() < 12 {
            return Err(ClientError::Unexpected(cmd));
        }
        let protocol = u32::from_be_bytes([reply[8], reply[9], reply[10], reply[11]]);
        Ok(Client { stream, protocol })
    }

    /// Send a raw frame (tests of garbage input).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    async fn step(&mut self, cmd: u8, data: &[u8], nr_flag: u32) -> Result<(), ClientError> {
        self.stream.write_all(&frame(cmd, data)).await?;
        if self.protocol & nr_flag == 0 {
            let (c, _) = read_reply(&mut self.stream).await?;
            if c != b'c' {
                return Err(ClientError::Unexpected(c));
            }
        }
        Ok(())
    }

    /// Play one message: MAIL, RCPTs, headers (bytes, as an MTA sends them), body in chunks,
    /// end of body; read the outcome.
    pub async fn message<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        from: &str,
        rcpts: &[&str],
        headers: &[(N, V)],
        body: &[u8],
    ) -> Result<Outcome, ClientError> {
        self.stream
            .write_all(&frame(
                b'D',
                &[b"M".as_slice(), &cstrs(&["i", "TESTQID"])].concat(),
            ))
            .await?;
        self.step(b'M', &cstrs(&[&format!("<{from}>")]), codec::SMFIP_NR_MAIL)
            .await?;
        for r in rcpts {
            self.step(b'R', &cstrs(&[&format!("<{r}>")]), codec::SMFIP_NR_RCPT)
                .await?;
        }
        for (n, v) in headers {
            // As Postfix and Sendmail do: the space after the colon is dropped unless the
            // filter asked for header values with their leading whitespace.
            let v = v.as_ref();
            let v = if self.protocol & codec::SMFIP_HDR_LEADSPC != 0 {
                v
            } else {
                v.strip_prefix(b" ").unwrap_or(v)
            };
            self.step(b'L', &cstrs(&[n.as_ref(), v]), codec::SMFIP_NR_HDR)
                .await?;
        }
        self.step(b'N', b"", codec::SMFIP_NR_EOH).await?;
        for chunk in body.chunks(65535) {
            self.step(b'B', chunk, codec::SMFIP_NR_BODY).await?;
        }
        self.stream.write_all(&frame(b'E', b"")).await?;
        self.outcome().await
    }

    /// Read packets up to the final action of a message.
    pub async fn outcome(&mut self) -> Result<Outcome, ClientError> {
        let mut out = Outcome::default();
        loop {
            let (cmd, data) = read_reply(&mut self.stream).await?;
            let text =
                |d: &[u8]| String::from_utf8_lossy(d.strip_suffix(&[0]).unwrap_or(d)).into_owned();
            match cmd {
                b'h' => {
                    let parts: Vec<&[u8]> = data.splitn(2, |&b| b == 0).collect();
                    let name = parts.first().map(|p| text(p)).unwrap_or_default();
                    let mut value = parts.get(1).map(|p| text(p)).unwrap_or_default();
                    // With SMFIP_HDR_LEADSPC the filter sends the space after the colon.
                    if self.protocol & codec::SMFIP_HDR_LEADSPC != 0 && value.starts_with(' ') {
                        value.remove(0);
                    }
                    out.headers.push((name, value));
                }
                b'q' => out.quarantine = Some(text(&data)),
                b'y' => {
                    out.action = 'y';
                    out.reply = Some(text(&data));
                    return Ok(out);
                }
                b'a' | b'c' | b'r' | b't' | b'd' => {
                    out.action = cmd as char;
                    return Ok(out);
                }
                other => return Err(ClientError::Unexpected(other)),
            }
        }
    }

    /// Abort the current message (the MTA's RSET).
    pub async fn abort(&mut self) -> Result<(), ClientError> {
        self.stream.write_all(&frame(b'A', b"")).await?;
        Ok(())
    }

    pub async fn quit(mut self) -> Result<(), ClientError> {
        self.stream.write_all(&frame(b'Q', b"")).await?;
        Ok(())
    }
}

async fn read_reply<S: AsyncRead + Unpin>(s: &mut S) -> Result<(u8, Vec<u8>), ClientError> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    let n = codec::check_length(u32::from_be_bytes(len))?;
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).await?;
    let cmd = buf.remove(0);
    Ok((cmd, buf))
}

/// Split a raw RFC 5322 message into headers and body, as an MTA hands them over: header
/// values as bytes (they need not be UTF-8) with all that follows the colon (the client drops
/// the space after it as the MTA does, unless the filter asked for SMFIP_HDR_LEADSPC), the
/// lines of a folded header joined by a bare LF as Postfix joins them.
#[allow(clippy::type_complexity)]
pub fn split_message(raw: &[u8]) -> (Vec<(Vec<u8>, Vec<u8>)>, Vec<u8>) {
    let pos = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, p + 4))
        .or_else(|| {
            raw.windows(2)
                .position(|w| w == b"\n\n")
                .map(|p| (p, p + 2))
        });
    let (head, body) = match pos {
        Some((h, b)) => (&raw[..h], &raw[b..]),
        None => (raw, &raw[raw.len()..]),
    };
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            if let Some(last) = headers.last_mut() {
                last.1.push(b'\n');
                last.1.extend_from_slice(line);
            }
        } else if let Some(colon) = line.iter().position(|&b| b == b':') {
            headers.push((line[..colon].to_vec(), line[colon + 1..].to_vec()));
        }
    }
    // Bodies travel with CRLF line ends.
    let mut crlf = Vec::with_capacity(body.len() + body.len() / 40);
    let mut prev = 0u8;
    for &b in body {
        if b == b'\n' && prev != b'\r' {
            crlf.push(b'\r');
        }
        crlf.push(b);
        prev = b;
    }
    (headers, crlf)
}

/// Figures of a load run.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub messages: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub errors: usize,
}

impl LoadReport {
    pub fn per_second(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Play `connections` concurrent sessions of `per_connection` messages each against a milter
/// at `addr` (TCP). Latency is measured from the end-of-body packet to the final reply, as the
/// MTA waits for it.
/// Play `per_connection` messages on each of `connections` connections. With `like_postfix`,
/// the client's socket keeps Nagle's algorithm on, as Postfix's does, so a filter that delays
/// its ACKs shows the stall it causes inside a real Postfix (shared/notes/milter-latency.md);
/// otherwise TCP_NODELAY is set and only the filter's own speed is measured.
///
/// With several `messages`, connection `c` plays them in turn starting at message `c`.
pub async fn run_load<M: AsRef<[u8]>>(
    addr: std::net::SocketAddr,
    connections: usize,
    per_connection: usize,
    messages: &[M],
    like_postfix: bool,
) -> LoadReport {
    type Split = (Vec<(Vec<u8>, Vec<u8>)>, Vec<u8>);
    let split: std::sync::Arc<Vec<Split>> =
        std::sync::Arc::new(messages.iter().map(|m| split_message(m.as_ref())).collect());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for conn in 0..connections {
        let split = split.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_connection);
            let mut errors = 0usize;
            let stream = match tokio::net::TcpStream::connect(addr).await {
                Ok(s) => s,
                Err(_) => return (lat, per_connection),
            };
            let _ = stream.set_nodelay(!like_postfix);
            let mut client = match Client::negotiate(stream).await {
                Ok(c) => c,
                Err(_) => return (lat, per_connection),
            };
            for i in 0..per_connection {
                if split.is_empty() {
                    break;
                }
                let (headers, body) = &split[(conn + i) % split.len()];
                let t = Instant::now();
                match client
                    .message("pat@city.test", &["sam@example.com"], headers, body)
                    .await
                {
                    Ok(_) => lat.push(t.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            let _ = client.quit().await;
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((lat, e)) = t.await {
            all.extend(lat);
            errors += e;
        }
    }
    let elapsed = started.elapsed();
    all.sort();
    let pick = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    LoadReport {
        messages: all.len(),
        elapsed,
        p50: pick(0.50),
        p99: pick(0.99),
        max: all.last().copied().unwrap_or_default(),
        errors,
    }
}

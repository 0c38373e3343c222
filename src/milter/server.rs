//! The listener: accepts MTA connections (TCP or Unix socket), caps their number and the bytes
//! they buffer together, times out stalled peers, judges messages off the async runtime, and
//! shuts down gracefully (messages in flight are finished, idle connections closed).

use super::codec;
use super::session::{Budget, Session, Step};
use super::{Decision, Handler, Listen};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, watch};

/// The handler in use; replaced whole on reload (SIGHUP) while connections go on.
pub type SharedHandler = Arc<RwLock<Arc<dyn Handler>>>;

pub fn shared(handler: Arc<dyn Handler>) -> SharedHandler {
    Arc::new(RwLock::new(handler))
}

/// What the MTA is told when judging fails (the handler panicked or overran its time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    TempFail,
    Accept,
    Reject,
}

impl std::str::FromStr for OnError {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tempfail" => Ok(OnError::TempFail),
            "accept" => Ok(OnError::Accept),
            "reject" => Ok(OnError::Reject),
            _ => Err(format!("{s:?}: use tempfail, accept or reject")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Largest message buffered for scanning; past it the handler's oversize decision applies.
    pub max_message_bytes: usize,
    /// Bytes all connections together may hold in message buffers (256 connections × 50 MiB
    /// would be 12.8 GB). A message that would pass it is not buffered: it is answered
    /// `451 4.3.2` at its end and the MTA retries it later.
    pub max_buffered_bytes: usize,
    /// Connections served at once; more wait in the listen backlog (backpressure).
    pub max_connections: usize,
    /// Longest wait for the next packet from the MTA.
    pub read_timeout: Duration,
    /// Longest time one message may be judged.
    pub judge_timeout: Duration,
    pub on_error: OnError,
    /// Longest wait for messages in flight at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message_bytes: 50 * 1024 * 1024,
            max_buffered_bytes: 512 * 1024 * 1024,
            max_connections: 256,
            read_timeout: Duration::from_secs(300),
            judge_timeout: Duration::from_secs(60),
            on_error: OnError::TempFail,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

fn error_decision(on_error: OnError, why: &str) -> Decision {
    match on_error {
        OnError::TempFail => Decision::tempfail(&format!(
            "temporary failure in the DLP filter ({why}); try again later"
        )),
        OnError::Accept => Decision::accept(),
        OnError::Reject => Decision {
            action: super::Action::Reject {
                code: "550".into(),
                xcode: "5.7.1".into(),
                text: format!("the DLP filter could not check this message ({why})"),
            },
            add_headers: Vec::new(),
        },
    }
}

enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener, std::path::PathBuf),
}

/// A bound listener, ready to serve.
pub struct Server {
    listener: Listener,
    config: Config,
    handler: SharedHandler,
}

impl Server {
    /// Bind `listen`. A stale Unix socket file is replaced.
    pub async fn bind(
        listen: &Listen,
        config: Config,
        handler: SharedHandler,
    ) -> std::io::Result<Server> {
        let listener = match listen {
            Listen::Inet(addr) => Listener::Tcp(tokio::net::TcpListener::bind(addr).await?),
            Listen::Unix(path) => {
                if path.exists() {
                    std::fs::remove_file(path)?;
                }
                Listener::Unix(tokio::net::UnixListener::bind(path)?, path.clone())
            }
        };
        Ok(Server {
            listener,
            config,
            handler,
        })
    }

    /// The TCP address bound (for tests binding port 0).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        match &self.listener {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }

    /// Serve until `shutdown` turns true; then stop accepting, let messages in flight finish
    /// (up to the grace period) and return.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let limit = Arc::new(Semaphore::new(self.config.max_connections));
        let budget = Budget::new(self.config.max_buffered_bytes);
        let config = Arc::new(self.config);
        let mut backoff = Duration::from_millis(10);
        loop {
            let permit = tokio::select! {
                p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = shutdown.changed() => break,
            };
            let accepted = tokio::select! {
                a = accept(&self.listener) => a,
                _ = shutdown.changed() => break,
            };
            let stream = match accepted {
                Ok(s) => {
                    backoff = Duration::from_millis(10);
                    s
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait, don't die.
                    tracing::warn!("accept failed: {e}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            let config = config.clone();
            let handler = self.handler.clone();
            let shutdown = shutdown.clone();
            let budget = budget.clone();
            tokio::spawn(async move {
                match stream {
                    Stream::Tcp(s, peer) => {
                        let _ = s.set_nodelay(true);
                        s.after_read();
                        if let Err(e) = serve(s, &config, &handler, &budget, shutdown).await {
                            tracing::warn!(%peer, "milter connection closed: {e}");
                        }
                    }
                    Stream::Unix(s) => {
                        if let Err(e) = serve(s, &config, &handler, &budget, shutdown).await {
                            tracing::warn!("milter connection closed: {e}");
                        }
                    }
                }
                drop(permit);
            });
        }
        // Wait for the connections still at work.
        let all = config.max_connections as u32;
        let _ = tokio::time::timeout(config.shutdown_grace, limit.acquire_many(all)).await;
        if let Listener::Unix(_, path) = &self.listener {
            let _ = std::fs::remove_file(path);
        }
    }
}

enum Stream {
    Tcp(tokio::net::TcpStream, std::net::SocketAddr),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener) -> std::io::Result<Stream> {
    match listener {
        Listener::Tcp(l) => l.accept().await.map(|(s, a)| Stream::Tcp(s, a)),
        Listener::Unix(l, _) => l.accept().await.map(|(s, _)| Stream::Unix(s)),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Protocol(#[from] codec::CodecError),
    #[error("no packet from the MTA for {0:?}")]
    Stalled(Duration),
    #[error("protocol: {0}")]
    Refused(String),
}

/// Read one frame into `buf`. `Ok(false)` on a clean end of stream before a frame.
async fn read_frame<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> Result<bool, ConnError> {
    let mut len = [0u8; 4];
    match s.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    let n = codec::check_length(u32::from_be_bytes(len))?;
    buf.resize(n, 0);
    s.read_exact(buf).await?;
    Ok(true)
}

/// A frame buffer grown past this (by a frame larger than the MTA's 64 KiB body chunks) is
/// given back after use, so idle connections do not each keep up to a megabyte.
const KEEP_FRAME_BUFFER: usize = 128 * 1024;

/// One connection: commands in, replies out, messages judged. Message buffers are charged to
/// `budget`, shared by every connection of the server.
/// A milter connection's socket.
pub trait Conn: AsyncRead + AsyncWrite + Unpin {
    /// Called after each packet read.
    fn after_read(&self) {}
}

/// TCP re-arms quick ACKs after every read (Linux clears the flag once it has used it).
/// Postfix writes its small milter packets with Nagle on: each waits for the ACK of the one
/// before, and a delayed ACK on our side costs ~40 ms per message inside a real Postfix
/// (shared/notes/milter-latency.md). TCP_NODELAY on our side does not help: the held segment is
/// Postfix's.
impl Conn for tokio::net::TcpStream {
    fn after_read(&self) {
        let _ = socket2::SockRef::from(self).set_tcp_quickack(true);
    }
}

impl Conn for tokio::net::UnixStream {}

pub async fn serve<S: Conn>(
    mut stream: S,
    config: &Config,
    handler: &SharedHandler,
    budget: &Arc<Budget>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConnError> {
    let mut session = Session::with_budget(config.max_message_bytes, budget.clone());
    let mut buf = Vec::with_capacity(8192);
    loop {
        // At shutdown an idle connection (between messages) is closed; one in the middle of a
        // message is served to its end.
        let idle = session.idle();
        if idle && *shutdown.borrow() {
            return Ok(());
        }
        let got = tokio::select! {
            r = tokio::time::timeout(config.read_timeout, read_frame(&mut stream, &mut buf)) => r,
            _ = shutdown.changed(), if idle => return Ok(()),
        };
        let more = match got {
            Ok(r) => r?,
            Err(_) => return Err(ConnError::Stalled(config.read_timeout)),
        };
        if !more {
            return Ok(());
        }
        stream.after_read();
        let cmd = codec::decode(&buf)?;
        tracing::trace!("milter {cmd}");
        match session.handle(cmd) {
            Step::Nothing => {}
            Step::Reply(bytes) => stream.write_all(&bytes).await?,
            Step::Close => return Ok(()),
            Step::Refuse(why) => return Err(ConnError::Refused(why)),
            Step::Judge => {
                let decision = judge(&mut session, config, handler).await;
                let bytes = session.finish(&decision);
                stream.write_all(&bytes).await?;
            }
        }
        if buf.capacity() > KEEP_FRAME_BUFFER {
            buf = Vec::with_capacity(8192);
        }
    }
}

async fn judge(session: &mut Session, config: &Config, handler: &SharedHandler) -> Decision {
    let current: Arc<dyn Handler> = match handler.read() {
        Ok(h) => h.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    let envelope = session.envelope.clone();
    if envelope.recipients_over_limit > 0 {
        tracing::warn!(
            queue_id = envelope.queue_id.as_deref().unwrap_or("-"),
            kept = envelope.rcpt_to.len(),
            over = envelope.recipients_over_limit,
            "too many recipients to judge: tempfail"
        );
        return Decision {
            action: super::Action::TempFail {
                code: "452".into(),
                xcode: "4.5.3".into(),
                text: format!(
                    "more than {} recipients; send the message in smaller batches",
                    envelope.rcpt_to.len()
                ),
            },
            add_headers: Vec::new(),
        };
    }
    if session.is_oversize() {
        return current.oversize(&envelope, config.max_message_bytes);
    }
    if session.is_over_budget() {
        let budget = session.budget();
        tracing::warn!(
            queue_id = envelope.queue_id.as_deref().unwrap_or("-"),
            bytes = session.received(),
            held = budget.held(),
            limit = budget.limit(),
            "messages buffered by all connections would pass the memory budget: tempfail"
        );
        return Decision {
            action: super::Action::TempFail {
                code: "451".into(),
                xcode: "4.3.2".into(),
                text: "the DLP filter is busy; try again later".into(),
            },
            add_headers: Vec::new(),
        };
    }
    // The message moves to the judge with its share of the budget, which is given back when
    // the judge is done (not before, even if it overruns the time limit below).
    let (message, held) = session.take_message();
    let task = tokio::task::spawn_blocking(move || {
        let decision = current.judge(&envelope, &message);
        drop(message);
        drop(held);
        decision
    });
    match tokio::time::timeout(config.judge_timeout, task).await {
        Ok(Ok(decision)) => decision,
        Ok(Err(e)) => {
            tracing::error!(queue_id = ?session.envelope.queue_id, "judging a message failed: {e}");
            error_decision(config.on_error, "internal error")
        }
        Err(_) => {
            tracing::error!(queue_id = ?session.envelope.queue_id, "judging a message took over {:?}", config.judge_timeout);
            error_decision(config.on_error, "time limit")
        }
    }
}

//! SMTP relay mode: maildlp as an SMTP server in the mail path (Postfix `content_filter` or
//! `smtpd_proxy_filter`, a smart host for Exim, OpenSMTPD or Microsoft 365). A message is
//! received whole, judged by the same [`crate::filter::PolicyHandler`] the milter uses, then
//! forwarded to the next hop (accept, tag: with the `X-Maildlp-*` headers), stored in the
//! quarantine, or refused with the policy's reply. The client gets 250 only once the next hop
//! or the store has the message, and 4xx when either fails: mail is never lost.
//!
//! The server side is written here rather than taken from a crate. The candidates, read in
//! November 2026: `mailin-embedded` (blocking I/O on a thread pool, no per-connection time
//! limit, no async answer after delivery), `samotop` (async-std, unmaintained since 2021),
//! `minismtp` and `smtpd` (0.1 releases; an unbounded channel, no size, line or time limits),
//! `rust-smtp-server` (a 0.1 port of go-smtp on an old tokio-rustls). None bounds everything a
//! filter in front of real mail needs (line length, size, recipients, commands, time, buffered
//! bytes, connections) nor refuses the bare-LF terminators of SMTP smuggling, and the protocol
//! subset a relay needs is small. Three parts, as in [`crate::milter`]: [`session`] (one
//! connection's protocol state and limits), [`deliver`] (judge, forward with lettre, store) and
//! the listener below (connections at once, graceful shutdown).

pub mod deliver;
pub mod session;

use session::{Deliver, Session};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// Longest line, commands and message text alike, CRLF included (RFC 5321 4.5.3.1.6).
pub const MAX_LINE: usize = 1000;

/// The relay's limits.
#[derive(Debug, Clone)]
pub struct Config {
    /// Name in the greeting and the EHLO reply.
    pub hostname: String,
    /// Largest message (bytes as received, after dot-unstuffing); advertised with SIZE.
    pub max_message_bytes: usize,
    /// Recipients per message; more get 452 (the client sends them in another transaction).
    pub max_recipients: usize,
    /// Commands per connection (DATA lines not counted); past it, 421 and close.
    pub max_commands: usize,
    /// Refused commands per connection; past it, 421 and close (garbage, scanners).
    pub max_errors: usize,
    /// Longest wait for the next command or line of message text.
    pub command_timeout: Duration,
    /// Longest a connection may last.
    pub connection_timeout: Duration,
    /// Connections served at once; further ones get 421 at once.
    pub max_connections: usize,
    /// Message bytes buffered by all connections together; a message that does not fit gets
    /// 452 4.3.1 (the client retries).
    pub max_buffered_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: "maildlp".into(),
            max_message_bytes: 50 * 1024 * 1024,
            max_recipients: 1000,
            max_commands: 10_000,
            max_errors: 20,
            command_timeout: Duration::from_secs(300),
            connection_timeout: Duration::from_secs(3600),
            max_connections: 100,
            max_buffered_bytes: 512 * 1024 * 1024,
        }
    }
}

/// Message bytes held by all connections, bounded.
#[derive(Debug)]
pub struct Budget {
    held: AtomicUsize,
    limit: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            held: AtomicUsize::new(0),
            limit,
        })
    }
}

/// Bytes one message holds of the [`Budget`]; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Reservation {
    pub fn new(budget: &Arc<Budget>) -> Reservation {
        Reservation {
            budget: budget.clone(),
            bytes: 0,
        }
    }

    /// Take `n` more bytes; false (nothing taken) when the budget has not got them.
    pub fn grow(&mut self, n: usize) -> bool {
        let b = &self.budget;
        let mut cur = b.held.load(Ordering::Relaxed);
        loop {
            let Some(next) = cur.checked_add(n).filter(|&v| v <= b.limit) else {
                return false;
            };
            match b
                .held
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.bytes += n;
                    return true;
                }
                Err(now) => cur = now,
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Resolves once `stop` is true (or its sender is gone). The guard `wait_for` returns is
/// dropped here, so the futures that wait on this stay `Send`.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The listening relay.
pub struct Server<D: Deliver> {
    listener: TcpListener,
    config: Arc<Config>,
    deliver: Arc<D>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl<D: Deliver> Server<D> {
    pub async fn bind(
        addr: &str,
        config: Config,
        deliver: Arc<D>,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> std::io::Result<Server<D>> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Server {
            listener,
            config: Arc::new(config),
            deliver,
            tls,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve until `stop` turns true; then stop accepting, let every connection finish the
    /// message it is on (idle ones are told 421 and closed) and return.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.config.max_connections.max(1)));
        let budget = Budget::new(self.config.max_buffered_bytes);
        let ids = AtomicU64::new(1);
        let mut sessions = JoinSet::new();
        let for_sessions = stop.clone();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(c) => c,
                        Err(e) => {
                            // Out of descriptors and the like: back off, do not die.
                            tracing::warn!("accepting a connection failed: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, limit = self.config.max_connections, "too many connections: refused with 421");
                        sessions.spawn(session::refuse(stream, self.config.hostname.clone()));
                        continue;
                    };
                    let id = ids.fetch_add(1, Ordering::Relaxed);
                    let session = Session::new(
                        Box::new(stream),
                        peer,
                        id,
                        self.config.clone(),
                        self.deliver.clone(),
                        self.tls.clone(),
                        budget.clone(),
                        for_sessions.clone(),
                    );
                    sessions.spawn(async move {
                        session.run().await;
                        drop(permit);
                    });
                    // Reap finished sessions so the set does not grow.
                    while sessions.try_join_next().is_some() {}
                }
                _ = stopped(&mut stop) => break,
            }
        }
        drop(self.listener);
        while sessions.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_bounds_all_reservations_and_is_given_back() {
        let b = Budget::new(100);
        let mut r1 = Reservation::new(&b);
        assert!(r1.grow(60));
        let mut r2 = Reservation::new(&b);
        assert!(!r2.grow(50));
        assert!(r2.grow(40));
        drop(r1);
        assert!(r2.grow(50));
        drop(r2);
        assert_eq!(b.held.load(Ordering::Relaxed), 0);
    }
}

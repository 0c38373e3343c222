//! `maildlp relay`: maildlp as an SMTP server in the mail path (after-queue content filter,
//! before-queue proxy filter, smart host), with the quarantine store and the notice worker, as
//! `serve` has them; SIGHUP reloads the policy, SIGTERM stops accepting and finishes the
//! messages in flight.

use super::quarantine::StoreArgs;
use super::serve::{flush_stats, policy_handler, retention};
use crate::{EngineArgs, init_logging};
use anyhow::Context as _;
use clap::{Args, ValueEnum};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use maildlp::metrics::Metrics;
use maildlp::notify::SharedNotifier;
use maildlp::quarantine::Mode;
use maildlp::quarantine::writer::Writer;
use maildlp::relay::deliver::Relay;
use maildlp::relay::{Config, Server};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum NextHopTls {
    /// Plain SMTP to the next hop.
    Off,
    /// STARTTLS when the next hop offers it, certificate not checked (as an MTA does
    /// opportunistic TLS); plain otherwise.
    Opportunistic,
    /// STARTTLS or no delivery (451), certificate checked against the system's CAs and
    /// --next-hop-ca.
    Required,
}

#[derive(Args)]
pub struct RelayArgs {
    /// Where to listen for SMTP: HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:10025")]
    listen: String,
    /// Where accepted and tagged mail goes: HOST:PORT (Postfix's re-injection listener, or
    /// the next mail server).
    #[arg(long, value_name = "HOST:PORT")]
    next_hop: String,
    /// TLS towards the next hop.
    #[arg(long, value_enum, default_value = "opportunistic")]
    next_hop_tls: NextHopTls,
    /// A CA certificate (PEM) the next hop's certificate may chain to, besides the system's.
    #[arg(long, value_name = "FILE")]
    next_hop_ca: Option<PathBuf>,
    /// Longest wait for the next hop's connection and each of its replies.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    next_hop_timeout: u64,
    /// Connections to the next hop kept open and used at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    next_hop_connections: u32,
    /// Certificate chain (PEM) for STARTTLS; with --tls-key, STARTTLS is offered.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Name in the greeting and EHLO (default: the host name).
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    /// Policy file (default: the embedded policy). Reloaded on SIGHUP.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Largest message accepted (advertised with SIZE; larger ones get 552).
    #[arg(long, value_name = "BYTES", default_value_t = 50 * 1024 * 1024)]
    max_message_size: usize,
    /// Recipients per message (more get 452 and come in another transaction).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    max_recipients: usize,
    /// Commands per connection.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_commands: usize,
    /// Connections served at once; further ones get 421.
    #[arg(long, value_name = "N", default_value_t = 100)]
    max_connections: usize,
    /// Seconds to wait for the next command or line of message text (then 421).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    command_timeout: u64,
    /// Seconds a connection may last (then 421).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    max_connection_time: u64,
    /// Message bytes buffered by all connections at once; past it, 452 (the client retries).
    #[arg(long, value_name = "BYTES", default_value_t = 512 * 1024 * 1024)]
    max_buffered: usize,
    /// Longest wait for the store to commit a held message; past it the client is told 451.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    store_timeout: u64,
    /// Held messages older than this expire (content erased); `off` keeps them until purged.
    #[arg(long, value_name = "AGE", default_value = "90d")]
    retention: String,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

/// HOST:PORT (`[v6]:port` too) into the host lettre connects to and the port.
fn host_port(s: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .with_context(|| format!("--next-hop {s:?}: write HOST:PORT, e.g. 127.0.0.1:10026"))?;
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|&p| p > 0)
        .with_context(|| format!("--next-hop {s:?}: {port:?} is not a port number (1-65535)"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    anyhow::ensure!(!host.is_empty(), "--next-hop {s:?}: the host is missing");
    Ok((host.to_string(), port))
}

fn transport(
    args: &RelayArgs,
    hostname: &str,
) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let (host, port) = host_port(&args.next_hop)?;
    let tls = match args.next_hop_tls {
        NextHopTls::Off => Tls::None,
        NextHopTls::Opportunistic => Tls::Opportunistic(
            TlsParameters::builder(host.clone())
                .dangerous_accept_invalid_certs(true)
                .dangerous_accept_invalid_hostnames(true)
                .build_rustls()
                .context("setting up TLS for the next hop")?,
        ),
        NextHopTls::Required => {
            let mut b = TlsParameters::builder(host.clone());
            if let Some(ca) = &args.next_hop_ca {
                let pem = std::fs::read(ca)
                    .with_context(|| format!("reading --next-hop-ca {}", ca.display()))?;
                let cert = Certificate::from_pem(&pem).with_context(|| {
                    format!("--next-hop-ca {}: not a PEM certificate", ca.display())
                })?;
                b = b.add_root_certificate(cert);
            }
            Tls::Required(
                b.build_rustls()
                    .context("setting up TLS for the next hop")?,
            )
        }
    };
    Ok(
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .hello_name(ClientId::Domain(hostname.to_string()))
            .timeout(Some(Duration::from_secs(args.next_hop_timeout.max(1))))
            .pool_config(PoolConfig::new().max_size(args.next_hop_connections.max(1)))
            .build(),
    )
}

/// The STARTTLS acceptor from a PEM certificate chain and key.
fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("--tls-cert {}: no PEM certificate read", cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "--tls-cert {}: no certificate in the file",
        cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("--tls-key {}: no PEM private key read", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("--tls-cert and --tls-key do not make a usable pair")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

pub fn relay(args: RelayArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let retention = retention(&args.retention)?;
    anyhow::ensure!(
        args.max_buffered >= args.max_message_size,
        "--max-buffered ({}) must be at least --max-message-size ({}): a message that never fits would be deferred forever",
        args.max_buffered,
        args.max_message_size
    );
    let hostname = match &args.hostname {
        Some(h) => h.clone(),
        None => nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "maildlp".into()),
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(acceptor(c, k)?),
        _ => None,
    };
    let config = Config {
        hostname: hostname.clone(),
        max_message_bytes: args.max_message_size,
        max_recipients: args.max_recipients.max(1),
        max_commands: args.max_commands.max(1),
        command_timeout: Duration::from_secs(args.command_timeout.max(1)),
        connection_timeout: Duration::from_secs(args.max_connection_time.max(1)),
        max_connections: args.max_connections.max(1),
        max_buffered_bytes: args.max_buffered,
        ..Config::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let url = args.store.url()?;
        let store = args
            .store
            .open(true)
            .await
            .with_context(|| format!("opening the quarantine store {url}"))?;
        let writer = Writer::spawn(
            store.clone(),
            args.max_connections.max(1) * 4,
            Duration::from_secs(args.store_timeout.max(1)),
        );
        // Verdict counts reach the console's dashboard through the shared store.
        let metrics = Arc::new(Metrics::new());
        let build = || {
            policy_handler(
                &args.engine,
                args.policy.as_deref(),
                Some(&writer),
                Mode::Store,
                &metrics,
            )
        };
        let (handler, notifier) = build()?;
        let patterns = handler.scanner.detector().patterns().count();
        let shared = Arc::new(RwLock::new(Arc::new(handler)));
        let shared_notifier: Option<SharedNotifier> = notifier.map(|n| Arc::new(RwLock::new(n)));
        let relay = Relay {
            handler: shared.clone(),
            transport: transport(&args, &hostname)?,
            next_hop: args.next_hop.clone(),
        };
        let server = Server::bind(&args.listen, config, Arc::new(relay), tls.clone())
            .await
            .with_context(|| format!("listening on {} (is another server running there?)", args.listen))?;
        let stats = tokio::spawn(flush_stats(store.clone(), metrics.clone(), stop_rx.clone()));
        let worker = shared_notifier.as_ref().map(|n| {
            tokio::spawn(maildlp::notify::run_worker(
                store.clone(),
                n.clone(),
                retention,
                stop_rx.clone(),
            ))
        });
        tracing::info!(
            listen = %server.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| args.listen.clone()),
            next_hop = %args.next_hop,
            next_hop_tls = ?args.next_hop_tls,
            starttls = tls.is_some(),
            policy = %args.policy.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "embedded default".into()),
            patterns,
            store = %format!("{url} (key {})", args.store.key_path().display()),
            max_message_size = args.max_message_size,
            "maildlp relay ready"
        );
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("installing the SIGHUP handler")?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        let serving = tokio::spawn(server.run(stop_rx));
        loop {
            tokio::select! {
                _ = hup.recv() => match build() {
                    Ok((h, n)) => {
                        if let Ok(mut current) = shared.write() {
                            *current = Arc::new(h);
                        }
                        if let (Some(n), Some(sn)) = (n, &shared_notifier)
                            && let Ok(mut current) = sn.write()
                        {
                            *current = n;
                        }
                        tracing::info!("policy and patterns reloaded");
                    }
                    Err(e) => tracing::error!("reload failed, keeping the previous policy: {e:#}"),
                },
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        tracing::info!("shutting down: finishing messages in flight");
        let _ = stop_tx.send(true);
        let _ = serving.await;
        if let Some(w) = worker {
            let _ = w.await;
        }
        let _ = stats.await;
        store.close().await;
        tracing::info!("stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn next_hops() {
        assert_eq!(
            host_port("127.0.0.1:10026").ok(),
            Some(("127.0.0.1".into(), 10026))
        );
        assert_eq!(host_port("[::1]:25").ok(), Some(("::1".into(), 25)));
        assert_eq!(
            host_port("mx.city.test:587").ok(),
            Some(("mx.city.test".into(), 587))
        );
        assert!(host_port("127.0.0.1").is_err());
        assert!(host_port("127.0.0.1:0").is_err());
        assert!(host_port(":25").is_err());
    }
}

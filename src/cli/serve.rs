//! `maildlp milter` and `maildlp serve`: the milter with the quarantine store, the notice
//! worker and retention, SIGHUP reload and graceful shutdown.

use super::quarantine::StoreArgs;
use crate::{EngineArgs, init_logging, load_policy};
use anyhow::Context as _;
use clap::{Args, ValueEnum};
use maildlp::filter::{PolicyHandler, Quarantine};
use maildlp::notify::{Notifier, SharedNotifier};
use maildlp::quarantine::Mode;
use maildlp::quarantine::writer::Writer;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QuarantineMode {
    /// Store the message in maildlp's quarantine, then tell the MTA to discard it: the store
    /// holds the only copy (the default).
    Store,
    /// Store it and also have the MTA keep it in its hold queue (Postfix) / quarantine
    /// (Sendmail), with the quarantine id in a header, to cross-check with `postqueue`.
    Hold,
    /// No store: the MTA's hold queue only (no review, no notices).
    Mta,
}

#[derive(Args)]
pub struct MilterArgs {
    /// Where to listen: inet:HOST:PORT or unix:/path/to/socket.
    #[arg(long, value_name = "SPEC", default_value = "inet:127.0.0.1:8890")]
    listen: maildlp::milter::Listen,
    /// Policy file (default: the embedded policy). Reloaded on SIGHUP.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Largest message buffered for scanning (bytes); larger ones get the policy's
    /// `unscannable` action.
    #[arg(long, value_name = "BYTES", default_value_t = 50 * 1024 * 1024)]
    max_message_size: usize,
    /// Connections served at once.
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_connections: usize,
    /// Seconds to wait for the MTA's next packet.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    read_timeout: u64,
    /// What the MTA is told when judging fails: tempfail (default), accept or reject.
    #[arg(long, value_name = "ACTION", default_value = "tempfail")]
    on_error: maildlp::milter::server::OnError,
    /// Bytes of messages buffered at once across all connections; a message that does not fit
    /// gets 451 4.3.2 (the MTA retries). At least --max-message-size.
    #[arg(long, value_name = "BYTES", default_value_t = 512 * 1024 * 1024)]
    max_buffered: usize,
    /// What happens to a quarantined message.
    #[arg(long, value_enum, default_value = "store")]
    quarantine_mode: QuarantineMode,
    /// Longest wait for the store to commit a held message; past it the MTA is told to try
    /// again later.
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

/// Scanner and policy for the milter, from the command line (again on SIGHUP).
fn build_handler(
    args: &MilterArgs,
    writer: Option<&Writer>,
) -> anyhow::Result<(PolicyHandler, Option<Arc<Notifier>>)> {
    let mode = match args.quarantine_mode {
        QuarantineMode::Store => Mode::Store,
        QuarantineMode::Hold | QuarantineMode::Mta => Mode::Hold,
    };
    policy_handler(&args.engine, args.policy.as_deref(), writer, mode)
}

/// Scanner, policy and (with a writer) the quarantine and its notifier: what `milter`, `serve`
/// and `relay` judge messages with.
pub(super) fn policy_handler(
    engine: &EngineArgs,
    policy: Option<&std::path::Path>,
    writer: Option<&Writer>,
    mode: Mode,
) -> anyhow::Result<(PolicyHandler, Option<Arc<Notifier>>)> {
    let scanner = engine.scanner()?;
    let policy = load_policy(policy, scanner.detector())?;
    match writer {
        Some(w) => {
            let notifier = Arc::new(Notifier::new(&policy).map_err(anyhow::Error::msg)?);
            let handler = PolicyHandler::new(scanner, policy).with_quarantine(Quarantine {
                writer: w.clone(),
                mode,
                notifier: notifier.clone(),
            });
            Ok((handler, Some(notifier)))
        }
        None => Ok((PolicyHandler::new(scanner, policy), None)),
    }
}

pub(super) fn retention(s: &str) -> anyhow::Result<Option<Duration>> {
    if s == "off" {
        return Ok(None);
    }
    humantime::parse_duration(s)
        .map(Some)
        .map_err(|_| anyhow::anyhow!("--retention {s:?}: write an age such as 90d, or off"))
}

pub fn milter(args: MilterArgs) -> anyhow::Result<ExitCode> {
    use maildlp::milter::server::{self, Config, Server};
    init_logging();
    let retention = retention(&args.retention)?;
    if args.max_buffered < args.max_message_size {
        anyhow::bail!(
            "--max-buffered ({}) must be at least --max-message-size ({}): a message that never fits would be deferred forever",
            args.max_buffered,
            args.max_message_size
        );
    }
    let config = Config {
        max_message_bytes: args.max_message_size,
        max_connections: args.max_connections.max(1),
        read_timeout: Duration::from_secs(args.read_timeout.max(1)),
        on_error: args.on_error,
        max_buffered_bytes: args.max_buffered,
        ..Config::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let store = if args.quarantine_mode == QuarantineMode::Mta {
            None
        } else {
            let url = args.store.url()?;
            Some(
                args.store
                    .open(true)
                    .await
                    .with_context(|| format!("opening the quarantine store {url}"))?,
            )
        };
        let writer = store.as_ref().map(|s| {
            Writer::spawn(
                s.clone(),
                args.max_connections.max(1) * 4,
                Duration::from_secs(args.store_timeout.max(1)),
            )
        });
        let (handler, notifier) = build_handler(&args, writer.as_ref())?;
        let patterns = handler.scanner.detector().patterns().count();
        let shared = server::shared(Arc::new(handler));
        let shared_notifier: Option<SharedNotifier> = notifier.map(|n| Arc::new(RwLock::new(n)));
        let server = Server::bind(&args.listen, config, shared.clone())
            .await
            .with_context(|| format!("listening on {:?} (is another milter running there?)", args.listen))?;
        let worker = match (&store, &shared_notifier) {
            (Some(s), Some(n)) => Some(tokio::spawn(maildlp::notify::run_worker(
                s.clone(),
                n.clone(),
                retention,
                stop_rx.clone(),
            ))),
            _ => None,
        };
        let store_desc = match &store {
            Some(_) => format!(
                "{} (key {})",
                args.store.url()?,
                args.store.key_path().display()
            ),
            None => "none (MTA hold queue only)".into(),
        };
        tracing::info!(
            listen = ?args.listen,
            policy = %args.policy.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "embedded default".into()),
            patterns,
            store = %store_desc,
            quarantine_mode = ?args.quarantine_mode.to_possible_value().map(|v| v.get_name().to_string()),
            "maildlp milter ready"
        );
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("installing the SIGHUP handler")?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        let serving = tokio::spawn(server.run(stop_rx));
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    match build_handler(&args, writer.as_ref()) {
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
                    }
                }
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
        if let Some(s) = &store {
            s.close().await;
        }
        tracing::info!("stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

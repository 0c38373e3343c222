//! `maildlp milter` and `maildlp serve`: the milter with the quarantine store, the notice
//! worker and retention, SIGHUP reload and graceful shutdown.

use super::quarantine::StoreArgs;
use crate::{EngineArgs, init_logging, load_policy};
use anyhow::Context as _;
use clap::{Args, ValueEnum};
use maildlp::filter::{PolicyHandler, Quarantine};
use maildlp::metrics::Metrics;
use maildlp::notify::{Notifier, SharedNotifier};
use maildlp::quarantine::Mode;
use maildlp::quarantine::release::NextHop;
use maildlp::quarantine::writer::Writer;
use maildlp::web::{Console, SharedScanner};
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
    /// Where the review console (and /metrics, /healthz) listens: HOST:PORT, or `off`.
    /// `serve` listens on 127.0.0.1:8025 unless told otherwise; `milter` only when given.
    #[arg(long, value_name = "HOST:PORT")]
    console_listen: Option<String>,
    /// PEM certificate chain for the console: serve HTTPS (with --console-tls-key).
    #[arg(long, value_name = "FILE", requires = "console_tls_key")]
    console_tls_cert: Option<PathBuf>,
    /// PEM private key for --console-tls-cert.
    #[arg(long, value_name = "FILE", requires = "console_tls_cert")]
    console_tls_key: Option<PathBuf>,
    /// A console session ends this long after login.
    #[arg(long, value_name = "AGE", default_value = "8h")]
    console_session: String,
    /// … or after this long without a request.
    #[arg(long, value_name = "AGE", default_value = "30m")]
    console_idle: String,
    /// Where messages released in the console go: an SMTP listener that does not call the
    /// milter again (see the README's master.cf entry).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:10026")]
    release_to: NextHop,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

/// Scanner and policy for the milter, from the command line (again on SIGHUP).
fn build_handler(
    args: &MilterArgs,
    writer: Option<&Writer>,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<(PolicyHandler, Option<Arc<Notifier>>)> {
    let mode = match args.quarantine_mode {
        QuarantineMode::Store => Mode::Store,
        QuarantineMode::Hold | QuarantineMode::Mta => Mode::Hold,
    };
    policy_handler(&args.engine, args.policy.as_deref(), writer, mode, metrics)
}

/// Scanner, policy and (with a writer) the quarantine and its notifier: what `milter`, `serve`
/// and `relay` judge messages with.
pub(super) fn policy_handler(
    engine: &EngineArgs,
    policy: Option<&std::path::Path>,
    writer: Option<&Writer>,
    mode: Mode,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<(PolicyHandler, Option<Arc<Notifier>>)> {
    let scanner = engine.scanner()?;
    let policy = load_policy(policy, scanner.detector())?;
    let handler =
        |scanner, policy| PolicyHandler::new(scanner, policy).with_metrics(metrics.clone());
    match writer {
        Some(w) => {
            let notifier = Arc::new(Notifier::new(&policy).map_err(anyhow::Error::msg)?);
            let handler = handler(scanner, policy).with_quarantine(Quarantine {
                writer: w.clone(),
                mode,
                notifier: notifier.clone(),
            });
            Ok((handler, Some(notifier)))
        }
        None => Ok((handler(scanner, policy), None)),
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

/// Rule names of a policy (for the console's filters), whatever rules it has.
fn rule_names(policy: &maildlp::policy::Policy) -> Vec<String> {
    match serde_json::to_value(&policy.rules) {
        Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

fn age(s: &str, flag: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| anyhow::anyhow!("{flag} {s:?}: write an age such as 8h or 30m"))
}

/// Add this node's verdict counts to the store's daily totals every 30 s (and once at the
/// end), for the dashboard.
pub(super) async fn flush_stats(
    store: maildlp::quarantine::store::Store,
    metrics: Arc<Metrics>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(30)) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        let rows = metrics.take_daily();
        if let Err(e) = store.stats_add(&rows).await {
            tracing::warn!("daily counts not stored yet (kept for the next try): {e}");
            metrics.restore_daily(rows);
        }
        if stopping {
            break;
        }
    }
}

pub fn milter(args: MilterArgs, serve: bool) -> anyhow::Result<ExitCode> {
    use maildlp::milter::server::{self, Config, Server};
    init_logging();
    let retention = retention(&args.retention)?;
    let console_listen = match args.console_listen.as_deref() {
        Some("off") => None,
        Some(a) => Some(a.parse::<std::net::SocketAddr>().map_err(|_| {
            anyhow::anyhow!("--console-listen {a:?}: write HOST:PORT (127.0.0.1:8025) or off")
        })?),
        None if serve => Some(std::net::SocketAddr::from(([127, 0, 0, 1], 8025))),
        None => None,
    };
    let session_ttl = age(&args.console_session, "--console-session")?;
    let idle_timeout = age(&args.console_idle, "--console-idle")?;
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
        let metrics = Arc::new(Metrics::new());
        let (handler, notifier) = build_handler(&args, writer.as_ref(), &metrics)?;
        metrics.set_policy_loaded(true);
        let patterns = handler.scanner.detector().patterns().count();
        let rules = rule_names(&handler.policy);
        let console_scanner: SharedScanner =
            Arc::new(RwLock::new(Arc::new(args.engine.scanner()?)));
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
        let mut console_task = None;
        let mut stats_task = None;
        match (&store, console_listen) {
            (Some(s), Some(addr)) => {
                let kinds: std::collections::BTreeSet<String> = handler_kinds(&console_scanner);
                let console = Arc::new(Console {
                    store: s.clone(),
                    metrics: metrics.clone(),
                    scanner: console_scanner.clone(),
                    release_to: args.release_to.clone(),
                    secure_cookies: args.console_tls_cert.is_some(),
                    session_ttl,
                    idle_timeout,
                    rules: rules.clone(),
                    kinds: kinds.into_iter().collect(),
                });
                let listen = maildlp::web::Listen {
                    addr,
                    tls: args.console_tls_cert.clone().zip(args.console_tls_key.clone()),
                };
                let scheme = if listen.tls.is_some() { "https" } else { "http" };
                // Bound now, so a port in use or a bad certificate stops the start.
                let bound = maildlp::web::bind(&listen).await?;
                let stop = stop_rx.clone();
                console_task = Some(tokio::spawn(async move {
                    if let Err(e) = maildlp::web::serve(console, bound, stop).await {
                        tracing::error!("review console stopped: {e:#}");
                    }
                }));
                tracing::info!("review console on {scheme}://{addr}/ (accounts: `maildlp user add NAME --role admin`)");
            }
            (None, Some(_)) if args.console_listen.is_some() => {
                anyhow::bail!("the console needs the quarantine store: drop --quarantine-mode mta or --console-listen");
            }
            _ => {}
        }
        if let Some(s) = &store {
            stats_task = Some(tokio::spawn(flush_stats(s.clone(), metrics.clone(), stop_rx.clone())));
        }
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
                    match build_handler(&args, writer.as_ref(), &metrics) {
                        Ok((h, n)) => {
                            if let (Ok(sc), Ok(mut current)) = (args.engine.scanner(), console_scanner.write()) {
                                *current = Arc::new(sc);
                            }
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
        if let Some(t) = console_task {
            let _ = t.await;
        }
        if let Some(t) = stats_task {
            let _ = t.await;
        }
        if let Some(s) = &store {
            s.close().await;
        }
        tracing::info!("stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Kind names the detector reports.
fn handler_kinds(scanner: &SharedScanner) -> std::collections::BTreeSet<String> {
    scanner
        .read()
        .map(|s| {
            s.detector()
                .patterns()
                .map(|(_, kind)| kind.to_string())
                .collect()
        })
        .unwrap_or_default()
}

//! `maildlp quarantine ...` and `maildlp keygen`: the security team's command line over the
//! quarantine store. Every decision (release, delete, purge, reading a message in full) is in
//! the audit log with the OS user who made it.

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use maildlp::quarantine::crypto::Key;
use maildlp::quarantine::release::{self, NextHop};
use maildlp::quarantine::store::now_ms;
use maildlp::quarantine::{
    AuditEntry, HeldMessage, ListFilter, Status, Store, StoreUrl, Summary, format_ms, parse_time,
};
use serde_json::json;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the quarantine is: shared by `serve`, `milter` and every `quarantine` command.
#[derive(Args, Clone, Debug)]
pub struct StoreArgs {
    /// Quarantine store: sqlite:PATH or postgres://USER@HOST:PORT/DATABASE (default:
    /// sqlite:DATA_DIR/quarantine.db). Every node sharing a PostgreSQL store needs the same key.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Directory of the default SQLite store and key file (created on first start).
    #[arg(long, value_name = "DIR", default_value = "maildlp-data")]
    pub data_dir: PathBuf,
    /// Key that seals held messages (default: DATA_DIR/quarantine.key, created 0600 with a new
    /// store; `maildlp keygen` makes one).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

impl StoreArgs {
    pub fn url(&self) -> anyhow::Result<StoreUrl> {
        match &self.store {
            Some(s) => Ok(StoreUrl::parse(s)?),
            None => Ok(StoreUrl::sqlite(&self.data_dir.join("quarantine.db"))),
        }
    }

    pub fn key_path(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("quarantine.key"))
    }

    /// Open the store; `create` makes a new store and its key file. Without it, a SQLite store
    /// that does not exist is an error (a mistyped --data-dir must not start an empty one).
    pub async fn open(&self, create: bool) -> anyhow::Result<Store> {
        let url = self.url()?;
        if !create && self.store.is_none() && !self.data_dir.join("quarantine.db").exists() {
            anyhow::bail!(
                "no quarantine store in {}: give the --data-dir (or --store) that `maildlp serve` uses",
                self.data_dir.display()
            );
        }
        Ok(Store::open(&url, &self.key_path(), create).await?)
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Json,
    Text,
}

#[derive(Subcommand)]
pub enum QuarantineCommand {
    /// List held (and past) messages, newest first.
    List {
        /// held, released, deleted or expired.
        #[arg(long)]
        status: Option<Status>,
        /// Only messages held by this rule (sensitive_info, bcc_mass_mailing, ...).
        #[arg(long)]
        rule: Option<String>,
        /// Only messages with findings of this kind (us_ssn, credit_card, ...).
        #[arg(long)]
        kind: Option<String>,
        /// Envelope sender, `*` as a wildcard (`*@city.example`).
        #[arg(long, value_name = "GLOB")]
        sender: Option<String>,
        /// Received on or after: 2026-11-30, 2026-11-30T08:00:00Z, or an age (7d, 12h).
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show one message: envelope, rules with reasons, masked findings, history. With --raw,
    /// write the original message to stdout (an audited action).
    Show {
        /// The quarantine id (a unique prefix is enough).
        id: String,
        #[arg(long)]
        raw: bool,
        /// Why the full message is read (goes to the audit log with --raw).
        #[arg(
            long,
            value_name = "TEXT",
            default_value = "read with quarantine show --raw"
        )]
        reason: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Deliver a held message to the next hop with its original envelope.
    Release {
        id: String,
        /// Why (goes to the audit log).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// SMTP listener that does not call the milter again.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:10026")]
        release_to: NextHop,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete a held message: its content is erased, its record and audit remain.
    Delete {
        id: String,
        #[arg(long, value_name = "TEXT")]
        reason: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Expire held messages received before the given age (content erased) and erase the
    /// content of released ones; records and the audit log remain.
    Purge {
        /// An age: 90d, 12h ...
        #[arg(long, value_name = "AGE")]
        older_than: String,
        #[arg(long, value_name = "TEXT", default_value = "purge")]
        reason: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The audit log: who did what, when, to which message, and why.
    Audit {
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Args)]
pub struct KeygenArgs {
    /// Where to write the new key (refuses to overwrite one).
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
}

pub fn keygen(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    Key::create(&args.key_file)?;
    eprintln!(
        "wrote a new quarantine key to {} (mode 0600); keep a copy: without it the quarantine cannot be read",
        args.key_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The OS user running the command, for the audit log (`root (sudo: pat)` under sudo).
pub fn actor() -> String {
    let uid = nix::unistd::getuid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid {uid}"));
    match std::env::var("SUDO_USER") {
        Ok(s) if !s.is_empty() && s != name => format!("{name} (sudo: {s})"),
        _ => name,
    }
}

pub fn run(cmd: QuarantineCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(cmd))
}

fn require_reason(reason: &str) -> anyhow::Result<()> {
    if reason.trim().is_empty() {
        anyhow::bail!("--reason must say why (it goes to the audit log)");
    }
    Ok(())
}

async fn run_async(cmd: QuarantineCommand) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cmd {
        QuarantineCommand::List {
            status,
            rule,
            kind,
            sender,
            since,
            limit,
            format,
            store,
        } => {
            let store = store.open(false).await?;
            let since_ms = since
                .map(|s| parse_time(&s, now_ms()))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let rows = store
                .list(&ListFilter {
                    status,
                    rule,
                    kind,
                    sender,
                    since_ms,
                    before_ms: None,
                    limit: Some(limit),
                    offset: None,
                })
                .await?;
            for m in &rows {
                if let Err(e) = &m.details {
                    eprintln!("maildlp: warning: message {}: {e}", m.id);
                }
                match format {
                    Format::Json => {
                        serde_json::to_writer(&mut out, &summary_json(m))?;
                        out.write_all(b"\n")?;
                    }
                    Format::Text => writeln!(out, "{}", summary_line(m))?,
                }
            }
            if matches!(format, Format::Text) && rows.is_empty() {
                eprintln!("no message matches");
            }
        }
        QuarantineCommand::Show {
            id,
            raw,
            reason,
            format,
            store,
        } => {
            let store = store.open(false).await?;
            if raw {
                require_reason(&reason)?;
                let bytes = store.raw(&id, &actor(), &reason).await?;
                out.write_all(&bytes)?;
            } else {
                let m = store.get(&id).await?;
                match format {
                    Format::Json => {
                        serde_json::to_writer(&mut out, &held_json(&m))?;
                        out.write_all(b"\n")?;
                    }
                    Format::Text => out.write_all(held_text(&m).as_bytes())?,
                }
            }
        }
        QuarantineCommand::Release {
            id,
            reason,
            release_to,
            store,
        } => {
            require_reason(&reason)?;
            let store = store.open(false).await?;
            let id = release::release(&store, &release_to, &id, &actor(), &reason).await?;
            eprintln!("released {id} to {release_to}");
        }
        QuarantineCommand::Delete { id, reason, store } => {
            require_reason(&reason)?;
            let store = store.open(false).await?;
            let id = store.resolve(&id).await?;
            store
                .transition(&id, Status::Deleted, false, &actor(), "delete", &reason)
                .await?;
            eprintln!("deleted {id}");
        }
        QuarantineCommand::Purge {
            older_than,
            reason,
            store,
        } => {
            require_reason(&reason)?;
            let age = humantime::parse_duration(&older_than).map_err(|_| {
                anyhow::anyhow!("--older-than {older_than:?}: write an age such as 90d or 12h")
            })?;
            let store = store.open(false).await?;
            let cutoff = now_ms() - age.as_millis() as i64;
            let (expired, erased) = store.purge(cutoff, &actor(), &reason).await?;
            eprintln!(
                "{expired} held message(s) expired, content of {erased} released message(s) erased (received before {})",
                format_ms(cutoff)
            );
        }
        QuarantineCommand::Audit {
            since,
            limit,
            format,
            store,
        } => {
            let store = store.open(false).await?;
            let since_ms = since
                .map(|s| parse_time(&s, now_ms()))
                .transpose()
                .map_err(anyhow::Error::msg)?
                .unwrap_or(0);
            for e in store.audit(since_ms, limit).await? {
                match format {
                    Format::Json => {
                        serde_json::to_writer(&mut out, &audit_json(&e))?;
                        out.write_all(b"\n")?;
                    }
                    Format::Text => writeln!(out, "{}", audit_line(&e))?,
                }
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn subject_of(m: &Summary) -> String {
    match &m.details {
        Ok(d) => d.subject.clone(),
        Err(_) => "(cannot decrypt: wrong key or damaged record)".into(),
    }
}

fn summary_json(m: &Summary) -> serde_json::Value {
    json!({
        "id": m.id,
        "status": m.status,
        "received": format_ms(m.received_ms),
        "sender": m.sender,
        "recipients": m.recipients,
        "subject": subject_of(m),
        "rules": m.rules,
        "kinds": m.kinds,
        "size": m.size,
        "queue_id": m.queue_id,
        "node": m.node,
        "mode": m.mode,
    })
}

fn summary_line(m: &Summary) -> String {
    format!(
        "{}  {:<8}  {}  {} -> {}  [{}] {}  {:?}",
        m.id,
        m.status.as_str(),
        format_ms(m.received_ms),
        if m.sender.is_empty() { "<>" } else { &m.sender },
        m.recipients.join(","),
        m.rules.join(","),
        m.kinds.join(","),
        subject_of(m)
    )
}

fn audit_json(e: &AuditEntry) -> serde_json::Value {
    json!({
        "seq": e.seq,
        "at": format_ms(e.at_ms),
        "actor": e.actor,
        "action": e.action,
        "message_id": e.message_id,
        "reason": e.reason,
        "node": e.node,
    })
}

fn audit_line(e: &AuditEntry) -> String {
    format!(
        "{}  {:<14}  {:<20}  {}  {}",
        format_ms(e.at_ms),
        e.action,
        e.actor,
        e.message_id.as_deref().unwrap_or("-"),
        e.reason
    )
}

fn held_json(m: &HeldMessage) -> serde_json::Value {
    let mut v = summary_json(&m.summary);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("client_addr".into(), json!(m.summary.client_addr));
        obj.insert("from_header".into(), json!(m.details.from_header));
        obj.insert("message_id".into(), json!(m.details.message_id));
        obj.insert("verdict".into(), json!(m.details.verdict));
        obj.insert("findings".into(), json!(m.details.findings));
        obj.insert("encrypted".into(), json!(m.details.encrypted));
        obj.insert("unscannable".into(), json!(m.details.unscannable));
        obj.insert("has_content".into(), json!(m.has_content));
        obj.insert(
            "history".into(),
            json!(m.history.iter().map(audit_json).collect::<Vec<_>>()),
        );
    }
    v
}

fn held_text(m: &HeldMessage) -> String {
    use std::fmt::Write as _;
    let s = &m.summary;
    let d = &m.details;
    let mut t = String::new();
    let _ = writeln!(t, "id:          {}", s.id);
    let _ = writeln!(
        t,
        "status:      {} (since {})",
        s.status,
        format_ms(s.status_ms)
    );
    let _ = writeln!(
        t,
        "received:    {} on {} (mode {}, MTA queue id {})",
        format_ms(s.received_ms),
        s.node,
        s.mode,
        s.queue_id.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        t,
        "client:      {}",
        s.client_addr.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        t,
        "mail from:   {}",
        if s.sender.is_empty() { "<>" } else { &s.sender }
    );
    for r in &s.recipients {
        let _ = writeln!(t, "rcpt to:     {r}");
    }
    let _ = writeln!(
        t,
        "from:        {}",
        d.from_header.as_deref().unwrap_or("-")
    );
    let _ = writeln!(t, "subject:     {}", d.subject);
    let _ = writeln!(t, "message-id:  {}", d.message_id.as_deref().unwrap_or("-"));
    let _ = writeln!(
        t,
        "size:        {} bytes{}",
        s.size,
        if m.has_content {
            ""
        } else {
            " (content erased)"
        }
    );
    let _ = writeln!(t, "rules:");
    for r in &d.verdict.rules {
        let _ = writeln!(
            t,
            "  {} ({}{}): {}",
            r.rule,
            r.action,
            if r.monitor { ", monitor" } else { "" },
            r.reason
        );
    }
    let _ = writeln!(t, "findings (masked):");
    if d.findings.is_empty() {
        let _ = writeln!(t, "  none");
    }
    for f in &d.findings {
        let _ = writeln!(
            t,
            "  {} x{} ({}) in {}: {}",
            f.kind,
            f.count,
            f.confidence.as_str(),
            f.location,
            f.masked.join(", ")
        );
    }
    for e in &d.encrypted {
        let _ = writeln!(t, "encrypted:   {} ({})", e.location, e.kind);
    }
    for u in &d.unscannable {
        let _ = writeln!(t, "not scanned: {}: {}", u.location, u.reason);
    }
    let _ = writeln!(t, "history:");
    for e in &m.history {
        let _ = writeln!(t, "  {}", audit_line(e));
    }
    t
}

//! Notices: to the sender when a message is quarantined (or rejected), an incident report to
//! the security officer, and a daily digest of what waits. Rendered from templates (files a City
//! can override, defaults built in), queued in the quarantine store with the message they are
//! about, and sent by a background worker with lettre: retried with back-off while the SMTP
//! server is down, rate-limited per sender, never in the way of mail flow, never lost on a
//! restart. No notice holds a sensitive value: findings are masked, a subject holding a finding
//! is withheld.

use crate::policy::Policy;
use crate::policy::config::Notices;
use crate::quarantine::store::now_ms;
use crate::quarantine::{Details, ListFilter, NewNotice, Notice, Status, Store, format_ms};
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;
use std::sync::{Arc, RwLock};
use std::time::Duration;

const TEMPLATES: &[(&str, &str)] = &[
    (
        "sender_quarantine",
        include_str!("templates/sender_quarantine.txt"),
    ),
    ("sender_reject", include_str!("templates/sender_reject.txt")),
    ("incident", include_str!("templates/incident.txt")),
    ("digest", include_str!("templates/digest.txt")),
];

/// Attempts before a notice is given up (about a day with the back-off below).
const MAX_ATTEMPTS: u32 = 30;
/// Messages listed in one digest.
const DIGEST_ROWS: usize = 200;

/// The notice settings and templates of one policy.
pub struct Notifier {
    env: minijinja::Environment<'static>,
    settings: Notices,
    officer: String,
}

/// The notifier in use; replaced whole when the policy is reloaded.
pub type SharedNotifier = Arc<RwLock<Arc<Notifier>>>;

/// What a notice about one message says.
pub struct MessageFacts<'a> {
    pub id: Option<&'a str>,
    pub received_ms: i64,
    pub sender: &'a str,
    pub recipients: &'a [String],
    pub queue_id: Option<&'a str>,
    pub client_addr: Option<&'a str>,
    pub node: &'a str,
    pub details: &'a Details,
}

#[derive(Serialize)]
struct RuleCtx<'a> {
    rule: &'a str,
    action: &'a str,
    reason: &'a str,
}

impl Notifier {
    /// Templates from `policy.notices.templates` (when set) over the built-in ones.
    pub fn new(policy: &Policy) -> Result<Notifier, String> {
        let settings = policy.notices.clone();
        let mut env = minijinja::Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        for (name, builtin) in TEMPLATES {
            let text = if settings.templates.is_empty() {
                builtin.to_string()
            } else {
                let path = std::path::Path::new(&settings.templates).join(format!("{name}.txt"));
                match std::fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => builtin.to_string(),
                    Err(e) => return Err(format!("notice template {}: {e}", path.display())),
                }
            };
            env.add_template_owned(name.to_string(), text)
                .map_err(|e| format!("notice template {name}: {e}"))?;
        }
        let n = Notifier {
            env,
            settings,
            officer: policy.organisation.security_officer.clone(),
        };
        // Render each template once now, so a broken one fails at start-up, not at 3 a.m.
        let sample = Details {
            subject: "sample".into(),
            from_header: None,
            message_id: None,
            verdict: crate::policy::Verdict {
                action: crate::policy::Action::Quarantine,
                would_action: None,
                rules: Vec::new(),
                exceptions_used: Vec::new(),
                require_tls: false,
                reply: None,
                headers: Vec::new(),
            },
            findings: Vec::new(),
            encrypted: Vec::new(),
            unscannable: Vec::new(),
        };
        let facts = MessageFacts {
            id: Some("00000000-0000-0000-0000-000000000000"),
            received_ms: 0,
            sender: "a@b.test",
            recipients: &[],
            queue_id: None,
            client_addr: None,
            node: "node",
            details: &sample,
        };
        for name in ["sender_quarantine", "sender_reject", "incident"] {
            n.render(name, &facts)?;
        }
        n.render_digest(&[], 0, "2026-01-01")?;
        Ok(n)
    }

    pub fn settings(&self) -> &Notices {
        &self.settings
    }

    fn context(&self, f: &MessageFacts<'_>) -> minijinja::Value {
        let rules: Vec<RuleCtx<'_>> = f
            .details
            .verdict
            .rules
            .iter()
            .filter(|r| !r.monitor)
            .map(|r| RuleCtx {
                rule: &r.rule,
                action: r.action.as_str(),
                reason: &r.reason,
            })
            .collect();
        minijinja::context! {
            id => f.id,
            received => format_ms(f.received_ms),
            sender => f.sender,
            recipients => f.recipients,
            queue_id => f.queue_id,
            client_addr => f.client_addr,
            node => f.node,
            subject => &f.details.subject,
            action => f.details.verdict.action.as_str(),
            rules => rules,
            findings => &f.details.findings,
            encrypted => &f.details.encrypted,
            unscannable => &f.details.unscannable,
            officer => &self.officer,
        }
    }

    /// (subject, body) of template `name`: its first line is `Subject: ...`, then a blank line.
    fn render(&self, name: &str, f: &MessageFacts<'_>) -> Result<(String, String), String> {
        let tmpl = self
            .env
            .get_template(name)
            .map_err(|e| format!("notice template {name}: {e}"))?;
        let text = tmpl
            .render(self.context(f))
            .map_err(|e| format!("notice template {name}: {e}"))?;
        split_subject(name, &text)
    }

    fn render_digest(
        &self,
        held: &[minijinja::Value],
        count: u64,
        date: &str,
    ) -> Result<(String, String), String> {
        let tmpl = self
            .env
            .get_template("digest")
            .map_err(|e| format!("notice template digest: {e}"))?;
        let text = tmpl
            .render(minijinja::context! { held => held, count => count, shown => held.len(), date => date })
            .map_err(|e| format!("notice template digest: {e}"))?;
        split_subject("digest", &text)
    }

    fn notice(&self, kind: &str, to: &str, f: &MessageFacts<'_>) -> Option<NewNotice> {
        match self.render(kind, f) {
            Ok((subject, body)) => Some(NewNotice {
                kind: kind.into(),
                message_id: f.id.map(str::to_string),
                recipient: to.into(),
                subject,
                body,
                suppressed: false,
            }),
            Err(e) => {
                tracing::error!("notice not queued: {e}");
                None
            }
        }
    }

    /// Notices for a quarantined message.
    pub fn for_held(&self, f: &MessageFacts<'_>) -> Vec<NewNotice> {
        let mut out = Vec::new();
        if self.settings.sender_on_quarantine && f.sender.contains('@') {
            out.extend(self.notice("sender_quarantine", f.sender, f));
        }
        if self.settings.incident_reports && !self.officer.is_empty() {
            out.extend(self.notice("incident", &self.officer, f));
        }
        out
    }

    /// Notices for a rejected message.
    pub fn for_rejected(&self, f: &MessageFacts<'_>) -> Vec<NewNotice> {
        let mut out = Vec::new();
        if self.settings.sender_on_reject && f.sender.contains('@') {
            out.extend(self.notice("sender_reject", f.sender, f));
        }
        if self.settings.incident_reports && !self.officer.is_empty() {
            out.extend(self.notice("incident", &self.officer, f));
        }
        out
    }
}

fn split_subject(name: &str, text: &str) -> Result<(String, String), String> {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let subject = first
        .strip_prefix("Subject:")
        .ok_or_else(|| format!("notice template {name}: its first line must be `Subject: ...`"))?;
    Ok((
        subject.trim().to_string(),
        rest.trim_start_matches(['\r', '\n']).to_string(),
    ))
}

/// `Auto-Submitted: auto-generated` (RFC 3834): vacation responders do not answer notices.
#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

/// Send one notice.
async fn send(settings: &Notices, n: &Notice) -> Result<(), String> {
    let from = settings
        .from
        .parse()
        .map_err(|e| format!("notices.from {:?}: {e}", settings.from))?;
    let to = n
        .recipient
        .parse()
        .map_err(|e| format!("recipient {:?}: {e}", n.recipient))?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(n.subject.clone())
        .header(AutoSubmitted)
        .header(ContentType::TEXT_PLAIN)
        .body(n.body.clone())
        .map_err(|e| format!("building the notice: {e}"))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.smtp_host)
        .port(settings.smtp_port)
        .timeout(Some(Duration::from_secs(30)))
        .build();
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| format!("SMTP {}:{}: {e}", settings.smtp_host, settings.smtp_port))
}

/// Back-off after `attempts` failed tries: 30 s, 1 min, 2 min ... at most an hour.
fn backoff(attempts: u32) -> Duration {
    let secs = 30u64.saturating_mul(1u64 << attempts.saturating_sub(1).min(7));
    Duration::from_secs(secs.min(3600))
}

/// Notices taken in one pass.
const BATCH: usize = 50;

/// One pass of the worker: send what is due (at most [`BATCH`]). Returns how many were sent.
pub async fn send_due(
    store: &Store,
    notifier: &Notifier,
) -> Result<usize, crate::quarantine::StoreError> {
    let now = now_ms();
    let mut sent = 0;
    for n in store.due_notices(now, BATCH).await? {
        if !store
            .claim_notice(&n.id, now, Duration::from_secs(120))
            .await?
        {
            continue; // another node has it
        }
        let settings = notifier.settings();
        if n.kind.starts_with("sender_") {
            let recent = store.notices_sent_to(&n.recipient, now - 3_600_000).await?;
            if recent >= settings.max_per_sender_per_hour as u64 {
                tracing::warn!(
                    notice = %n.id,
                    "notice not sent: {} already had {recent} notices this hour",
                    n.recipient
                );
                store.notice_suppressed(&n.id).await?;
                continue;
            }
        }
        match send(settings, &n).await {
            Ok(()) => {
                store.notice_sent(&n.id).await?;
                sent += 1;
            }
            Err(e) => {
                let attempts = n.attempts + 1;
                let retry = (attempts < MAX_ATTEMPTS)
                    .then(|| now_ms() + backoff(attempts).as_millis() as i64);
                tracing::warn!(
                    notice = %n.id,
                    kind = %n.kind,
                    attempts,
                    "sending a notice failed: {e}{}",
                    if retry.is_some() { "; will retry" } else { "; giving up" }
                );
                store.notice_failed(&n.id, &e, retry).await?;
                // The SMTP server is likely down: the rest waits for the next pass rather than
                // each failing (and logging) in turn.
                break;
            }
        }
    }
    Ok(sent)
}

/// Queue today's digest for the security officer, once across every node, once the digest hour
/// has come.
pub async fn digest_if_due(
    store: &Store,
    notifier: &Notifier,
) -> Result<bool, crate::quarantine::StoreError> {
    let hour = notifier.settings.digest_hour;
    if hour < 0 || notifier.officer.is_empty() {
        return Ok(false);
    }
    let now = now_ms();
    let date = format_ms(now);
    let (day, time) = date.split_once('T').unwrap_or((&date, ""));
    let current_hour: i8 = time.get(..2).and_then(|h| h.parse().ok()).unwrap_or(0);
    if current_hour < hour || !store.mark_once(&format!("digest:{day}")).await? {
        return Ok(false);
    }
    let held = store
        .list(&ListFilter {
            status: Some(Status::Held),
            ..ListFilter::default()
        })
        .await?;
    let count = held.len() as u64;
    let rows: Vec<minijinja::Value> = held
        .iter()
        .rev()
        .take(DIGEST_ROWS)
        .map(|m| {
            minijinja::context! {
                id => &m.id,
                received => format_ms(m.received_ms),
                sender => &m.sender,
                rules => &m.rules,
                kinds => &m.kinds,
            }
        })
        .collect();
    match notifier.render_digest(&rows, count, day) {
        Ok((subject, body)) => {
            store
                .enqueue_notices(&[NewNotice {
                    kind: "digest".into(),
                    message_id: None,
                    recipient: notifier.officer.clone(),
                    subject,
                    body,
                    suppressed: false,
                }])
                .await?;
            Ok(true)
        }
        Err(e) => {
            tracing::error!("digest not queued: {e}");
            Ok(false)
        }
    }
}

/// The background worker of `serve`/`milter`: sends due notices every few seconds, queues the
/// daily digest, and applies the retention period, until `shutdown`.
pub async fn run_worker(
    store: Store,
    notifier: SharedNotifier,
    retention: Option<Duration>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut last_retention = 0i64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let current = match notifier.read() {
            Ok(n) => n.clone(),
            Err(p) => p.into_inner().clone(),
        };
        // A full batch sent: more may be due, so go on without waiting for the next tick.
        loop {
            match send_due(&store, &current).await {
                Ok(n) if n == BATCH => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!("notice worker: {e}");
                    break;
                }
            }
        }
        if let Err(e) = digest_if_due(&store, &current).await {
            tracing::warn!("digest: {e}");
        }
        let now = now_ms();
        if let Some(keep) = retention
            && now - last_retention > 3_600_000
        {
            last_retention = now;
            let cutoff = now - keep.as_millis() as i64;
            let actor = format!("maildlp@{}", store.node());
            let reason = format!("retention period of {}", humantime::format_duration(keep));
            match store.purge(cutoff, &actor, &reason).await {
                Ok((0, 0)) => {}
                Ok((expired, erased)) => tracing::info!(
                    expired,
                    erased,
                    "retention: held messages expired, released content erased"
                ),
                Err(e) => tracing::warn!("retention: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Confidence, Finding};
    use crate::policy::{Action, RuleHit, Verdict};

    fn details() -> Details {
        Details {
            subject: "(subject withheld: it holds us_ssn)".into(),
            from_header: Some("pat@city.test".into()),
            message_id: None,
            verdict: Verdict {
                action: Action::Quarantine,
                would_action: None,
                rules: vec![RuleHit {
                    rule: "sensitive_info".into(),
                    action: Action::Quarantine,
                    reason: "The message contains sensitive information (us_ssn x1).".into(),
                    monitor: false,
                    findings: vec![],
                }],
                exceptions_used: vec![],
                require_tls: false,
                reply: None,
                headers: vec![],
            },
            findings: vec![Finding {
                kind: "us_ssn".into(),
                confidence: Confidence::High,
                count: 1,
                location: "body".into(),
                masked: vec!["***-**-4817".into()],
            }],
            encrypted: vec![],
            unscannable: vec![],
        }
    }

    #[test]
    fn built_in_templates_render_masked_notices() {
        let mut policy = Policy::default_policy().expect("policy");
        policy.organisation.security_officer = "security@city.test".into();
        let n = Notifier::new(&policy).expect("notifier");
        let d = details();
        let rcpts = vec!["sam@example.com".to_string()];
        let facts = MessageFacts {
            id: Some("0193-abc"),
            received_ms: 0,
            sender: "pat@city.test",
            recipients: &rcpts,
            queue_id: Some("4XyZ"),
            client_addr: None,
            node: "mx1",
            details: &d,
        };
        let notices = n.for_held(&facts);
        assert_eq!(notices.len(), 2);
        let sender = &notices[0];
        assert_eq!(sender.recipient, "pat@city.test");
        assert!(sender.subject.contains("0193-abc"), "{}", sender.subject);
        assert!(sender.body.contains("sam@example.com"));
        assert!(sender.body.contains("Remove the sensitive information"));
        let incident = &notices[1];
        assert_eq!(incident.recipient, "security@city.test");
        assert!(
            incident
                .body
                .contains("us_ssn x1 (high) in body: ***-**-4817")
        );
        assert!(incident.body.contains("4XyZ"));
        // Rejections tell the officer; the sender only when configured.
        assert_eq!(n.for_rejected(&facts).len(), 1);
    }

    #[test]
    fn a_template_without_a_subject_line_is_refused_at_start() {
        let dir = std::env::temp_dir().join(format!("maildlp-tmpl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("incident.txt"), "no subject here\n").expect("write");
        let mut policy = Policy::default_policy().expect("policy");
        policy.notices.templates = dir.display().to_string();
        let err = Notifier::new(&policy).err().expect("refused");
        assert!(err.contains("Subject:"), "{err}");
        std::fs::write(
            dir.join("incident.txt"),
            "Subject: {{ action }} custom\n\nbody {{ id }}\n",
        )
        .expect("write");
        let n = Notifier::new(&policy).expect("notifier");
        let d = details();
        let (subject, body) = n
            .render(
                "incident",
                &MessageFacts {
                    id: Some("x1"),
                    received_ms: 0,
                    sender: "",
                    recipients: &[],
                    queue_id: None,
                    client_addr: None,
                    node: "n",
                    details: &d,
                },
            )
            .expect("render");
        assert_eq!(subject, "quarantine custom");
        assert_eq!(body.trim(), "body x1");
    }

    #[test]
    fn backoff_grows_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(30), Duration::from_secs(3600));
    }
}

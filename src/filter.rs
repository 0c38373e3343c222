//! The engine behind the milter: scan + policy as a [`milter::Handler`]. The milter knows
//! nothing of scanning; this adapter calls the engine and turns a verdict into what the MTA
//! does.

use crate::metrics::Metrics;
use crate::milter::{self, Decision};
use crate::notify::{MessageFacts, Notifier};
use crate::policy::{self, Action, Policy, Verdict};
use crate::quarantine::store::now_ms;
use crate::quarantine::writer::Writer;
use crate::quarantine::{Details, HeldRecord, Mode};
use crate::scan::{ScanReport, Scanner};
use std::sync::Arc;

/// maildlp's own quarantine behind the milter: where held messages go, what the MTA is told
/// afterwards, and the notices.
#[derive(Clone)]
pub struct Quarantine {
    pub writer: Writer,
    pub mode: Mode,
    pub notifier: Arc<Notifier>,
}

/// Scans each message and applies the policy.
pub struct PolicyHandler {
    pub scanner: Scanner,
    pub policy: Policy,
    /// None: quarantined mail goes to the MTA's hold queue only (tests, `milter-load`).
    pub quarantine: Option<Quarantine>,
    /// Where judged messages are counted (`/metrics`, the console's dashboard).
    pub metrics: Option<Arc<Metrics>>,
}

impl PolicyHandler {
    pub fn new(scanner: Scanner, policy: Policy) -> Self {
        PolicyHandler {
            scanner,
            policy,
            quarantine: None,
            metrics: None,
        }
    }

    pub fn with_metrics(mut self, m: Arc<Metrics>) -> Self {
        self.metrics = Some(m);
        self
    }

    pub fn with_quarantine(mut self, q: Quarantine) -> Self {
        self.quarantine = Some(q);
        self
    }

    /// The policy verdict for a message and its SMTP envelope.
    pub fn verdict(&self, envelope: &milter::Envelope, message: &[u8]) -> Verdict {
        self.judged(envelope, message).1
    }

    /// The scan report and the verdict.
    fn judged(&self, envelope: &milter::Envelope, message: &[u8]) -> (ScanReport, Verdict) {
        let report = self.scanner.scan(message);
        let mut env = policy::Envelope {
            sender: (!envelope.mail_from.is_empty()).then(|| envelope.mail_from.clone()),
            recipients: envelope.rcpt_to.clone(),
        };
        if env.sender.is_none() {
            env.sender = report.info.from.clone();
        }
        let verdict = policy::evaluate(&self.policy, &report, &env);
        log_verdict(envelope, &verdict);
        if let Some(m) = &self.metrics {
            m.judged(&report, &verdict, now_ms());
        }
        (report, verdict)
    }

    /// Store a quarantined message, then answer as the mode says; tempfail when the store
    /// cannot take it (the MTA keeps the message and retries: nothing is lost).
    fn hold(
        &self,
        q: &Quarantine,
        envelope: &milter::Envelope,
        message: &[u8],
        report: &ScanReport,
        verdict: &Verdict,
    ) -> Decision {
        let id = crate::quarantine::new_id();
        let details = Details::new(report, verdict);
        let received_ms = now_ms();
        let facts = MessageFacts {
            id: Some(&id),
            received_ms,
            sender: &envelope.mail_from,
            recipients: &envelope.rcpt_to,
            queue_id: envelope.queue_id.as_deref(),
            client_addr: envelope.client_addr.as_deref(),
            node: q.writer.store().node(),
            details: &details,
        };
        let notices = q.notifier.for_held(&facts);
        let record = HeldRecord {
            received_ms,
            mode: q.mode,
            queue_id: envelope.queue_id.clone(),
            client_addr: envelope.client_addr.clone(),
            sender: envelope.mail_from.clone(),
            recipients: envelope.rcpt_to.clone(),
            details,
            notices,
        };
        let queue_id = envelope.queue_id.as_deref().unwrap_or("-");
        match q.writer.hold_blocking(record, &id, message) {
            Ok(()) => {
                tracing::info!(queue_id, quarantine_id = %id, mode = q.mode.as_str(), "quarantined");
                match q.mode {
                    // The MTA adds no header to a discarded message; the id is there for
                    // front ends that answer with it (the relay's 250 reply).
                    Mode::Store => Decision {
                        action: milter::Action::Discard,
                        add_headers: vec![("X-Maildlp-Quarantine-Id".into(), id.clone())],
                    },
                    Mode::Hold => {
                        let mut d = decision(verdict);
                        d.add_headers
                            .push(("X-Maildlp-Quarantine-Id".into(), id.clone()));
                        if let milter::Action::Quarantine { reason } = &mut d.action {
                            reason.push_str(&format!(" (quarantine id {id})"));
                        }
                        d
                    }
                }
            }
            Err(e) => {
                if let Some(m) = &self.metrics {
                    m.store_error();
                }
                tracing::error!(
                    queue_id,
                    "message to quarantine not stored, answering tempfail: {e}"
                );
                Decision::tempfail("the quarantine is unavailable; try again later")
            }
        }
    }
}

/// One line per judged message: queue id, action, rules, kinds with counts, exceptions used.
/// No value and no message content is ever logged.
fn log_verdict(envelope: &milter::Envelope, v: &Verdict) {
    let rules: Vec<String> = v
        .rules
        .iter()
        .map(|r| {
            let kinds: Vec<String> = r
                .findings
                .iter()
                .map(|k| format!("{}x{}", k.kind, k.count))
                .collect();
            let m = if r.monitor { "(monitor)" } else { "" };
            if kinds.is_empty() {
                format!("{}{m}", r.rule)
            } else {
                format!("{}{m}[{}]", r.rule, kinds.join(","))
            }
        })
        .collect();
    let exceptions: Vec<String> = v
        .exceptions_used
        .iter()
        .map(|e| format!("{} by {} for {}", e.reference, e.approver, e.rule))
        .collect();
    tracing::info!(
        queue_id = envelope.queue_id.as_deref().unwrap_or("-"),
        from = %envelope.mail_from,
        rcpts = envelope.rcpt_to.len(),
        action = %v.action,
        would = ?v.would_action,
        rules = %rules.join(" "),
        exceptions = %exceptions.join("; "),
        require_tls = v.require_tls,
        "verdict"
    );
}

/// The milter decision for a verdict.
pub fn decision(v: &Verdict) -> Decision {
    let add_headers = v.headers.clone();
    let action = match v.action {
        Action::Accept | Action::Tag => milter::Action::Accept,
        Action::Quarantine => milter::Action::Quarantine {
            reason: format!(
                "maildlp: {}",
                v.rules
                    .iter()
                    .filter(|r| !r.monitor)
                    .map(|r| r.rule.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        Action::Reject => {
            let reply = v.reply.clone().unwrap_or_default();
            let text = reply
                .strip_prefix("550 5.7.1 ")
                .unwrap_or(&reply)
                .to_string();
            milter::Action::Reject {
                code: "550".into(),
                xcode: "5.7.1".into(),
                text,
            }
        }
    };
    Decision {
        action,
        add_headers,
    }
}

impl milter::Handler for PolicyHandler {
    fn judge(&self, envelope: &milter::Envelope, message: &[u8]) -> Decision {
        let (report, verdict) = self.judged(envelope, message);
        let Some(q) = &self.quarantine else {
            return decision(&verdict);
        };
        match verdict.action {
            Action::Quarantine => self.hold(q, envelope, message, &report, &verdict),
            Action::Reject => {
                let details = Details::new(&report, &verdict);
                let facts = MessageFacts {
                    id: None,
                    received_ms: now_ms(),
                    sender: &envelope.mail_from,
                    recipients: &envelope.rcpt_to,
                    queue_id: envelope.queue_id.as_deref(),
                    client_addr: envelope.client_addr.as_deref(),
                    node: q.writer.store().node(),
                    details: &details,
                };
                q.writer.notices(q.notifier.for_rejected(&facts));
                decision(&verdict)
            }
            Action::Accept | Action::Tag => decision(&verdict),
        }
    }

    /// Too large to scan: the policy's `unscannable` rule decides.
    fn oversize(&self, envelope: &milter::Envelope, limit: usize) -> Decision {
        let rule = &self.policy.rules.unscannable;
        // Nothing of the message was read: the setting for whole-message limits applies.
        let action = rule.action.max(rule.limit_action);
        let text = format!("message larger than the {limit}-byte scanning limit");
        tracing::warn!(
            queue_id = envelope.queue_id.as_deref().unwrap_or("-"),
            "{text}: rule unscannable applies"
        );
        if !rule.enabled || rule.monitor || self.policy.monitor {
            return Decision::accept();
        }
        if action == Action::Quarantine && self.quarantine.is_some() {
            tracing::warn!(
                queue_id = envelope.queue_id.as_deref().unwrap_or("-"),
                "not buffered, so not in maildlp's quarantine: held in the MTA's hold queue only"
            );
        }
        let header = || {
            vec![(
                "X-Maildlp-Verdict".to_string(),
                format!("{action}; rules=unscannable"),
            )]
        };
        match action {
            Action::Accept => Decision::accept(),
            Action::Tag => Decision {
                action: milter::Action::Accept,
                add_headers: header(),
            },
            Action::Quarantine => Decision {
                action: milter::Action::Quarantine {
                    reason: format!("maildlp: unscannable ({text})"),
                },
                add_headers: header(),
            },
            Action::Reject => Decision {
                action: milter::Action::Reject {
                    code: "552".into(),
                    xcode: "5.3.4".into(),
                    text: format!("{text}; send it in smaller parts"),
                },
                add_headers: Vec::new(),
            },
        }
    }
}

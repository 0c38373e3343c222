//! The engine behind the milter: scan + policy as a [`milter::Handler`]. The milter knows
//! nothing of scanning; this adapter calls the engine and turns a verdict into what the MTA
//! does.

use crate::milter::{self, Decision};
use crate::policy::{self, Action, Policy, Verdict};
use crate::scan::Scanner;

/// Scans each message and applies the policy.
pub struct PolicyHandler {
    pub scanner: Scanner,
    pub policy: Policy,
}

impl PolicyHandler {
    pub fn new(scanner: Scanner, policy: Policy) -> Self {
        PolicyHandler { scanner, policy }
    }

    /// The policy verdict for a message and its SMTP envelope.
    pub fn verdict(&self, envelope: &milter::Envelope, message: &[u8]) -> Verdict {
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
        verdict
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
        decision(&self.verdict(envelope, message))
    }

    /// Too large to scan: the policy's `unscannable` rule decides.
    fn oversize(&self, envelope: &milter::Envelope, limit: usize) -> Decision {
        let rule = &self.policy.rules.unscannable;
        let text = format!("message larger than the {limit}-byte scanning limit");
        tracing::warn!(
            queue_id = envelope.queue_id.as_deref().unwrap_or("-"),
            "{text}: rule unscannable applies"
        );
        if !rule.enabled || rule.monitor || self.policy.monitor {
            return Decision::accept();
        }
        let header = || {
            vec![(
                "X-Maildlp-Verdict".to_string(),
                format!("{}; rules=unscannable", rule.action),
            )]
        };
        match rule.action {
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

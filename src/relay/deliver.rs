//! What the relay does with a received message: judge it with the policy handler (off the
//! async runtime, as the milter does), then forward it with lettre, or leave it to the
//! quarantine store (the handler stores it before answering), or refuse it.

use super::session::{Deliver, Reply};
use crate::filter::PolicyHandler;
use crate::milter::{Action, Envelope, Handler};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::sync::{Arc, RwLock};

/// The handler in force; replaced whole on SIGHUP.
pub type SharedHandler = Arc<RwLock<Arc<PolicyHandler>>>;

/// Judge, then forward to the next hop or store.
pub struct Relay {
    pub handler: SharedHandler,
    pub transport: AsyncSmtpTransport<Tokio1Executor>,
    /// HOST:PORT, for replies and log lines.
    pub next_hop: String,
}

impl Deliver for Relay {
    async fn deliver(&self, envelope: Envelope, message: Vec<u8>) -> Reply {
        let handler = match self.handler.read() {
            Ok(h) => h.clone(),
            Err(_) => return Reply::new(451, "4.3.0 internal error; try again later"),
        };
        let judged = tokio::task::spawn_blocking(move || {
            let decision = handler.judge(&envelope, &message);
            (decision, envelope, message)
        })
        .await;
        let (decision, envelope, message) = match judged {
            Ok(j) => j,
            Err(e) => {
                tracing::error!("judging a message failed: {e}; answering 451");
                return Reply::new(
                    451,
                    "4.3.0 internal error while checking the message; try again later",
                );
            }
        };
        let queue_id = envelope.queue_id.as_deref().unwrap_or("-");
        match &decision.action {
            Action::Accept => {
                let mut out = Vec::with_capacity(message.len() + 256);
                for (name, value) in decision.header_fields() {
                    out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
                }
                out.extend_from_slice(&message);
                drop(message);
                self.forward(&envelope, &out).await
            }
            // Stored in the quarantine (committed before the handler returned).
            Action::Discard => {
                let id = decision
                    .add_headers
                    .iter()
                    .find(|(n, _)| n == "X-Maildlp-Quarantine-Id")
                    .map(|(_, v)| v.as_str())
                    .unwrap_or("-");
                Reply::new(
                    250,
                    format!("2.0.0 Ok: held for review in the quarantine as {id}"),
                )
            }
            Action::Reject { code, xcode, text } | Action::TempFail { code, xcode, text } => {
                let code = match code.parse::<u16>() {
                    Ok(c) if (400..600).contains(&c) => c,
                    _ => 451,
                };
                Reply::new(code, format!("{xcode} {text}"))
            }
            // Only the milter's hold mode asks the MTA to hold; the relay has no MTA queue.
            Action::Quarantine { .. } => {
                tracing::error!(
                    queue_id,
                    "a message to quarantine has no store to go to: answering 451"
                );
                Reply::new(
                    451,
                    "4.7.1 message held for review, but no quarantine is configured",
                )
            }
        }
    }
}

impl Relay {
    /// Hand the message to the next hop with its envelope unchanged; 250 only once it took it.
    async fn forward(&self, envelope: &Envelope, message: &[u8]) -> Reply {
        let queue_id = envelope.queue_id.as_deref().unwrap_or("-");
        let lettre_envelope = match lettre_envelope(envelope) {
            Ok(e) => e,
            Err(why) => {
                tracing::error!(queue_id, "not forwarded: {why}");
                return Reply::new(554, format!("5.1.3 {why}"));
            }
        };
        // lettre ends the text with CRLF "." CRLF itself (and stuffs dots, the first line's
        // too): without this the next hop would get one more empty line than was sent.
        let text = message.strip_suffix(b"\r\n").unwrap_or(message);
        match self.transport.send_raw(&lettre_envelope, text).await {
            Ok(response) => {
                let said = response.message().next().unwrap_or("").to_string();
                tracing::info!(queue_id, next_hop = %self.next_hop, reply = %said, "forwarded");
                Reply::new(
                    250,
                    format!("2.0.0 Ok: forwarded to {} ({})", self.next_hop, said),
                )
            }
            Err(e) if e.is_permanent() => {
                tracing::warn!(queue_id, next_hop = %self.next_hop, "the next hop refused the message: {e}");
                let code = e
                    .status()
                    .and_then(|c| c.to_string().parse::<u16>().ok())
                    .filter(|c| (500..600).contains(c))
                    .unwrap_or(554);
                Reply::new(
                    code,
                    format!(
                        "5.0.0 the next hop {} refused the message: {e}",
                        self.next_hop
                    ),
                )
            }
            Err(e) => {
                tracing::warn!(queue_id, next_hop = %self.next_hop, "forwarding failed, answering 451: {e}");
                Reply::new(
                    451,
                    format!(
                        "4.4.1 the next hop {} did not take the message ({e}); try again later",
                        self.next_hop
                    ),
                )
            }
        }
    }
}

/// The SMTP envelope for lettre: MAIL FROM (none for the null sender) and every RCPT TO.
fn lettre_envelope(envelope: &Envelope) -> Result<lettre::address::Envelope, String> {
    let from = if envelope.mail_from.is_empty() {
        None
    } else {
        Some(
            envelope
                .mail_from
                .parse::<lettre::Address>()
                .map_err(|e| format!("sender address not usable: {e}"))?,
        )
    };
    let to = envelope
        .rcpt_to
        .iter()
        .map(|r| {
            r.parse::<lettre::Address>()
                .map_err(|e| format!("recipient address not usable: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    lettre::address::Envelope::new(from, to).map_err(|e| format!("envelope not usable: {e}"))
}

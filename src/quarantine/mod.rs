//! The quarantine of record: every held message is stored whole, sealed, durably, before the
//! MTA is answered; the security team lists, reads, releases and deletes from it; every
//! decision is in an append-only audit log. A service between the front ends (milter, CLI,
//! console) and the engine: it knows verdicts, not sockets.
//!
//! - [`crypto`]: the key file and sealing (XChaCha20-Poly1305).
//! - [`store`]: SQLite or PostgreSQL behind one [`store::Store`].
//! - [`writer`]: group commit for the milter (many messages, one fsync).
//! - [`release`]: re-injection of a released message to the next hop (lettre).

pub mod accounts;
pub mod crypto;
pub mod release;
pub mod store;
pub mod writer;

use crate::model::{EncryptedPart, Finding, Unscannable};
use crate::policy::Verdict;
use crate::scan::ScanReport;
use serde::{Deserialize, Serialize};

pub use store::{Store, StoreError, StoreUrl};

/// Where a held message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Held,
    Released,
    Deleted,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Held => "held",
            Status::Released => "released",
            Status::Deleted => "deleted",
            Status::Expired => "expired",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "held" => Ok(Status::Held),
            "released" => Ok(Status::Released),
            "deleted" => Ok(Status::Deleted),
            "expired" => Ok(Status::Expired),
            _ => Err(format!(
                "{s:?} is not a status: use held, released, deleted or expired"
            )),
        }
    }
}

/// What the MTA is told after a message is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// maildlp's store holds the only copy; the MTA discards the message.
    Store,
    /// The MTA also keeps it in its own hold queue (Postfix) / quarantine (Sendmail).
    Hold,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Store => "store",
            Mode::Hold => "hold",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "store" => Ok(Mode::Store),
            "hold" => Ok(Mode::Hold),
            _ => Err(format!("{s:?}: use store or hold")),
        }
    }
}

/// Everything about a held message except its bytes; sealed in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    /// The Subject, or a note that it is withheld because a finding is in it.
    pub subject: String,
    /// The From header's address (the envelope sender is in the record).
    #[serde(default)]
    pub from_header: Option<String>,
    #[serde(default)]
    pub message_id: Option<String>,
    pub verdict: Verdict,
    /// Masked findings with their places.
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub encrypted: Vec<EncryptedPart>,
    #[serde(default)]
    pub unscannable: Vec<Unscannable>,
}

impl Details {
    /// The details kept for a scanned message and its verdict.
    pub fn new(report: &ScanReport, verdict: &Verdict) -> Details {
        let subject_kinds: Vec<&str> = report
            .findings
            .iter()
            .filter(|f| f.location == "subject")
            .map(|f| f.kind.as_str())
            .collect();
        let subject = if subject_kinds.is_empty() {
            report.info.subject.clone().unwrap_or_default()
        } else {
            format!("(subject withheld: it holds {})", subject_kinds.join(", "))
        };
        Details {
            subject,
            from_header: report.info.from.clone(),
            message_id: report.info.message_id.clone(),
            verdict: verdict.clone(),
            findings: report.findings.clone(),
            encrypted: report.encrypted.clone(),
            unscannable: report.unscannable.clone(),
        }
    }

    /// Names of the rules that made the message held (not those in monitor mode).
    pub fn enforced_rules(&self) -> Vec<String> {
        self.verdict
            .rules
            .iter()
            .filter(|r| !r.monitor)
            .map(|r| r.rule.clone())
            .collect()
    }
}

/// A message to hold, as the milter hands it over.
#[derive(Debug, Clone)]
pub struct HeldRecord {
    pub received_ms: i64,
    pub mode: Mode,
    pub queue_id: Option<String>,
    pub client_addr: Option<String>,
    /// MAIL FROM (empty for the null sender).
    pub sender: String,
    /// Every RCPT TO.
    pub recipients: Vec<String>,
    pub details: Details,
    pub notices: Vec<NewNotice>,
}

/// A held message ready to insert: sealed, with its id.
#[derive(Debug, Clone)]
pub struct SealedHeld {
    pub id: String,
    pub received_ms: i64,
    pub mode: String,
    pub queue_id: Option<String>,
    pub client_addr: Option<String>,
    pub sender: String,
    pub recipients_json: String,
    pub rules: Vec<String>,
    pub kinds: Vec<String>,
    pub size: u64,
    pub details: Vec<u8>,
    pub content: Vec<u8>,
    pub audit_reason: String,
    pub notices: Vec<NewNotice>,
}

impl HeldRecord {
    /// Seal the record and `message` under `key` with a new id (CPU work: done on the caller's
    /// thread, not in the store's writer).
    pub fn seal(self, key: &crypto::Key, id: String, message: &[u8]) -> SealedHeld {
        let mut kinds: Vec<String> = self
            .details
            .findings
            .iter()
            .map(|f| f.kind.clone())
            .collect();
        kinds.sort();
        kinds.dedup();
        let rules = self.details.enforced_rules();
        let audit_reason = format!(
            "held by the policy: {}",
            self.details
                .verdict
                .rules
                .iter()
                .filter(|r| !r.monitor)
                .map(|r| r.rule.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let details_json = serde_json::to_vec(&self.details).unwrap_or_default();
        let notices = self
            .notices
            .into_iter()
            .map(|mut n| {
                n.message_id = Some(id.clone());
                n
            })
            .collect();
        SealedHeld {
            details: key.seal(&format!("{id}/details"), &details_json),
            content: key.seal(&format!("{id}/content"), message),
            received_ms: self.received_ms,
            mode: self.mode.as_str().into(),
            queue_id: self.queue_id,
            client_addr: self.client_addr,
            sender: self.sender,
            recipients_json: serde_json::to_string(&self.recipients)
                .unwrap_or_else(|_| "[]".into()),
            rules,
            kinds,
            size: message.len() as u64,
            audit_reason,
            notices,
            id,
        }
    }
}

/// A notice to send (to a sender or the security officer). Never holds a sensitive value in
/// clear: findings are masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotice {
    /// `sender_quarantine`, `sender_reject`, `incident`, `digest`.
    pub kind: String,
    pub message_id: Option<String>,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    /// Over the per-sender rate limit: recorded, not sent.
    pub suppressed: bool,
}

/// A queued notice, due for sending.
#[derive(Debug, Clone)]
pub struct Notice {
    pub id: String,
    pub kind: String,
    pub message_id: Option<String>,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub attempts: u32,
}

/// A line of `quarantine list`.
#[derive(Debug, Clone)]
pub struct Summary {
    pub id: String,
    pub status: Status,
    pub received_ms: i64,
    pub status_ms: i64,
    pub node: String,
    pub mode: String,
    pub queue_id: Option<String>,
    pub client_addr: Option<String>,
    pub sender: String,
    pub recipients: Vec<String>,
    pub rules: Vec<String>,
    pub kinds: Vec<String>,
    pub size: u64,
    /// The sealed details, opened (or why they could not be).
    pub details: Result<Details, String>,
}

/// One held message in full (without its bytes).
#[derive(Debug, Clone)]
pub struct HeldMessage {
    pub summary: Summary,
    pub details: Details,
    /// False once deleted, expired or purged.
    pub has_content: bool,
    pub history: Vec<AuditEntry>,
}

/// An entry of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub message_id: Option<String>,
    pub reason: String,
    pub node: String,
}

/// What `quarantine list` selects.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<Status>,
    pub rule: Option<String>,
    pub kind: Option<String>,
    /// Case-insensitive glob over the envelope sender (`*@city.test`).
    pub sender: Option<String>,
    pub since_ms: Option<i64>,
    pub before_ms: Option<i64>,
    pub limit: Option<usize>,
    /// Skip this many (pages in the console).
    pub offset: Option<usize>,
}

/// A new quarantine id: a UUIDv7 (time-ordered, random), lower-case hex with dashes.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The domain of an address, lower-case (empty when there is none).
pub fn domain_of(addr: &str) -> String {
    addr.rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase())
        .unwrap_or_default()
}

/// Milliseconds since the epoch as RFC 3339 (UTC, seconds).
pub fn format_ms(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A point in time from the command line: `2026-11-30`, `2026-11-30T08:00:00Z`, or an age
/// (`7d`, `12h`) meaning that long ago.
pub fn parse_time(s: &str, now_ms: i64) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(d) = humantime::parse_duration(s) {
        // An age longer than the epoch is simply "before everything", not an overflow.
        let age = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        return Ok(now_ms.saturating_sub(age));
    }
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    humantime::parse_rfc3339_weak(&full)
        .map(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0)
        })
        .map_err(|_| {
            format!("{s:?}: write a date (2026-11-30), a time (2026-11-30T08:00:00Z) or an age (7d, 12h)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_dates_and_ages() {
        let now = parse_time("2026-11-30", 0).expect("date");
        assert_eq!(format_ms(now), "2026-11-30T00:00:00Z");
        assert_eq!(parse_time("7d", now).expect("age"), now - 7 * 86_400_000);
        assert_eq!(
            parse_time("2026-11-30T08:00:00Z", 0).expect("time") - now,
            8 * 3_600_000
        );
        assert!(parse_time("yesterday", now).is_err());
    }

    #[test]
    fn statuses_and_domains() {
        for s in ["held", "released", "deleted", "expired"] {
            assert_eq!(s.parse::<Status>().expect("status").as_str(), s);
        }
        assert!("gone".parse::<Status>().is_err());
        assert_eq!(domain_of("Pat@City.Test."), "city.test");
        assert_eq!(domain_of(""), "");
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
    }
}

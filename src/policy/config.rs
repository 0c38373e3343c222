//! The policy file: schema, loading and validation. Unknown keys are errors; every error names
//! the file, the line and what is allowed.

use crate::model::Confidence;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The embedded default policy (enforces `shared/policy-map.md`).
pub const DEFAULT_POLICY: &str = include_str!("default.toml");

/// Rule names, as `shared/policy-map.md` spells them (plus `unscannable`).
pub const RULES: &[&str] = &[
    "sensitive_info",
    "bcc_mass_mailing",
    "restricted_distribution",
    "password_with_encrypted_attachment",
    "personal_account",
    "encrypted_channel",
    "unscannable",
];

/// What happens to a message, weakest first (the derived order is used: strongest wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Accept,
    Tag,
    Quarantine,
    Reject,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Tag => "tag",
            Action::Quarantine => "quarantine",
            Action::Reject => "reject",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub monitor: bool,
    pub organisation: Organisation,
    pub notices: Notices,
    pub rules: Rules,
    #[serde(default, rename = "exception", skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<Exception>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organisation {
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub personal_domains: Vec<String>,
    #[serde(default)]
    pub security_officer: String,
    #[serde(
        default,
        rename = "restricted_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub restricted_lists: Vec<RestrictedList>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestrictedList {
    pub address: String,
    /// Addresses or globs (`*@communications.city.example`) allowed to send to it.
    #[serde(default)]
    pub authorised: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notices {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub from: String,
    /// Tell the sender when a message of theirs is quarantined.
    #[serde(default = "yes")]
    pub sender_on_quarantine: bool,
    /// Tell the sender when a message of theirs is rejected (the MTA's bounce says it too).
    #[serde(default)]
    pub sender_on_reject: bool,
    /// An incident report to `organisation.security_officer` per quarantined or rejected message.
    #[serde(default = "yes")]
    pub incident_reports: bool,
    /// Hour of the day (UTC, 0-23) of the digest of held mail to the security officer; -1: none.
    #[serde(default = "seven")]
    pub digest_hour: i8,
    /// Notices to one sender per hour; past it they are recorded, not sent.
    #[serde(default = "ten")]
    pub max_per_sender_per_hour: u32,
    /// Directory of template files overriding the built-in ones (empty: built-in only).
    #[serde(default)]
    pub templates: String,
}

fn seven() -> i8 {
    7
}

fn ten() -> u32 {
    10
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    pub sensitive_info: SensitiveInfo,
    pub bcc_mass_mailing: BccMassMailing,
    pub restricted_distribution: Simple,
    pub password_with_encrypted_attachment: Simple,
    pub personal_account: Simple,
    pub encrypted_channel: EncryptedChannel,
    pub unscannable: Simple,
}

/// Settings every rule has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Simple {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub monitor: bool,
    pub action: Action,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensitiveInfo {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub monitor: bool,
    pub reason: String,
    /// Mail with any recipient outside the City's domains.
    pub outbound: Thresholds,
    /// Mail whose recipients are all inside the City's domains.
    pub internal: Thresholds,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub action: Action,
    pub default: Threshold,
    #[serde(default)]
    pub kinds: BTreeMap<String, Threshold>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub confidence: Confidence,
    pub count: usize,
    /// Overrides the direction's action for this kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

impl Thresholds {
    pub fn for_kind(&self, kind: &str) -> &Threshold {
        self.kinds.get(kind).unwrap_or(&self.default)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BccMassMailing {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub monitor: bool,
    pub action: Action,
    pub max_visible: usize,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptedChannel {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub monitor: bool,
    pub action: Action,
    pub header: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    /// The written approval's reference (memo or ticket number).
    pub reference: String,
    /// Who approved it (the CTO or designee).
    pub approver: String,
    /// A rule name, or `*` for every rule.
    pub rule: String,
    /// Only these kinds (sensitive-information rules); empty means every kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// Sender address glob; absent means any sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// Recipient glob that every recipient must match; absent means any recipients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// Last day the exception applies (inclusive).
    pub expires: toml::value::Datetime,
}

fn yes() -> bool {
    true
}

/// A policy that could not be loaded: where and why.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct PolicyError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl Policy {
    /// The embedded default.
    pub fn default_policy() -> Result<Policy, PolicyError> {
        Policy::parse(DEFAULT_POLICY, "<embedded default policy>", &[])
    }

    /// Read and validate a policy file. `kinds` are the sensitive kinds the detector knows
    /// (a City's own pattern kinds included); the policy may only name those.
    pub fn load(path: &std::path::Path, kinds: &[String]) -> Result<Policy, PolicyError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            file: shown.clone(),
            line: 0,
            message: format!("cannot read the policy file: {e}"),
        })?;
        Policy::parse(&text, &shown, kinds)
    }

    /// Parse and validate policy text. An empty `kinds` skips the kind-name check.
    pub fn parse(text: &str, file: &str, kinds: &[String]) -> Result<Policy, PolicyError> {
        let policy: Policy = toml::from_str(text).map_err(|e| PolicyError {
            file: file.to_string(),
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(0),
            message: e.message().trim().to_string(),
        })?;
        policy.validate(text, file, kinds)?;
        Ok(policy)
    }

    fn validate(&self, text: &str, file: &str, kinds: &[String]) -> Result<(), PolicyError> {
        let err = |needle: &str, message: String| PolicyError {
            file: file.to_string(),
            line: text.find(needle).map(|p| line_of(text, p)).unwrap_or(0),
            message,
        };
        let check_kind = |kind: &str| -> Result<(), PolicyError> {
            if !kinds.is_empty() && !kinds.iter().any(|k| k == kind) {
                return Err(err(
                    kind,
                    format!(
                        "unknown kind {kind:?}: use one of {} (or add a pattern file with that kind)",
                        kinds.join(", ")
                    ),
                ));
            }
            Ok(())
        };
        for t in [
            &self.rules.sensitive_info.outbound,
            &self.rules.sensitive_info.internal,
        ] {
            for (kind, th) in &t.kinds {
                check_kind(kind)?;
                if th.count == 0 {
                    return Err(err(kind, format!("{kind}: count must be 1 or more")));
                }
            }
            if t.default.count == 0 {
                return Err(err("default", "default: count must be 1 or more".into()));
            }
        }
        for ex in &self.exceptions {
            if ex.rule != "*" && !RULES.contains(&ex.rule.as_str()) {
                return Err(err(
                    &ex.reference,
                    format!(
                        "exception {}: unknown rule {:?}: use one of {} or \"*\"",
                        ex.reference,
                        ex.rule,
                        RULES.join(", ")
                    ),
                ));
            }
            for k in &ex.kinds {
                check_kind(k)?;
            }
            if exception_date(ex).is_none() {
                return Err(err(
                    &ex.reference,
                    format!(
                        "exception {}: expires must be a date such as 2027-06-30",
                        ex.reference
                    ),
                ));
            }
            if ex.approver.trim().is_empty() || ex.reference.trim().is_empty() {
                return Err(err(
                    "[[exception]]",
                    "an exception needs a reference and an approver (Denton II: written approval)"
                        .into(),
                ));
            }
        }
        for list in &self.organisation.restricted_lists {
            if !list.address.contains('@') {
                return Err(err(
                    &list.address,
                    format!(
                        "restricted_list address {:?} is not an e-mail address",
                        list.address
                    ),
                ));
            }
        }
        let n = &self.notices;
        if !(-1..=23).contains(&n.digest_hour) {
            return Err(err(
                "digest_hour",
                "digest_hour: an hour of the day, 0 to 23 (UTC), or -1 for no digest".into(),
            ));
        }
        if !n.from.contains('@') {
            return Err(err(
                "from",
                format!("notices.from {:?} is not an e-mail address", n.from),
            ));
        }
        let officer = &self.organisation.security_officer;
        if !officer.is_empty() && !officer.contains('@') {
            return Err(err(
                "security_officer",
                format!("security_officer {officer:?} is not an e-mail address"),
            ));
        }
        if !n.templates.is_empty() && !std::path::Path::new(&n.templates).is_dir() {
            return Err(err(
                "templates",
                format!(
                    "notices.templates {:?} is not a directory (leave it empty for the built-in templates)",
                    n.templates
                ),
            ));
        }
        for d in self
            .organisation
            .domains
            .iter()
            .chain(&self.organisation.personal_domains)
        {
            if d.contains('@') || d.trim().is_empty() {
                return Err(err(
                    d,
                    format!("{d:?} is not a domain name (write city.example, without @)"),
                ));
            }
        }
        Ok(())
    }

    /// The policy as TOML (what `maildlp policy show` prints).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print the policy: {e}\n"))
    }
}

/// The (year, month, day) an exception expires, if `expires` is a date.
pub fn exception_date(ex: &Exception) -> Option<(u16, u8, u8)> {
    ex.expires.date.map(|d| (d.year, d.month, d.day))
}

/// 1-based line number of byte offset `pos`.
fn line_of(text: &str, pos: usize) -> usize {
    text.get(..pos.min(text.len()))
        .map(|t| t.bytes().filter(|&b| b == b'\n').count() + 1)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds() -> Vec<String> {
        [
            "us_ssn",
            "password",
            "credit_card",
            "attorney_client",
            "credential_list",
            "private_key",
            "api_token",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn default_policy_loads() {
        let p = Policy::default_policy().expect("default policy is valid");
        assert_eq!(p.rules.bcc_mass_mailing.max_visible, 25);
        assert_eq!(p.rules.sensitive_info.outbound.action, Action::Quarantine);
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let mut text = DEFAULT_POLICY.to_string();
        text = text.replace("max_visible = 25", "max_visible = 25\nmax_visibel = 3");
        let e = Policy::parse(&text, "p.toml", &kinds()).expect_err("unknown key rejected");
        let line = text
            .lines()
            .position(|l| l.starts_with("max_visibel"))
            .map(|i| i + 1)
            .unwrap_or(0);
        assert_eq!(e.line, line, "{e}");
        assert!(e.message.contains("max_visibel"), "{e}");
        assert!(e.to_string().starts_with("p.toml:"), "{e}");
    }

    #[test]
    fn bad_action_says_what_is_allowed() {
        let text = DEFAULT_POLICY.replace(
            "action = \"reject\"\nmax_visible",
            "action = \"bounce\"\nmax_visible",
        );
        let e = Policy::parse(&text, "p.toml", &kinds()).expect_err("bad action rejected");
        assert!(
            e.message.contains("accept") && e.message.contains("reject"),
            "{e}"
        );
    }

    #[test]
    fn unknown_kind_and_rule_are_errors() {
        let text = DEFAULT_POLICY.replace(
            "kinds.attorney_client = { confidence = \"high\"",
            "kinds.social_security = { confidence = \"high\"",
        );
        let e = Policy::parse(&text, "p.toml", &kinds()).expect_err("unknown kind");
        assert!(e.message.contains("social_security"), "{e}");
        assert!(e.line > 0);

        let text = format!(
            "{DEFAULT_POLICY}\n[[exception]]\nreference = \"X-1\"\napprover = \"CTO\"\nrule = \"bcc_mass_mail\"\nexpires = 2030-01-01\n"
        );
        let e = Policy::parse(&text, "p.toml", &kinds()).expect_err("unknown rule");
        assert!(e.message.contains("bcc_mass_mail"), "{e}");
    }

    #[test]
    fn show_round_trips() {
        let p = Policy::default_policy().expect("default");
        let again = Policy::parse(&p.to_toml(), "shown", &kinds()).expect("printed policy parses");
        assert_eq!(p, again);
    }
}

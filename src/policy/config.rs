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
    "chain_letter",
    "mass_solicitation",
    "unapproved_file_share",
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
    pub unscannable: UnscannableRule,
    /// Optional in a policy file (added after the others): absent, the default applies.
    #[serde(default = "ContentRule::chain_letter")]
    pub chain_letter: ContentRule,
    #[serde(default = "ContentRule::mass_solicitation")]
    pub mass_solicitation: ContentRule,
    #[serde(default = "FileShareRule::default_rule")]
    pub unapproved_file_share: FileShareRule,
}

/// A content rule scored from weighted phrases (`[[phrase]]` in `patterns/`): fires when the
/// points of a message reach `threshold`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentRule {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Monitor mode unless the policy says otherwise: staff legitimately write about
    /// fundraisers and elections, so these rules are tuned on replayed mail first.
    #[serde(default = "yes")]
    pub monitor: bool,
    /// Points at which the rule fires (1 or more).
    pub threshold: i64,
    pub outbound: DirectionAction,
    pub internal: DirectionAction,
    pub reason: String,
}

/// The action of a rule for one direction of mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectionAction {
    pub action: Action,
}

impl ContentRule {
    /// The defaults of the embedded policy (the test `content_rule_defaults_match_the_file`
    /// keeps them equal to default.toml).
    pub fn chain_letter() -> ContentRule {
        ContentRule {
            enabled: true,
            monitor: true,
            threshold: 10,
            outbound: DirectionAction { action: Action::Tag },
            internal: DirectionAction { action: Action::Tag },
            reason: "The message reads like a chain letter, hoax or mass mailing (score {score}, threshold {threshold}: {phrases}). City mail may not be used to pass these on: delete it, or report it to the help desk if it is a scam.".into(),
        }
    }

    pub fn mass_solicitation() -> ContentRule {
        ContentRule {
            enabled: true,
            monitor: true,
            threshold: 10,
            outbound: DirectionAction { action: Action::Tag },
            internal: DirectionAction { action: Action::Tag },
            reason: "The message reads like a solicitation or advertisement for a non-City purpose (score {score}, threshold {threshold}: {phrases}). City mail may not be used for personal, political, religious or charity solicitations other than the City's own; for a City-sanctioned campaign, ask for a written exception.".into(),
        }
    }
}

/// `unapproved_file_share`: links to file-sharing and paste services (`[[service]]` in
/// `patterns/`) other than the City's approved tenants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileShareRule {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub monitor: bool,
    /// The City's approved tenants: a host (`cityofexample.sharepoint.com`, sub-domains
    /// included) or a host and path prefix (`drive.google.com/a/cityofexample.org/`).
    #[serde(default)]
    pub approved: Vec<String>,
    pub outbound: ShareActions,
    pub internal: ShareActions,
    pub reason: String,
}

/// The actions of `unapproved_file_share` for one direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareActions {
    /// A link alone.
    pub action: Action,
    /// A link in a message that also carries sensitive information (kinds at or over the
    /// `sensitive_info` thresholds of the direction): at least as strong as `action`.
    pub with_sensitive: Action,
}

impl FileShareRule {
    pub fn default_rule() -> FileShareRule {
        FileShareRule {
            enabled: true,
            monitor: false,
            approved: Vec::new(),
            outbound: ShareActions {
                action: Action::Tag,
                with_sensitive: Action::Quarantine,
            },
            internal: ShareActions {
                action: Action::Tag,
                with_sensitive: Action::Tag,
            },
            reason: "The message links to {services}, a file-sharing service the City has not approved for City information (Conway \"Off-Site Transmission and Storage\"). Share the file through {approved} instead.".into(),
        }
    }
}

/// The `unscannable` rule: parts not read because of a limit or corrupt data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnscannableRule {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub monitor: bool,
    /// For a part that could not be read (corrupt, unknown format, one part too large).
    pub action: Action,
    /// When a limit of the whole message was reached (decoded size, time, part count,
    /// candidate limit): everything after that point went unread, so this is at least as
    /// strong as `action` (default quarantine).
    #[serde(default = "quarantine")]
    pub limit_action: Action,
    pub reason: String,
}

fn quarantine() -> Action {
    Action::Quarantine
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

    /// Parse and validate policy text. An empty `kinds` skips the kind-name check. Text with
    /// `extends = "default"` is a partial policy merged over the embedded default.
    pub fn parse(text: &str, file: &str, kinds: &[String]) -> Result<Policy, PolicyError> {
        let syntax = |e: toml::de::Error| PolicyError {
            file: file.to_string(),
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(0),
            message: e.message().trim().to_string(),
        };
        let table: toml::Table = toml::from_str(text).map_err(syntax)?;
        let policy: Policy = match table.get("extends") {
            None => toml::from_str(text).map_err(syntax)?,
            Some(base) => {
                if base.as_str() != Some("default") {
                    return Err(PolicyError {
                        file: file.to_string(),
                        line: top_key_line(text, "extends"),
                        message: format!(
                            "extends = {base}: the only base is \"default\" (the embedded policy, `maildlp policy show`); leave extends out for a complete policy file"
                        ),
                    });
                }
                overlay_default(table, text, file)?
            }
        };
        policy.validate(text, file, kinds)?;
        // Templates of the City's own are compiled and rendered once here, so that
        // `policy check` finds a broken one, not the first quarantine.
        if !policy.notices.templates.is_empty()
            && let Err(e) = crate::notify::Notifier::new(&policy)
        {
            return Err(PolicyError {
                file: file.to_string(),
                line: key_line(text, "notices", "templates"),
                message: format!("notices.templates: {e}"),
            });
        }
        Ok(policy)
    }

    fn validate(&self, text: &str, file: &str, kinds: &[String]) -> Result<(), PolicyError> {
        let err = |needle: &str, message: String| PolicyError {
            file: file.to_string(),
            line: needle_line(text, needle),
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
        for ex in &self.exceptions {
            for (key, glob) in [("sender", &ex.sender), ("recipient", &ex.recipient)] {
                if let Some(g) = glob
                    && let Err(why) = check_address(g, true)
                {
                    return Err(err(
                        g,
                        format!("exception {}: {key} {g:?} {why}", ex.reference),
                    ));
                }
            }
        }
        for list in &self.organisation.restricted_lists {
            if let Err(why) = check_address(&list.address, false) {
                return Err(err(
                    &list.address,
                    format!("restricted_list address {:?} {why}", list.address),
                ));
            }
            for g in &list.authorised {
                if let Err(why) = check_address(g, true) {
                    return Err(err(
                        g,
                        format!(
                            "restricted_list {}: authorised sender {g:?} {why}",
                            list.address
                        ),
                    ));
                }
            }
        }
        let at = |section: &str, key: &str| PolicyError {
            file: file.to_string(),
            line: key_line(text, section, key),
            message: String::new(),
        };
        let at_msg = |section: &str, key: &str, message: String| PolicyError {
            message,
            ..at(section, key)
        };
        let n = &self.notices;
        if !(-1..=23).contains(&n.digest_hour) {
            return Err(at_msg(
                "notices",
                "digest_hour",
                "digest_hour: an hour of the day, 0 to 23 (UTC), or -1 for no digest".into(),
            ));
        }
        if let Err(why) = check_mailbox(&n.from) {
            return Err(at_msg(
                "notices",
                "from",
                format!("notices.from {:?} {why}", n.from),
            ));
        }
        let host = n.smtp_host.trim();
        if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
            return Err(at_msg(
                "notices",
                "smtp_host",
                format!(
                    "notices.smtp_host {:?}: a host name or IP address (127.0.0.1 for the release listener)",
                    n.smtp_host
                ),
            ));
        }
        if n.smtp_port == 0 {
            return Err(at_msg(
                "notices",
                "smtp_port",
                "notices.smtp_port: a port number, 1 to 65535 (10026 for the release listener)"
                    .into(),
            ));
        }
        let officer = &self.organisation.security_officer;
        if !officer.is_empty()
            && let Err(why) = check_mailbox(officer)
        {
            return Err(at_msg(
                "organisation",
                "security_officer",
                format!(
                    "security_officer {officer:?} {why} (leave it empty for no incident reports and no digest)"
                ),
            ));
        }
        if !n.templates.is_empty() && !std::path::Path::new(&n.templates).is_dir() {
            return Err(at_msg(
                "notices",
                "templates",
                format!(
                    "notices.templates {:?} is not a directory (leave it empty for the built-in templates)",
                    n.templates
                ),
            ));
        }
        for (key, list) in [
            ("domains", &self.organisation.domains),
            ("personal_domains", &self.organisation.personal_domains),
        ] {
            for d in list {
                if let Err(why) = check_domain(d) {
                    return Err(PolicyError {
                        file: file.to_string(),
                        line: value_line(text, "organisation", key, d),
                        message: format!("organisation.{key}: {d:?} {why}"),
                    });
                }
            }
        }
        for (name, rule) in [
            ("chain_letter", &self.rules.chain_letter),
            ("mass_solicitation", &self.rules.mass_solicitation),
        ] {
            if !(1..=10_000).contains(&rule.threshold) {
                return Err(at_msg(
                    &format!("rules.{name}"),
                    "threshold",
                    format!(
                        "rules.{name}.threshold {}: points from 1 to 10000 (the sum of the phrase weights of a message; see `maildlp replay --scores`)",
                        rule.threshold
                    ),
                ));
            }
        }
        let share = &self.rules.unapproved_file_share;
        for a in &share.approved {
            if let Err(why) = check_approved(a) {
                return Err(PolicyError {
                    file: file.to_string(),
                    line: value_line(text, "rules.unapproved_file_share", "approved", a),
                    message: format!("rules.unapproved_file_share.approved: {a:?} {why}"),
                });
            }
        }
        for (dir, acts) in [("outbound", &share.outbound), ("internal", &share.internal)] {
            if acts.with_sensitive < acts.action {
                return Err(at_msg(
                    "rules.unapproved_file_share",
                    dir,
                    format!(
                        "rules.unapproved_file_share.{dir}: with_sensitive ({}) must be at least as strong as action ({}): a link with sensitive information is the worse case",
                        acts.with_sensitive, acts.action
                    ),
                ));
            }
        }
        if let Err(why) = check_header_name(&self.rules.encrypted_channel.header) {
            return Err(at_msg(
                "rules.encrypted_channel",
                "header",
                format!(
                    "rules.encrypted_channel.header {:?} {why}",
                    self.rules.encrypted_channel.header
                ),
            ));
        }
        Ok(())
    }

    /// The policy as TOML (what `maildlp policy show` prints).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print the policy: {e}\n"))
    }
}

/// `overlay` (a partial policy, `extends` included) merged over the embedded default and
/// deserialized; an error names the line of the key in the partial file.
fn overlay_default(
    mut overlay: toml::Table,
    text: &str,
    file: &str,
) -> Result<Policy, PolicyError> {
    overlay.remove("extends");
    let mut base: toml::Table = toml::from_str(DEFAULT_POLICY).map_err(|e| PolicyError {
        file: "<embedded default policy>".into(),
        line: 0,
        message: e.message().trim().to_string(),
    })?;
    merge_tables(&mut base, overlay);
    // Printed and parsed again so the error has a place; that place is then looked up in the
    // City's file by its key path.
    let merged = toml::to_string(&base).map_err(|e| PolicyError {
        file: file.to_string(),
        line: 0,
        message: format!("cannot merge the policy over the default: {e}"),
    })?;
    toml::from_str::<Policy>(&merged).map_err(|e| {
        let path = e
            .span()
            .map(|s| path_at(&merged, s.start))
            .unwrap_or_default();
        let shown = path
            .iter()
            .filter(|p| p.parse::<usize>().is_err())
            .cloned()
            .collect::<Vec<_>>()
            .join(".");
        let message = e.message().trim();
        PolicyError {
            file: file.to_string(),
            line: path_line(text, &path),
            message: if shown.is_empty() {
                message.to_string()
            } else {
                format!("{shown}: {message}")
            },
        }
    })
}

/// The key path (array indexes as numbers) of the key of `text` at byte offset `at`, or of
/// the key whose value holds it.
fn path_at(text: &str, at: usize) -> Vec<String> {
    fn walk(v: &toml::de::DeValue<'_>, at: usize, path: &mut Vec<String>) -> bool {
        match v {
            toml::de::DeValue::Table(t) => {
                for (k, v) in t.iter() {
                    path.push(k.get_ref().to_string());
                    if k.span().contains(&at) || walk(v.get_ref(), at, path) {
                        return true;
                    }
                    // A value (not a table) that holds the offset: this key.
                    if !v.get_ref().is_table() && v.span().contains(&at) {
                        return true;
                    }
                    path.pop();
                }
                false
            }
            toml::de::DeValue::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    path.push(i.to_string());
                    if walk(v.get_ref(), at, path) {
                        return true;
                    }
                    path.pop();
                }
                false
            }
            _ => false,
        }
    }
    let Ok(doc) = toml::de::DeTable::parse(text) else {
        return Vec::new();
    };
    let mut path = Vec::new();
    let root = toml::de::DeValue::Table(doc.into_inner());
    if walk(&root, at, &mut path) {
        path
    } else {
        Vec::new()
    }
}

/// `over` merged into `base`: tables key by key, anything else (values, lists, arrays of
/// tables) replaced.
fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// 1-based line of the deepest key of `path` written in `text`; 0 when none is.
fn path_line(text: &str, path: &[String]) -> usize {
    let Ok(doc) = toml::de::DeTable::parse(text) else {
        return 0;
    };
    let mut line = 0;
    let mut table: Option<&toml::de::DeTable<'_>> = Some(doc.get_ref());
    let mut array: Option<&toml::de::DeArray<'_>> = None;
    for seg in path {
        let next = if let Some(arr) = array.take() {
            seg.parse::<usize>().ok().and_then(|i| arr.get(i))
        } else if let Some(t) = table.take() {
            t.iter()
                .find(|(k, _)| k.get_ref().as_ref() == seg.as_str())
                .map(|(k, v)| {
                    line = line_of(text, k.span().start);
                    v
                })
        } else {
            None
        };
        let Some(v) = next else {
            break;
        };
        match v.get_ref() {
            toml::de::DeValue::Table(t) => table = Some(t),
            toml::de::DeValue::Array(a) => array = Some(a),
            _ => {}
        }
    }
    line
}

/// 1-based line of a top-level `key = ...` (before any table header); 0 when not written.
fn top_key_line(text: &str, key: &str) -> usize {
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            break;
        }
        if let Some(rest) = line.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return i + 1;
        }
    }
    0
}

/// The (year, month, day) an exception expires, if `expires` is a date.
pub fn exception_date(ex: &Exception) -> Option<(u16, u8, u8)> {
    ex.expires.date.map(|d| (d.year, d.month, d.day))
}

/// Why `addr` is not an e-mail address the policy can compare (`glob`: `*` allowed).
fn check_address(addr: &str, glob: bool) -> Result<(), String> {
    let what = if glob {
        "is not an address or a glob such as *@city.example"
    } else {
        "is not an e-mail address"
    };
    let a = addr.trim();
    let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';');
    if a.contains(bad) {
        return Err(what.to_string());
    }
    let Some((local, domain)) = a.rsplit_once('@') else {
        // A glob such as `*` may leave out the @; without a `*` it could match no address.
        return if glob && a.contains('*') {
            Ok(())
        } else {
            Err(what.to_string())
        };
    };
    if local.is_empty() || domain.trim_end_matches('.').is_empty() {
        return Err(what.to_string());
    }
    if !glob && a.contains('*') {
        return Err(format!("{what} (no * here)"));
    }
    let bare = local.trim_matches('"');
    if let Some((mailbox, _)) = bare.split_once('+')
        && !mailbox.is_empty()
    {
        return Err(format!(
            "has a +tag, which is ignored when addresses are compared: write {}",
            super::normalise_address(a)
        ));
    }
    Ok(())
}

/// Why `addr` is not an address notices can be sent from or to (as the notice worker reads
/// it: `name@domain` or `Name <name@domain>`).
fn check_mailbox(addr: &str) -> Result<(), String> {
    match addr.trim().parse::<lettre::message::Mailbox>() {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "is not an e-mail address ({e}): write name@domain or Name <name@domain>"
        )),
    }
}

/// Why `d` is not a domain of the City or a personal-mail domain.
fn check_domain(d: &str) -> Result<(), String> {
    let name = d.trim().trim_end_matches('.');
    if name.is_empty() || d.contains('@') {
        return Err("is not a domain name (write city.example, without @)".into());
    }
    if name.contains('*') || name.starts_with('.') {
        return Err(format!(
            "is not a domain name: sub-domains are included, so write {}",
            name.trim_start_matches(['*', '.'])
        ));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.iter().any(|l| {
        l.is_empty()
            || l.starts_with('-')
            || l.ends_with('-')
            || !l.chars().all(|c| c.is_alphanumeric() || c == '-')
    }) {
        return Err(
            "is not a domain name (labels of letters, digits and hyphens, separated by dots)"
                .into(),
        );
    }
    if labels.len() < 2 {
        return Err(
            "is a single label: it would take in every address under that top-level \
             domain. Write the full domain, with at least two labels (such as city.example)"
                .into(),
        );
    }
    Ok(())
}

/// Why `a` is not an approved tenant: a host name (two labels or more), optionally followed by
/// a path prefix; no scheme, no `*`.
fn check_approved(a: &str) -> Result<(), String> {
    const HOW: &str = "write a host such as cityofexample.sharepoint.com (sub-domains included), or a host and path prefix such as drive.google.com/a/cityofexample.org/";
    let t = a.trim();
    if t.contains("://") || t.contains('*') || t.contains(char::is_whitespace) {
        return Err(format!("is not an approved tenant: {HOW}"));
    }
    let host = t.split('/').next().unwrap_or("");
    check_domain(host).map_err(|why| format!("{why}; {HOW}"))
}

/// Why `name` is not a header field name (RFC 5322 2.2: printable ASCII 33-126 except colon).
fn check_header_name(name: &str) -> Result<(), String> {
    const ALLOWED: &str = "a header name is printable ASCII (33-126) without a colon or a space, \
                           such as X-Maildlp-Require-TLS";
    if name.is_empty() {
        return Err(format!("is empty: {ALLOWED}"));
    }
    if let Some(c) = name.chars().find(|&c| !(c.is_ascii_graphic() && c != ':')) {
        return Err(format!("holds {c:?}: {ALLOWED}"));
    }
    if name.len() > 76 {
        return Err(format!("is longer than 76 characters: {ALLOWED}"));
    }
    // The MTA routes on this header: one the message has already would be ambiguous, and a
    // second From or Subject breaks the message.
    const TAKEN: &[&str] = &[
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "received",
        "return-path",
        "mime-version",
        "x-maildlp-verdict",
        "x-maildlp-quarantine-id",
    ];
    let lower = name.to_ascii_lowercase();
    if TAKEN.contains(&lower.as_str()) || lower.starts_with("content-") {
        return Err("is a header the message or maildlp uses already: choose a header of your own, such as X-Maildlp-Require-TLS".into());
    }
    Ok(())
}

/// 1-based line of the first occurrence of `needle` outside a comment line; 0 when none.
fn needle_line(text: &str, needle: &str) -> usize {
    if needle.is_empty() {
        return 0;
    }
    text.lines()
        .enumerate()
        .find(|(_, l)| !l.trim_start().starts_with('#') && l.contains(needle))
        .map_or(0, |(i, _)| i + 1)
}

/// 1-based line of `key = ...` in table `section` (comments skipped); 0 when not written.
fn key_line(text: &str, section: &str, key: &str) -> usize {
    key_pos(text, section, key).map_or(0, |(line, _)| line)
}

/// The line and byte offset of `key = ...` in table `section`.
fn key_pos(text: &str, section: &str, key: &str) -> Option<(usize, usize)> {
    let mut current = String::new();
    let mut offset = 0usize;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += raw.len();
        let line = raw.trim();
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            current = line
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            continue;
        }
        if current == section
            && let Some(rest) = line.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return Some((i + 1, start));
        }
    }
    None
}

/// 1-based line of the string `value` in the value of `key` of `section` (an array may span
/// lines); the key's line when the string is not found, else any line that holds it.
fn value_line(text: &str, section: &str, key: &str, value: &str) -> usize {
    let quoted = [format!("\"{value}\""), format!("'{value}'")];
    if let Some((line, start)) = key_pos(text, section, key) {
        let after = &text[start..];
        let end = after.find(']').map_or(after.len(), |p| p + 1);
        match quoted
            .iter()
            .filter_map(|q| after[..end].find(q.as_str()))
            .min()
        {
            Some(p) => return line_of(text, start + p),
            None => return line,
        }
    }
    quoted
        .iter()
        .filter_map(|q| text.find(q.as_str()))
        .min()
        .map_or(0, |p| line_of(text, p))
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
            "us_itin",
            "password",
            "credit_card",
            "aba_routing",
            "bank_account",
            "iban",
            "drivers_license",
            "passport",
            "medicare_mbi",
            "npi",
            "dea_number",
            "medical_record",
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

    /// The error of `text` with `from` replaced by `to` (the replacement must happen).
    fn refused(from: &str, to: &str) -> PolicyError {
        let text = DEFAULT_POLICY.replacen(from, to, 1);
        assert_ne!(text, DEFAULT_POLICY, "{from:?} not in the default policy");
        Policy::parse(&text, "p.toml", &kinds()).expect_err(to)
    }

    fn line_with(text: &str, needle: &str) -> usize {
        text.lines()
            .position(|l| !l.trim_start().starts_with('#') && l.contains(needle))
            .map_or(0, |i| i + 1)
    }

    #[test]
    fn bad_encrypted_channel_header_is_refused_with_its_line() {
        for bad in [
            "\"\"",
            "\"X-Require:TLS\"",
            "\"X Require TLS\"",
            "\"X-Require-TLS \"",
            "\"X-Req\\u0007TLS\"",
            "\"X-Réquire-TLS\"",
            "\"Subject\"",
            "\"content-type\"",
        ] {
            let text = DEFAULT_POLICY.replace(
                "header = \"X-Maildlp-Require-TLS\"",
                &format!("header = {bad}"),
            );
            let e = Policy::parse(&text, "p.toml", &kinds()).expect_err(bad);
            assert_eq!(e.line, line_with(&text, "header = "), "{bad}: {e}");
            assert!(e.to_string().starts_with("p.toml:"), "{e}");
            assert!(e.message.contains("encrypted_channel.header"), "{bad}: {e}");
            assert!(
                e.message.contains("X-Maildlp-Require-TLS"),
                "says what is allowed: {e}"
            );
        }
        for good in ["X-City-TLS", "X_TLS!", "x-maildlp-require-tls"] {
            let text = DEFAULT_POLICY.replace(
                "header = \"X-Maildlp-Require-TLS\"",
                &format!("header = \"{good}\""),
            );
            Policy::parse(&text, "p.toml", &kinds()).expect(good);
        }
    }

    #[test]
    fn single_label_and_malformed_domains_are_refused() {
        for (from, to, needle) in [
            ("domains = []", "domains = [\"test\"]", "domains = "),
            (
                "domains = []",
                "domains = [\"city.test\", \"com.\"]",
                "domains = ",
            ),
            ("domains = []", "domains = [\"*.city.test\"]", "domains = "),
            ("domains = []", "domains = [\"city..test\"]", "domains = "),
            (
                "domains = []",
                "domains = [\"city test.example\"]",
                "domains = ",
            ),
            ("\"gmail.com\", ", "\"gmail\", ", "\"gmail\""),
            ("\"tutanota.com\",", "\"tutanota.com\", \"org\",", "\"org\""),
        ] {
            let text = DEFAULT_POLICY.replacen(from, to, 1);
            let e = refused(from, to);
            assert_eq!(e.line, line_with(&text, needle), "{to}: {e}");
            assert!(e.message.contains("domains"), "{e}");
        }
        let e = refused("domains = []", "domains = [\"test\"]");
        assert!(e.message.contains("single label"), "{e}");
        assert!(e.message.contains("two labels"), "{e}");
        // A trailing dot and sub-domains are fine.
        let text = DEFAULT_POLICY.replace(
            "domains = []",
            "domains = [\"city.test.\", \"Police.City.Test\"]",
        );
        Policy::parse(&text, "p.toml", &kinds()).expect("FQDN with a dot");
    }

    #[test]
    fn notices_and_the_security_officer_are_checked() {
        for (from, to, needle) in [
            (
                "from = \"maildlp@localhost\"",
                "from = \"maildlp\"",
                "from = ",
            ),
            (
                "from = \"maildlp@localhost\"",
                "from = \"maildlp@\"",
                "from = ",
            ),
            ("smtp_host = \"127.0.0.1\"", "smtp_host = \"\"", "smtp_host"),
            (
                "smtp_host = \"127.0.0.1\"",
                "smtp_host = \"smtp://relay\"",
                "smtp_host",
            ),
            ("smtp_port = 10026", "smtp_port = 0", "smtp_port"),
            ("digest_hour = 7", "digest_hour = 24", "digest_hour = "),
            (
                "security_officer = \"\"",
                "security_officer = \"iso\"",
                "security_officer = ",
            ),
            (
                "security_officer = \"\"",
                "security_officer = \"iso@city.test, ciso@city.test\"",
                "security_officer = ",
            ),
            (
                "templates = \"\"",
                "templates = \"/nonexistent/maildlp-templates\"",
                "templates = ",
            ),
        ] {
            let text = DEFAULT_POLICY.replacen(from, to, 1);
            let e = refused(from, to);
            assert_eq!(e.line, line_with(&text, needle), "{to}: {e}");
        }
        for ok in [
            "security_officer = \"iso@city.test\"",
            "security_officer = \"Security Office <iso@city.test>\"",
        ] {
            let text = DEFAULT_POLICY.replace("security_officer = \"\"", ok);
            Policy::parse(&text, "p.toml", &kinds()).expect(ok);
        }
    }

    #[test]
    fn broken_notice_template_fails_policy_check() {
        let dir = std::env::temp_dir().join(format!("maildlp-tpl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("incident.txt"), "Subject: x\n\n{{ unclosed").expect("write");
        let shown = dir.display().to_string();
        let text = DEFAULT_POLICY.replace("templates = \"\"", &format!("templates = {shown:?}"));
        let e = Policy::parse(&text, "p.toml", &kinds()).expect_err("broken template");
        assert_eq!(e.line, line_with(&text, "templates = "), "{e}");
        assert!(e.message.contains("incident"), "{e}");
        std::fs::write(
            dir.join("incident.txt"),
            "Subject: incident\n\nA message was held.\n",
        )
        .expect("write");
        Policy::parse(&text, "p.toml", &kinds()).expect("a good template");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn addresses_with_a_tag_or_not_an_address_are_refused() {
        let list = |address: &str, authorised: &str| {
            DEFAULT_POLICY.replace(
                "[notices]",
                &format!(
                    "[[organisation.restricted_list]]\naddress = {address:?}\nauthorised = [{authorised:?}]\n\n[notices]"
                ),
            )
        };
        for (address, authorised, why) in [
            ("all-employees", "cm@city.test", "not an e-mail address"),
            (
                "all-employees+x@city.test",
                "cm@city.test",
                "write all-employees@city.test",
            ),
            ("*@city.test", "cm@city.test", "no *"),
            ("all@city.test", "cm+lists@city.test", "write cm@city.test"),
            ("all@city.test", "comms.city.test", "glob"),
        ] {
            let text = list(address, authorised);
            let e = Policy::parse(&text, "p.toml", &kinds()).expect_err(address);
            assert!(e.message.contains(why), "{address} {authorised}: {e}");
            assert!(e.line > 0, "{e}");
        }
        let text = format!(
            "{DEFAULT_POLICY}\n[[exception]]\nreference = \"X-1\"\napprover = \"CTO\"\nrule = \"*\"\nsender = \"pay+roll@city.test\"\nexpires = 2030-01-01\n"
        );
        let any = text.replace("pay+roll@city.test", "*");
        Policy::parse(&any, "p.toml", &kinds()).expect("\"*\" is any sender");
        let e = Policy::parse(&text, "p.toml", &kinds()).expect_err("tagged exception sender");
        assert!(
            e.message.contains("X-1") && e.message.contains("+tag"),
            "{e}"
        );
        assert_eq!(e.line, line_with(&text, "pay+roll"), "{e}");
    }
}

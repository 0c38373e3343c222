//! The City's e-mail rules applied to a scanned message: [`evaluate`] turns a
//! [`ScanReport`] and the envelope into a [`Verdict`]. Pure: no I/O, so the CLI, replay and the
//! milter give the same verdict for the same message.

pub mod config;

pub use config::{Action, Policy, PolicyError};

use crate::model::Confidence;
use crate::scan::{ScanReport, SharedLink};
use config::{Exception, Threshold};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Who sends the message to whom. From the SMTP envelope when there is one (the milter,
/// `--from`/`--rcpt`), else from the headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub sender: Option<String>,
    pub recipients: Vec<String>,
}

impl Envelope {
    /// The envelope a message's headers imply: From, and To + Cc + Bcc.
    pub fn from_headers(report: &ScanReport) -> Envelope {
        let info = &report.info;
        Envelope {
            sender: info.from.clone(),
            recipients: info
                .to
                .iter()
                .chain(&info.cc)
                .chain(&info.bcc)
                .cloned()
                .collect(),
        }
    }
}

/// One kind behind a rule: how much, how sure, and where (never the values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindHit {
    pub kind: String,
    pub confidence: Confidence,
    pub count: usize,
    #[serde(rename = "where")]
    pub locations: Vec<String>,
}

/// A rule that fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleHit {
    pub rule: String,
    pub action: Action,
    /// For the sender: what is wrong and what to do. Never holds a sensitive value.
    pub reason: String,
    /// In monitor mode: reported, not enforced.
    pub monitor: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<KindHit>,
}

/// An exception that waived (part of) a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionUse {
    pub reference: String,
    pub approver: String,
    pub rule: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
}

/// What the policy decides for a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// What happens: the strongest enforced action.
    pub action: Action,
    /// In monitor mode, what would have happened (when it differs from `action`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub would_action: Option<Action>,
    pub rules: Vec<RuleHit>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions_used: Vec<ExceptionUse>,
    /// Delivery must use TLS (`encrypted_channel`).
    pub require_tls: bool,
    /// The SMTP reply for a rejection (`550 5.7.1 ...`), ready to send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// Headers the MTA adds when the message goes on (tag, require-TLS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

impl Verdict {
    /// Names of the rules that fired (enforced or monitored).
    pub fn rule_names(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.rule.as_str()).collect()
    }
}

/// Today's date (UTC) as (year, month, day), for exception expiry.
pub fn today() -> (u16, u8, u8) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    civil_from_days((secs / 86_400) as i64)
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (u16, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = if m <= 2 { y + 1 } else { y };
    (y as u16, m, d)
}

/// Case-insensitive match with `*` for any run of characters. Hand-written: one wildcard
/// over e-mail addresses does not need a glob crate.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// An address as the policy compares it, so that the forms of one mailbox are one string:
/// blanks and angle brackets trimmed, a source route (`@relay:`) dropped, lower case, the
/// quotes of a quoted local part removed (`"all-employees"@city.test`), a `+tag` subaddress
/// dropped (`all-employees+x@city.test`) and the trailing dot of a domain dropped
/// (`all-employees@city.test.`). Globs of the policy go through the same steps (a `*` is kept).
pub fn normalise_address(addr: &str) -> String {
    let a = addr
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    // RFC 5321 4.1.2: a source route is to be ignored.
    let a = match a.strip_prefix('@').and_then(|r| r.split_once(':')) {
        Some((_, rest)) => rest,
        None => a,
    };
    let Some((local, domain)) = a.rsplit_once('@') else {
        return normalise_domain(a);
    };
    let local = unquote(local.trim());
    let local = match local.split_once('+') {
        Some((mailbox, _)) if !mailbox.is_empty() => mailbox,
        _ => local.as_str(),
    };
    format!("{}@{}", local.to_lowercase(), normalise_domain(domain))
}

/// A domain as the policy compares it: lower case, no blanks, no trailing dot.
pub fn normalise_domain(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_lowercase()
}

/// The local part without the quotes of a quoted string (and its backslash escapes).
fn unquote(local: &str) -> String {
    let Some(inner) = local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) else {
        return local.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether a policy glob (an address or `*@domain` pattern) matches an address; both are
/// normalised first.
fn address_match(glob: &str, addr: &str) -> bool {
    glob_match(&normalise_address(glob), &normalise_address(addr))
}

fn domain_of(addr: &str) -> &str {
    addr.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

fn in_domains(addr: &str, domains: &[String]) -> bool {
    let d = normalise_domain(domain_of(addr));
    domains.iter().any(|x| {
        let x = normalise_domain(x);
        !x.is_empty() && (d == x || d.ends_with(&format!(".{x}")))
    })
}

/// Fill `{name}` placeholders of a reason template.
fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// `us_ssn ×2 in attachment:roster.csv; credit_card ×1 in body`
fn describe(hits: &[KindHit]) -> String {
    hits.iter()
        .map(|h| {
            let places: Vec<String> = h.locations.iter().map(|l| hide_digits(l)).collect();
            format!("{} x{} in {}", h.kind, h.count, places.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A location with long digit runs starred: a file named after a number must not carry the
/// number into a reply or a notice.
fn hide_digits(location: &str) -> String {
    let mut out = String::with_capacity(location.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() > 4 {
            out.extend(std::iter::repeat_n('*', run.len()));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in location.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The kinds of the report that reach their threshold, each with the action it asks for.
fn kinds_over(
    report: &ScanReport,
    threshold: impl Fn(&str) -> (Threshold, config::Action),
) -> Vec<(KindHit, Action)> {
    let mut by_kind: BTreeMap<&str, KindHit> = BTreeMap::new();
    for f in &report.findings {
        let (th, _) = threshold(&f.kind);
        if f.confidence < th.confidence {
            continue;
        }
        let e = by_kind.entry(&f.kind).or_insert_with(|| KindHit {
            kind: f.kind.clone(),
            confidence: f.confidence,
            count: 0,
            locations: Vec::new(),
        });
        e.count += f.count;
        e.confidence = e.confidence.max(f.confidence);
        if !e.locations.contains(&f.location) {
            e.locations.push(f.location.clone());
        }
    }
    by_kind
        .into_values()
        .filter_map(|hit| {
            let (th, action) = threshold(&hit.kind);
            (hit.count >= th.count).then_some((hit, th.action.unwrap_or(action)))
        })
        .collect()
}

/// The points of a content rule for one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentScore {
    pub points: i64,
    /// Each phrase that scored and its points, highest first.
    pub phrases: Vec<(String, i64)>,
}

impl ContentScore {
    /// `chain_forward_demand 6, chain_luck 4`
    pub fn describe(&self) -> String {
        self.phrases
            .iter()
            .map(|(n, p)| format!("{n} {p}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The points of content rule `rule` (`chain_letter`, `mass_solicitation`) for a message:
/// each phrase counts once per message, with its highest points in any one place (a text part
/// and its HTML alternative are not counted twice).
pub fn content_score(report: &ScanReport, rule: &str) -> ContentScore {
    let mut best: BTreeMap<&str, i64> = BTreeMap::new();
    for s in report.signals.iter().filter(|s| s.rule == rule) {
        let pts = i64::from(s.weight) * s.count as i64;
        best.entry(&s.name)
            .and_modify(|p| {
                // The strongest evidence of the phrase, whichever its sign.
                if pts.abs() > p.abs() {
                    *p = pts;
                }
            })
            .or_insert(pts);
    }
    let mut phrases: Vec<(String, i64)> =
        best.into_iter().map(|(n, p)| (n.to_string(), p)).collect();
    phrases.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ContentScore {
        points: phrases.iter().map(|(_, p)| p).sum(),
        phrases,
    }
}

/// Is `link` inside the approved tenant `entry` (a host, sub-domains included, optionally
/// followed by a path prefix)?
fn approved_link(entry: &str, link: &SharedLink) -> bool {
    let entry = entry.trim();
    let (host, prefix) = match entry.find('/') {
        Some(i) => (&entry[..i], &entry[i..]),
        None => (entry, ""),
    };
    let host = normalise_domain(host);
    let on_host =
        !host.is_empty() && (link.host == host || link.host.ends_with(&format!(".{host}")));
    on_host
        && link
            .path
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// `Dropbox (www.dropbox.com in body), WeTransfer (we.tl in attachment:link.url)`: services,
/// hosts and places, never the link's path (whoever holds a sharing link can open it).
fn describe_links(links: &[&SharedLink]) -> String {
    let mut by: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    for l in links {
        let places = by.entry((&l.display, &l.host)).or_default();
        let place = hide_digits(&l.location);
        if !places.contains(&place) {
            places.push(place);
        }
    }
    by.into_iter()
        .map(|((display, host), places)| format!("{display} ({host} in {})", places.join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

struct Ctx<'a> {
    policy: &'a Policy,
    sender: String,
    recipients: Vec<String>,
    today: (u16, u8, u8),
    used: Vec<ExceptionUse>,
}

impl Ctx<'_> {
    /// The exceptions that apply to `rule` for this message (valid today, sender and every
    /// recipient in scope).
    fn exceptions(&self, rule: &str) -> Vec<&Exception> {
        self.policy
            .exceptions
            .iter()
            .filter(|e| e.rule == "*" || e.rule == rule)
            .filter(|e| config::exception_date(e).is_some_and(|d| d >= self.today))
            .filter(|e| {
                e.sender
                    .as_deref()
                    .is_none_or(|g| address_match(g, &self.sender))
            })
            .filter(|e| {
                e.recipient.as_deref().is_none_or(|g| {
                    !self.recipients.is_empty()
                        && self.recipients.iter().all(|r| address_match(g, r))
                })
            })
            .collect()
    }

    /// Whether an exception waives `rule` as a whole (one without a kind list); records the use.
    fn waived(&mut self, rule: &str) -> bool {
        let found = self
            .exceptions(rule)
            .into_iter()
            .find(|e| e.kinds.is_empty())
            .map(|e| ExceptionUse {
                reference: e.reference.clone(),
                approver: e.approver.clone(),
                rule: rule.to_string(),
                kinds: Vec::new(),
            });
        match found {
            Some(u) => {
                self.used.push(u);
                true
            }
            None => false,
        }
    }

    /// Drop the kinds an exception covers for `rule`, recording each use.
    fn waive_kinds(&mut self, rule: &str, hits: Vec<(KindHit, Action)>) -> Vec<(KindHit, Action)> {
        let exceptions: Vec<Exception> = self.exceptions(rule).into_iter().cloned().collect();
        let mut kept = Vec::new();
        for (hit, action) in hits {
            let by = exceptions
                .iter()
                .find(|e| e.kinds.is_empty() || e.kinds.contains(&hit.kind));
            match by {
                Some(e) => {
                    if let Some(u) = self
                        .used
                        .iter_mut()
                        .find(|u| u.reference == e.reference && u.rule == rule)
                    {
                        u.kinds.push(hit.kind.clone());
                    } else {
                        self.used.push(ExceptionUse {
                            reference: e.reference.clone(),
                            approver: e.approver.clone(),
                            rule: rule.to_string(),
                            kinds: vec![hit.kind.clone()],
                        });
                    }
                }
                None => kept.push((hit, action)),
            }
        }
        kept
    }
}

/// Apply `policy` to a scanned message.
pub fn evaluate(policy: &Policy, report: &ScanReport, envelope: &Envelope) -> Verdict {
    evaluate_on(policy, report, envelope, today())
}

/// [`evaluate`] on a given day (tests, replay of old mail).
pub fn evaluate_on(
    policy: &Policy,
    report: &ScanReport,
    envelope: &Envelope,
    today: (u16, u8, u8),
) -> Verdict {
    let rules = &policy.rules;
    let org = &policy.organisation;
    // Every address is compared in one form (see `normalise_address`): a `+tag`, quotes or a
    // trailing dot must not make a restricted list, an internal domain or an exception miss.
    let sender = normalise_address(envelope.sender.as_deref().unwrap_or(""));
    let recipients: Vec<String> = envelope
        .recipients
        .iter()
        .map(|r| normalise_address(r))
        .filter(|r| !r.is_empty())
        .collect();
    // No known recipient counts as leaving the City: the stricter reading.
    let outbound = recipients.is_empty() || recipients.iter().any(|r| !in_domains(r, &org.domains));
    let mut cx = Ctx {
        policy,
        sender: sender.clone(),
        recipients: recipients.clone(),
        today,
        used: Vec::new(),
    };
    let mut hits: Vec<RuleHit> = Vec::new();

    // sensitive_info, per direction.
    let dir = if outbound {
        &rules.sensitive_info.outbound
    } else {
        &rules.sensitive_info.internal
    };
    let sensitive = kinds_over(report, |k| (dir.for_kind(k).clone(), dir.action));
    // What makes a file-sharing link worse: sensitive kinds the direction acts on.
    let carried: Vec<KindHit> = sensitive
        .iter()
        .filter(|(_, a)| *a > Action::Accept)
        .map(|(h, _)| h.clone())
        .collect();
    // What leaves the City (judged on the outbound thresholds, as `sensitive` then is) decides
    // the personal-account and TLS rules.
    let leaving = if outbound {
        sensitive.clone()
    } else {
        Vec::new()
    };
    if rules.sensitive_info.enabled && !sensitive.is_empty() {
        let kept = cx.waive_kinds("sensitive_info", sensitive);
        let firing: Vec<(KindHit, Action)> = kept
            .into_iter()
            .filter(|(_, a)| *a > Action::Accept)
            .collect();
        if let Some(action) = firing.iter().map(|(_, a)| *a).max() {
            let kinds: Vec<KindHit> = firing.into_iter().map(|(h, _)| h).collect();
            hits.push(RuleHit {
                rule: "sensitive_info".into(),
                action,
                reason: fill(
                    &rules.sensitive_info.reason,
                    &[("details", describe(&kinds))],
                ),
                monitor: rules.sensitive_info.monitor,
                findings: kinds,
            });
        }
    }

    // bcc_mass_mailing: only To and Cc are visible; Bcc never counts.
    let r = &rules.bcc_mass_mailing;
    let visible = report.info.to.len() + report.info.cc.len();
    if r.enabled && visible > r.max_visible && !cx.waived("bcc_mass_mailing") {
        hits.push(RuleHit {
            rule: "bcc_mass_mailing".into(),
            action: r.action,
            reason: fill(
                &r.reason,
                &[
                    ("count", visible.to_string()),
                    ("max", r.max_visible.to_string()),
                ],
            ),
            monitor: r.monitor,
            findings: Vec::new(),
        });
    }

    // restricted_distribution: any recipient (envelope or header) that is a restricted list.
    let r = &rules.restricted_distribution;
    if r.enabled {
        let all_rcpts: Vec<String> = recipients
            .iter()
            .cloned()
            .chain(
                report
                    .info
                    .to
                    .iter()
                    .chain(&report.info.cc)
                    .chain(&report.info.bcc)
                    .map(|a| normalise_address(a)),
            )
            .collect();
        let header_from = normalise_address(report.info.from.as_deref().unwrap_or(""));
        for list in &org.restricted_lists {
            let addr = normalise_address(&list.address);
            if !all_rcpts.contains(&addr) {
                continue;
            }
            // Both the envelope sender and the From header must be authorised.
            let authorised = |who: &str| {
                !who.is_empty() && list.authorised.iter().any(|g| address_match(g, who))
            };
            let ok = authorised(&sender) && (header_from.is_empty() || authorised(&header_from));
            if !ok && !cx.waived("restricted_distribution") {
                hits.push(RuleHit {
                    rule: "restricted_distribution".into(),
                    action: r.action,
                    reason: fill(&r.reason, &[("list", list.address.clone())]),
                    monitor: r.monitor,
                    findings: Vec::new(),
                });
                break;
            }
        }
    }

    // password_with_encrypted_attachment: an encrypted part and a disclosed password.
    let r = &rules.password_with_encrypted_attachment;
    let password_hits: Vec<KindHit> = report
        .findings
        .iter()
        .filter(|f| {
            matches!(f.kind.as_str(), "password" | "credential_list")
                && f.confidence >= Confidence::Medium
        })
        .map(|f| KindHit {
            kind: f.kind.clone(),
            confidence: f.confidence,
            count: f.count,
            locations: vec![f.location.clone()],
        })
        .collect();
    if r.enabled
        && !report.encrypted.is_empty()
        && !password_hits.is_empty()
        && !cx.waived("password_with_encrypted_attachment")
    {
        hits.push(RuleHit {
            rule: "password_with_encrypted_attachment".into(),
            action: r.action,
            reason: r.reason.clone(),
            monitor: r.monitor,
            findings: password_hits,
        });
    }

    // personal_account: sensitive information to a personal / free-mail domain.
    let r = &rules.personal_account;
    let personal: Vec<String> = recipients
        .iter()
        .filter(|rc| in_domains(rc, &org.personal_domains))
        .map(|rc| domain_of(rc).to_string())
        .collect();
    if r.enabled && !personal.is_empty() && !leaving.is_empty() {
        let kept = cx.waive_kinds("personal_account", leaving.clone());
        if !kept.is_empty() {
            let kinds: Vec<KindHit> = kept.into_iter().map(|(h, _)| h).collect();
            let mut domains = personal;
            domains.sort();
            domains.dedup();
            hits.push(RuleHit {
                rule: "personal_account".into(),
                action: r.action,
                reason: fill(
                    &r.reason,
                    &[
                        ("details", describe(&kinds)),
                        ("recipients", domains.join(", ")),
                    ],
                ),
                monitor: r.monitor,
                findings: kinds,
            });
        }
    }

    // encrypted_channel: sensitive information that leaves the City goes over TLS.
    let r = &rules.encrypted_channel;
    let mut require_tls = false;
    if r.enabled && !leaving.is_empty() {
        let kept = cx.waive_kinds("encrypted_channel", leaving.clone());
        if !kept.is_empty() {
            require_tls = !r.monitor && !policy.monitor;
            hits.push(RuleHit {
                rule: "encrypted_channel".into(),
                action: r.action,
                reason: r.reason.clone(),
                monitor: r.monitor,
                findings: kept.into_iter().map(|(h, _)| h).collect(),
            });
        }
    }

    // chain_letter, mass_solicitation: weighted phrases, scored per message.
    for (name, r) in [
        ("chain_letter", &rules.chain_letter),
        ("mass_solicitation", &rules.mass_solicitation),
    ] {
        if !r.enabled {
            continue;
        }
        let action = if outbound {
            r.outbound.action
        } else {
            r.internal.action
        };
        let score = content_score(report, name);
        if action > Action::Accept && score.points >= r.threshold && !cx.waived(name) {
            hits.push(RuleHit {
                rule: name.into(),
                action,
                reason: fill(
                    &r.reason,
                    &[
                        ("score", score.points.to_string()),
                        ("threshold", r.threshold.to_string()),
                        ("phrases", score.describe()),
                    ],
                ),
                monitor: r.monitor,
                findings: Vec::new(),
            });
        }
    }

    // unapproved_file_share: links to file-sharing services outside the approved tenants.
    let r = &rules.unapproved_file_share;
    if r.enabled {
        let links: Vec<&SharedLink> = report
            .links
            .iter()
            .filter(|l| !r.approved.iter().any(|a| approved_link(a, l)))
            .collect();
        if !links.is_empty() && !cx.waived("unapproved_file_share") {
            let acts = if outbound { &r.outbound } else { &r.internal };
            let action = if carried.is_empty() {
                acts.action
            } else {
                acts.with_sensitive.max(acts.action)
            };
            if action > Action::Accept {
                let approved = if r.approved.is_empty() {
                    "the City's approved file service".to_string()
                } else {
                    r.approved.join(" or ")
                };
                hits.push(RuleHit {
                    rule: "unapproved_file_share".into(),
                    action,
                    reason: fill(
                        &r.reason,
                        &[("services", describe_links(&links)), ("approved", approved)],
                    ),
                    monitor: r.monitor,
                    findings: carried.clone(),
                });
            }
        }
    }

    // unscannable: limits and corrupt data (not images, which are reported but expected).
    let r = &rules.unscannable;
    let unscanned: Vec<String> = report
        .unscannable
        .iter()
        .filter(|u| !u.reason.contains("is not scanned (no OCR"))
        .map(|u| format!("{}: {}", u.location, u.reason))
        .collect();
    if r.enabled && !unscanned.is_empty() && !cx.waived("unscannable") {
        // A limit of the whole message left the rest of it unread: the stronger setting.
        let whole_message = report
            .unscannable
            .iter()
            .any(|u| crate::decode::is_message_limit(&u.reason));
        hits.push(RuleHit {
            rule: "unscannable".into(),
            action: if whole_message {
                r.action.max(r.limit_action)
            } else {
                r.action
            },
            reason: fill(&r.reason, &[("details", unscanned.join("; "))]),
            monitor: r.monitor,
            findings: Vec::new(),
        });
    }

    // Global monitor mode turns every rule into a report.
    if policy.monitor {
        for h in &mut hits {
            h.monitor = true;
        }
    }
    let enforced = hits
        .iter()
        .filter(|h| !h.monitor)
        .map(|h| h.action)
        .max()
        .unwrap_or(Action::Accept);
    let would = hits
        .iter()
        .map(|h| h.action)
        .max()
        .unwrap_or(Action::Accept);
    let reply = (enforced == Action::Reject).then(|| {
        let reasons: Vec<&str> = hits
            .iter()
            .filter(|h| !h.monitor && h.action == Action::Reject)
            .map(|h| h.reason.as_str())
            .collect();
        smtp_reply(&reasons.join(" "))
    });
    let mut headers = Vec::new();
    if enforced >= Action::Tag {
        let names: Vec<&str> = hits
            .iter()
            .filter(|h| !h.monitor)
            .map(|h| h.rule.as_str())
            .collect();
        headers.push((
            "X-Maildlp-Verdict".to_string(),
            format!("{enforced}; rules={}", names.join(",")),
        ));
    }
    if require_tls {
        headers.push((rules.encrypted_channel.header.clone(), "yes".to_string()));
    }
    Verdict {
        action: enforced,
        would_action: (would != enforced).then_some(would),
        rules: hits,
        exceptions_used: cx.used,
        require_tls,
        reply,
        headers,
    }
}

/// `550 5.7.1 text` on one line, printable ASCII only.
fn smtp_reply(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                ' '
            }
        })
        .collect();
    format!("550 5.7.1 {}", clean.trim())
}

#[cfg(test)]
mod tests;

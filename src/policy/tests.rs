//! Rule evaluation on hand-built scan reports.

use super::*;
use crate::decode::MessageInfo;
use crate::model::{EncryptedPart, Finding, Unscannable};

const TODAY: (u16, u8, u8) = (2026, 11, 22);

fn policy(extra: &str) -> Policy {
    let text = config::DEFAULT_POLICY.replace("domains = []", "domains = [\"city.test\"]");
    Policy::parse(&format!("{text}\n{extra}"), "test", &[]).expect("policy parses")
}

fn finding(kind: &str, confidence: Confidence, location: &str) -> Finding {
    Finding {
        kind: kind.into(),
        confidence,
        count: 1,
        location: location.into(),
        masked: vec!["***-**-4817".into()],
    }
}

fn report(to: &[&str], cc: &[&str], bcc: &[&str], findings: Vec<Finding>) -> ScanReport {
    ScanReport {
        info: MessageInfo {
            message_id: None,
            from: Some("pat@city.test".into()),
            to: to.iter().map(|s| s.to_string()).collect(),
            cc: cc.iter().map(|s| s.to_string()).collect(),
            bcc: bcc.iter().map(|s| s.to_string()).collect(),
            subject: None,
            parsed: true,
        },
        findings,
        ..ScanReport::default()
    }
}

fn judge(p: &Policy, r: &ScanReport) -> Verdict {
    evaluate_on(p, r, &Envelope::from_headers(r), TODAY)
}

fn as_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn addrs(n: usize, domain: &str) -> Vec<String> {
    (0..n).map(|i| format!("user{i}@{domain}")).collect()
}

#[test]
fn clean_mail_is_accepted() {
    let v = judge(&policy(""), &report(&["sam@example.com"], &[], &[], vec![]));
    assert_eq!(v.action, Action::Accept);
    assert!(v.rules.is_empty());
    assert!(v.reply.is_none());
}

#[test]
fn ssn_outbound_is_quarantined_and_requires_tls_internal_is_tagged() {
    let p = policy("");
    let f = vec![finding("us_ssn", Confidence::High, "body")];
    let v = judge(&p, &report(&["sam@example.com"], &[], &[], f.clone()));
    assert_eq!(v.action, Action::Quarantine);
    assert_eq!(v.rule_names(), vec!["sensitive_info", "encrypted_channel"]);
    assert!(v.require_tls);
    assert!(
        v.headers
            .iter()
            .any(|(h, v)| h == "X-Maildlp-Require-TLS" && v == "yes")
    );

    let v = judge(&p, &report(&["hr@city.test"], &[], &[], f));
    assert_eq!(v.action, Action::Tag);
    assert_eq!(v.rule_names(), vec!["sensitive_info"]);
    assert!(!v.require_tls);
}

#[test]
fn thresholds_by_confidence_and_count() {
    let p = policy("");
    // Internal mail needs high confidence.
    let v = judge(
        &p,
        &report(
            &["hr@city.test"],
            &[],
            &[],
            vec![finding("us_ssn", Confidence::Medium, "body")],
        ),
    );
    assert_eq!(v.action, Action::Accept);
    // Low confidence never fires by default.
    let v = judge(
        &p,
        &report(
            &["x@example.com"],
            &[],
            &[],
            vec![finding("us_ssn", Confidence::Low, "body")],
        ),
    );
    assert_eq!(v.action, Action::Accept);
    // A count threshold of 3: two values do not fire, three do.
    let p = policy("").clone();
    let mut p3 = p.clone();
    p3.rules.sensitive_info.outbound.kinds.insert(
        "us_ssn".into(),
        config::Threshold {
            confidence: Confidence::Medium,
            count: 3,
            action: None,
        },
    );
    let mut f = finding("us_ssn", Confidence::High, "body");
    f.count = 2;
    let v = judge(&p3, &report(&["x@example.com"], &[], &[], vec![f.clone()]));
    assert_eq!(v.action, Action::Accept);
    f.count = 3;
    let v = judge(&p3, &report(&["x@example.com"], &[], &[], vec![f]));
    assert_eq!(v.action, Action::Quarantine);
}

#[test]
fn secrets_outbound_are_rejected_with_a_reply_that_holds_no_value() {
    let v = judge(
        &policy(""),
        &report(
            &["x@example.com"],
            &[],
            &[],
            vec![finding(
                "password",
                Confidence::High,
                "attachment:acct-123456789.txt",
            )],
        ),
    );
    assert_eq!(v.action, Action::Reject);
    let reply = v.reply.expect("reply");
    assert!(reply.starts_with("550 5.7.1 "), "{reply}");
    assert!(reply.contains("password"), "{reply}");
    assert!(!reply.contains("123456789"), "{reply}");
    assert!(!reply.contains("4817"), "{reply}");
}

#[test]
fn bcc_mass_mailing_counts_only_visible_recipients() {
    let p = policy("");
    let to25 = addrs(25, "example.com");
    let to26 = addrs(26, "example.com");
    let v = judge(&p, &report(&as_refs(&to25), &[], &[], vec![]));
    assert_eq!(v.action, Action::Accept);
    let v = judge(
        &p,
        &report(&as_refs(&to26)[..20], &as_refs(&to26)[20..], &[], vec![]),
    );
    assert_eq!(v.action, Action::Reject);
    assert!(v.reply.as_deref().unwrap_or("").contains("Bcc"));
    let bcc = addrs(200, "example.com");
    let v = judge(&p, &report(&["pat@city.test"], &[], &as_refs(&bcc), vec![]));
    assert_eq!(v.action, Action::Accept);
}

const LIST: &str = r#"
[[organisation.restricted_list]]
address = "all-employees@city.test"
authorised = ["city-manager@city.test", "*@comms.city.test"]
"#;

#[test]
fn restricted_list_needs_an_authorised_sender() {
    let text = config::DEFAULT_POLICY
        .replace("domains = []", "domains = [\"city.test\"]")
        .replace("[notices]", &format!("{LIST}\n[notices]"));
    let p = Policy::parse(&text, "t", &[]).expect("policy");
    let r = report(&["all-employees@city.test"], &[], &[], vec![]);
    let v = evaluate_on(
        &p,
        &r,
        &Envelope {
            sender: Some("pat@city.test".into()),
            recipients: vec!["all-employees@city.test".into()],
        },
        TODAY,
    );
    assert_eq!(v.action, Action::Reject);
    assert_eq!(v.rule_names(), vec!["restricted_distribution"]);
    let mut r2 = r.clone();
    r2.info.from = Some("press@comms.city.test".into());
    let v = evaluate_on(
        &p,
        &r2,
        &Envelope {
            sender: Some("press@comms.city.test".into()),
            recipients: vec!["all-employees@city.test".into()],
        },
        TODAY,
    );
    assert_eq!(v.action, Action::Accept);
}

#[test]
fn encrypted_attachment_with_password_is_rejected_alone_it_is_fine() {
    let p = policy("");
    let mut r = report(&["hr@city.test"], &[], &[], vec![]);
    r.encrypted.push(EncryptedPart {
        location: "attachment:a.zip/b.xlsx".into(),
        kind: "zip".into(),
    });
    assert_eq!(judge(&p, &r).action, Action::Accept);
    r.findings
        .push(finding("password", Confidence::High, "body"));
    let v = judge(&p, &r);
    assert_eq!(v.action, Action::Reject);
    assert!(
        v.rule_names()
            .contains(&"password_with_encrypted_attachment")
    );
}

#[test]
fn personal_account_fires_on_sensitive_mail_to_free_mail() {
    let v = judge(
        &policy(""),
        &report(
            &["me@gmail.com"],
            &[],
            &[],
            vec![finding("us_ssn", Confidence::High, "body")],
        ),
    );
    assert_eq!(v.action, Action::Reject);
    assert!(v.rule_names().contains(&"personal_account"));
    let v = judge(&policy(""), &report(&["me@gmail.com"], &[], &[], vec![]));
    assert_eq!(v.action, Action::Accept);
}

const EXCEPTIONS: &str = r#"
[[exception]]
reference = "CTO-2026-014"
approver = "Chief Technology Officer"
rule = "sensitive_info"
kinds = ["us_ssn"]
sender = "pat@city.test"
recipient = "*@irs.example"
expires = 2027-06-30

[[exception]]
reference = "CTO-2024-002"
approver = "Chief Technology Officer"
rule = "sensitive_info"
sender = "pat@city.test"
recipient = "*@old.example"
expires = 2025-01-31
"#;

#[test]
fn valid_exception_waives_expired_does_nothing() {
    let p = policy(EXCEPTIONS);
    let f = vec![finding("us_ssn", Confidence::High, "body")];
    let v = judge(&p, &report(&["agent@irs.example"], &[], &[], f.clone()));
    // sensitive_info waived; the TLS requirement still holds.
    assert_eq!(v.rule_names(), vec!["encrypted_channel"]);
    assert_eq!(v.action, Action::Tag);
    assert_eq!(v.exceptions_used.len(), 1);
    assert_eq!(v.exceptions_used[0].reference, "CTO-2026-014");
    assert_eq!(v.exceptions_used[0].kinds, vec!["us_ssn"]);
    // A recipient out of scope in the same message: no exception.
    let v = judge(
        &p,
        &report(&["agent@irs.example", "x@example.com"], &[], &[], f.clone()),
    );
    assert_eq!(v.action, Action::Quarantine);
    assert!(v.exceptions_used.is_empty());
    // Expired.
    let v = judge(&p, &report(&["a@old.example"], &[], &[], f));
    assert_eq!(v.action, Action::Quarantine);
    assert!(v.exceptions_used.is_empty());
}

#[test]
fn monitor_mode_reports_and_accepts() {
    let p = policy("").clone();
    let mut p = p;
    p.monitor = true;
    let v = judge(
        &p,
        &report(
            &["x@example.com"],
            &[],
            &[],
            vec![finding("us_ssn", Confidence::High, "body")],
        ),
    );
    assert_eq!(v.action, Action::Accept);
    assert_eq!(v.would_action, Some(Action::Quarantine));
    assert!(v.rules.iter().all(|h| h.monitor));
    assert!(v.reply.is_none());
    assert!(!v.require_tls);

    // Per rule: only bcc_mass_mailing monitored.
    let mut p = policy("");
    p.rules.bcc_mass_mailing.monitor = true;
    let to = addrs(30, "example.com");
    let refs: Vec<&str> = to.iter().map(String::as_str).collect();
    let v = judge(&p, &report(&refs, &[], &[], vec![]));
    assert_eq!(v.action, Action::Accept);
    assert_eq!(v.would_action, Some(Action::Reject));
}

#[test]
fn unscannable_parts_are_tagged_images_are_not() {
    let p = policy("");
    let mut r = report(&["x@example.com"], &[], &[], vec![]);
    r.unscannable.push(Unscannable {
        location: "attachment:logo.png".into(),
        reason: "image content is not scanned (no OCR or transcription)".into(),
    });
    assert_eq!(judge(&p, &r).action, Action::Accept);
    r.unscannable.push(Unscannable {
        location: "attachment:big.zip".into(),
        reason: "expansion ratio limit reached (possible archive bomb)".into(),
    });
    let v = judge(&p, &r);
    assert_eq!(v.action, Action::Tag);
    assert_eq!(v.rule_names(), vec!["unscannable"]);
}

#[test]
fn glob_and_dates() {
    assert!(glob_match("*@irs.example", "Agent@IRS.example"));
    assert!(!glob_match("*@irs.example", "agent@irs.example.com"));
    assert!(glob_match("a*b*c", "axxbyyc"));
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(20_414), (2025, 11, 22));
    assert_eq!(
        hide_digits("attachment:ssn-123456789.txt"),
        "attachment:ssn-*********.txt"
    );
}

fn list_policy() -> Policy {
    let text = config::DEFAULT_POLICY
        .replace("domains = []", "domains = [\"city.test\"]")
        .replace("[notices]", &format!("{LIST}\n[notices]"));
    Policy::parse(&text, "t", &[]).expect("policy")
}

fn to_list(p: &Policy, sender: &str, rcpt: &str, header_to: &str) -> Verdict {
    let mut r = report(&[header_to], &[], &[], vec![]);
    r.info.from = Some(sender.into());
    evaluate_on(
        p,
        &r,
        &Envelope {
            sender: Some(sender.into()),
            recipients: vec![rcpt.into()],
        },
        TODAY,
    )
}

#[test]
fn addresses_are_normalised() {
    for (given, want) in [
        ("all-employees@city.test", "all-employees@city.test"),
        ("All-Employees@City.TEST", "all-employees@city.test"),
        ("all-employees+tag@city.test", "all-employees@city.test"),
        ("\"all-employees\"@city.test", "all-employees@city.test"),
        ("\"all-employees+x\"@city.test", "all-employees@city.test"),
        ("all-employees@city.test.", "all-employees@city.test"),
        (" <All-Employees+Q@city.test.> ", "all-employees@city.test"),
        (
            "<@relay.example:all-employees@city.test>",
            "all-employees@city.test",
        ),
        ("\"a\\\"b\"@city.test", "a\"b@city.test"),
        ("+only@city.test", "+only@city.test"),
        ("*@Comms.City.Test.", "*@comms.city.test"),
        ("", ""),
    ] {
        assert_eq!(normalise_address(given), want, "{given}");
    }
}

#[test]
fn restricted_list_is_found_in_every_form_of_its_address() {
    let p = list_policy();
    for form in [
        "all-employees+tag@city.test",
        "\"all-employees\"@city.test",
        "all-employees@city.test.",
        "ALL-EMPLOYEES@CITY.TEST",
        "\"All-Employees+x\"@City.Test.",
    ] {
        // In the envelope only (the header names someone else) ...
        let v = to_list(&p, "pat@city.test", form, "hr@city.test");
        assert_eq!(v.action, Action::Reject, "envelope {form}");
        assert_eq!(v.rule_names(), vec!["restricted_distribution"], "{form}");
        // ... and in the headers only.
        let v = to_list(&p, "pat@city.test", "hr@city.test", form);
        assert_eq!(v.action, Action::Reject, "header {form}");
    }
}

#[test]
fn authorised_senders_are_recognised_in_every_form() {
    let p = list_policy();
    for sender in [
        "city-manager@city.test",
        "city-manager+lists@city.test",
        "\"city-manager\"@city.test",
        "City-Manager@City.Test.",
        "press+x@comms.city.test.",
        "\"press\"@COMMS.city.test",
    ] {
        let v = to_list(
            &p,
            sender,
            "all-employees+tag@city.test",
            "all-employees@city.test",
        );
        assert_eq!(v.action, Action::Accept, "{sender}: {:?}", v.rules);
    }
    // Look-alikes stay unauthorised.
    for sender in [
        "city-manager@city.test.evil.example",
        "city-managerx@city.test",
        "press@comms.city.test.example",
    ] {
        let v = to_list(
            &p,
            sender,
            "all-employees@city.test",
            "all-employees@city.test",
        );
        assert_eq!(v.action, Action::Reject, "{sender}");
    }
}

#[test]
fn internal_and_personal_domains_match_every_form() {
    let p = policy("");
    let f = vec![finding("us_ssn", Confidence::High, "body")];
    // Internal: a trailing dot, upper case, a quoted local part, a +tag.
    for rcpt in [
        "hr@city.test.",
        "HR@CITY.TEST",
        "\"hr\"@city.test",
        "hr+x@city.test",
        "hr@Dept.City.Test.",
    ] {
        let v = judge(&p, &report(&[rcpt], &[], &[], f.clone()));
        assert_eq!(v.action, Action::Tag, "{rcpt} is internal: {:?}", v.rules);
    }
    // Personal: the same forms of a free-mail address.
    for rcpt in ["me@gmail.com.", "\"me\"@GMail.com", "me+dlp@gmail.com"] {
        let v = judge(&p, &report(&[rcpt], &[], &[], f.clone()));
        assert_eq!(v.action, Action::Reject, "{rcpt}");
        assert!(v.rule_names().contains(&"personal_account"), "{rcpt}");
        let reason = &v
            .rules
            .iter()
            .find(|h| h.rule == "personal_account")
            .map(|h| h.reason.clone())
            .unwrap_or_default();
        assert!(reason.contains("(gmail.com)"), "{reason}");
    }
}

#[test]
fn exception_globs_match_every_form() {
    let p = policy(EXCEPTIONS);
    let f = vec![finding("us_ssn", Confidence::High, "body")];
    for (sender, rcpt) in [
        ("pat+x@city.test", "agent@irs.example."),
        ("\"pat\"@City.Test.", "\"agent\"@IRS.example"),
        ("PAT@CITY.TEST", "agent+case1@irs.example"),
    ] {
        let mut r = report(&[rcpt], &[], &[], f.clone());
        r.info.from = Some(sender.into());
        let v = evaluate_on(
            &p,
            &r,
            &Envelope {
                sender: Some(sender.into()),
                recipients: vec![rcpt.into()],
            },
            TODAY,
        );
        assert_eq!(
            v.rule_names(),
            vec!["encrypted_channel"],
            "{sender} -> {rcpt}"
        );
        assert_eq!(v.exceptions_used.len(), 1);
    }
}

/// Issue 13, class 8: a limit of the whole message (the decoded-size budget, the time limit)
/// leaves the rest unread, so it is held (`limit_action`), not only tagged like one bad part.
#[test]
fn a_whole_message_limit_is_held_one_bad_part_is_tagged() {
    let p = policy("");
    let mut r = report(&["sam@example.com"], &[], &[], vec![]);
    r.unscannable.push(Unscannable {
        location: "attachment:a.zip".into(),
        reason: "corrupt zip: invalid central directory".into(),
    });
    assert_eq!(judge(&p, &r).action, Action::Tag);
    for reason in [
        crate::decode::Stop::Budget.reason(),
        crate::decode::Stop::Time.reason(),
        "part count limit reached",
    ] {
        let mut r = r.clone();
        r.unscannable.push(Unscannable {
            location: "attachment:b.csv".into(),
            reason: reason.into(),
        });
        let v = judge(&p, &r);
        assert_eq!(v.action, Action::Quarantine, "{reason}");
        assert_eq!(v.rule_names(), vec!["unscannable"]);
    }
}

/// The default with the City's domain and `extra`, as a partial policy merged over it.
fn overlay(extra: &str) -> Policy {
    let text =
        format!("extends = \"default\"\n{extra}\n[organisation]\ndomains = [\"city.test\"]\n");
    Policy::parse(&text, "test", &[]).expect("partial policy parses")
}

fn signal(rule: &str, name: &str, weight: i32, location: &str) -> crate::scan::Signal {
    crate::scan::Signal {
        rule: rule.into(),
        name: name.into(),
        weight,
        count: 1,
        location: location.into(),
    }
}

fn link(host: &str, path: &str) -> crate::scan::SharedLink {
    crate::scan::SharedLink {
        service: "dropbox".into(),
        display: "Dropbox".into(),
        host: host.into(),
        path: path.into(),
        location: "body".into(),
    }
}

#[test]
fn content_rules_fire_at_their_threshold_in_monitor_mode() {
    let p = overlay("");
    let mut r = report(&["sam@example.com"], &[], &[], vec![]);
    r.signals = vec![
        signal("chain_letter", "a", 6, "body"),
        signal("chain_letter", "b", 3, "body"),
        // The HTML alternative of the same text: counted once.
        signal("chain_letter", "a", 6, "html"),
        signal("mass_solicitation", "c", 9, "body"),
    ];
    let v = judge(&p, &r);
    assert!(v.rules.is_empty(), "9 points: under 10: {v:?}");
    assert_eq!(content_score(&r, "chain_letter").points, 9);
    r.signals.push(signal("chain_letter", "d", 1, "subject"));
    let v = judge(&p, &r);
    assert_eq!(v.rule_names(), vec!["chain_letter"]);
    assert!(v.rules[0].monitor, "monitor by default");
    assert_eq!(v.action, Action::Accept);
    assert_eq!(v.would_action, Some(Action::Tag));
    assert!(
        v.rules[0].reason.contains("score 10, threshold 10"),
        "{v:?}"
    );
    assert!(v.rules[0].reason.contains("a 6, b 3, d 1"), "{v:?}");
    // A negative phrase (the City's own campaign) pulls it back under.
    r.signals.push(signal("chain_letter", "city", -4, "body"));
    assert!(judge(&p, &r).rules.is_empty());
    // Enforced, per direction, and waived by an exception.
    let p = overlay(
        "[rules.chain_letter]\nmonitor = false\nthreshold = 5\noutbound = { action = \"quarantine\" }\ninternal = { action = \"tag\" }\nreason = \"chain {score}\"\n",
    );
    assert_eq!(judge(&p, &r).action, Action::Quarantine);
    let inside = ScanReport {
        signals: r.signals.clone(),
        ..report(&["hr@city.test"], &[], &[], vec![])
    };
    assert_eq!(judge(&p, &inside).action, Action::Tag);
    let p = overlay(
        "[[exception]]\nreference = \"CTO-9\"\napprover = \"CTO\"\nrule = \"chain_letter\"\nexpires = 2030-01-01\n",
    );
    let mut r2 = r.clone();
    r2.signals.push(signal("chain_letter", "e", 10, "body"));
    let v = judge(&p, &r2);
    assert!(v.rules.is_empty(), "{v:?}");
    assert_eq!(v.exceptions_used[0].reference, "CTO-9");
}

#[test]
fn file_share_links_outside_the_approved_tenants() {
    let p = overlay(
        "[rules.unapproved_file_share]\napproved = [\"cityofexample.sharepoint.com\", \"drive.google.com/a/cityofexample.org/\"]\nreason = \"{services}; use {approved}\"\n",
    );
    let mut r = report(&["sam@example.com"], &[], &[], vec![]);
    r.links = vec![
        link("cityofexample.sharepoint.com", "/:x:/s/Finance/abc"),
        link("eu.cityofexample.sharepoint.com", "/sites/x"),
        link("drive.google.com", "/a/cityofexample.org/file/d/1"),
    ];
    assert!(judge(&p, &r).rules.is_empty(), "all approved");
    r.links
        .push(link("evilcityofexample.sharepoint.com", "/:x:/s/x"));
    r.links.push(link("drive.google.com", "/file/d/1"));
    let v = judge(&p, &r);
    assert_eq!(v.rule_names(), vec!["unapproved_file_share"]);
    assert_eq!(v.action, Action::Tag);
    let reason = &v.rules[0].reason;
    assert!(
        reason.contains("evilcityofexample.sharepoint.com in body"),
        "{reason}"
    );
    assert!(!reason.contains("/file/d/1"), "no path: {reason}");
    assert!(
        reason
            .contains("use cityofexample.sharepoint.com or drive.google.com/a/cityofexample.org/"),
        "{reason}"
    );
    // With a sensitive kind over its threshold: the stricter action.
    r.findings = vec![finding("us_ssn", Confidence::High, "body")];
    let v = judge(&p, &r);
    let share = v.rules.iter().find(|h| h.rule == "unapproved_file_share");
    assert_eq!(share.map(|h| h.action), Some(Action::Quarantine), "{v:?}");
    assert_eq!(share.map(|h| h.findings.len()), Some(1));
    // Inside the City: the internal actions (tag both ways by default).
    let inside = ScanReport {
        links: r.links.clone(),
        findings: r.findings.clone(),
        ..report(&["hr@city.test"], &[], &[], vec![])
    };
    let v = judge(&p, &inside);
    let share = v.rules.iter().find(|h| h.rule == "unapproved_file_share");
    assert_eq!(share.map(|h| h.action), Some(Action::Tag), "{v:?}");
    // Disabled: nothing.
    let off = overlay("[rules.unapproved_file_share]\nenabled = false\n");
    assert!(
        judge(&off, &r)
            .rules
            .iter()
            .all(|h| h.rule != "unapproved_file_share")
    );
}

#[test]
fn a_partial_policy_keeps_the_default() {
    let p = Policy::parse(
        "extends = \"default\"\n[organisation]\ndomains = [\"city.test\"]\n[rules.mass_solicitation]\nthreshold = 7\n",
        "overlay.toml",
        &[],
    )
    .expect("overlay");
    assert_eq!(p.organisation.domains, vec!["city.test".to_string()]);
    assert_eq!(p.rules.mass_solicitation.threshold, 7);
    assert!(p.rules.mass_solicitation.monitor, "the default's");
    assert_eq!(p.rules.bcc_mass_mailing.max_visible, 25, "the default's");
    assert_eq!(p.rules.chain_letter, config::ContentRule::chain_letter());
    // The built-in defaults of the optional sections are the file's.
    let d = Policy::default_policy().expect("default");
    assert_eq!(d.rules.chain_letter, config::ContentRule::chain_letter());
    assert_eq!(
        d.rules.mass_solicitation,
        config::ContentRule::mass_solicitation()
    );
    assert_eq!(
        d.rules.unapproved_file_share,
        config::FileShareRule::default_rule()
    );
}

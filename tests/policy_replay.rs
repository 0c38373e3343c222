//! The policy through the CLI: replay of the rule fixtures against their expected verdicts,
//! monitor mode, a wrong expectation, policy check/show, and verdicts in `scan`.

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn p(rel: &str) -> String {
    root().join(rel).to_string_lossy().into_owned()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_maildlp"))
        .args(args)
        .output()
        .expect("maildlp runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_rule_fixture_gets_its_expected_verdict() {
    let out = run(&[
        "replay",
        &p("fixtures/policy/mail"),
        "--policy",
        &p("fixtures/policy/policy.toml"),
        "--expect",
        &p("fixtures/policy/expected.toml"),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("all verdicts as expected"), "{text}");
    assert!(text.contains("21 messages"), "{text}");
    assert!(
        text.contains("CTO-2026-014"),
        "exception use is reported: {text}"
    );
}

#[test]
fn monitor_mode_accepts_everything_and_reports_the_rules() {
    let out = run(&[
        "replay",
        &p("fixtures/policy/mail"),
        "--policy",
        &p("fixtures/policy/monitor-policy.toml"),
        "--expect",
        &p("fixtures/policy/expected-monitor.toml"),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("sensitive_info (monitor)"), "{text}");
}

#[test]
fn a_wrong_expectation_is_listed_and_exits_1() {
    let good = std::fs::read_to_string(root().join("fixtures/policy/expected.toml"))
        .expect("expected.toml");
    let bad = good.replacen(
        "file = \"visible_26.eml\"\nnote = \"26 visible recipients (To + Cc)\"\naction = \"reject\"",
        "file = \"visible_26.eml\"\naction = \"accept\"",
        1,
    );
    assert_ne!(good, bad, "the fixture expectation changed shape");
    let path = std::env::temp_dir().join(format!("maildlp-bad-expect-{}.toml", std::process::id()));
    std::fs::write(&path, bad).expect("write");
    let out = run(&[
        "replay",
        &p("fixtures/policy/mail"),
        "--policy",
        &p("fixtures/policy/policy.toml"),
        "--expect",
        path.to_str().unwrap_or_default(),
    ]);
    let _ = std::fs::remove_file(&path);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("1 mismatches"), "{text}");
    assert!(text.contains("visible_26.eml: expected accept"), "{text}");
}

#[test]
fn policy_check_and_show() {
    let out = run(&["policy", "check", &p("fixtures/policy/policy.toml")]);
    assert_eq!(out.status.code(), Some(0));

    let text = std::fs::read_to_string(root().join("fixtures/policy/policy.toml")).expect("policy");
    let broken = text.replace("max_visible = 25", "max_visible = \"many\"");
    let path = std::env::temp_dir().join(format!("maildlp-bad-policy-{}.toml", std::process::id()));
    std::fs::write(&path, &broken).expect("write");
    let out = run(&["policy", "check", path.to_str().unwrap_or_default()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = broken
        .lines()
        .position(|l| l.contains("\"many\""))
        .map(|i| i + 1)
        .unwrap_or(0);
    assert!(err.contains(&format!(":{line}:")), "{err}");

    let out = run(&["policy", "show"]);
    assert!(stdout(&out).contains("[rules.bcc_mass_mailing]"));
    let out = run(&[
        "policy",
        "show",
        "--policy",
        &p("fixtures/policy/policy.toml"),
    ]);
    assert!(stdout(&out).contains("all-employees@city.test"));
}

#[test]
fn scan_adds_the_verdict_and_honours_the_envelope() {
    let mail = p("fixtures/policy/mail/ssn_internal.eml");
    let policy = p("fixtures/policy/policy.toml");
    let out = run(&["scan", "--format", "json", "--policy", &policy, &mail]);
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert_eq!(v["verdict"]["action"], "tag");

    // The same message sent outside the City per its envelope.
    let out = run(&[
        "scan",
        "--format",
        "json",
        "--policy",
        &policy,
        "--from",
        "pat@city.test",
        "--rcpt",
        "x@example.com",
        &mail,
    ]);
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert_eq!(v["verdict"]["action"], "quarantine");
    assert_eq!(v["verdict"]["require_tls"], true);

    // A rejection carries an SMTP reply without the value.
    let out = run(&[
        "scan",
        "--format",
        "json",
        "--policy",
        &policy,
        &p("fixtures/policy/mail/ssn_personal_account.eml"),
    ]);
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    let reply = v["verdict"]["reply"].as_str().unwrap_or("");
    assert!(reply.starts_with("550 5.7.1 "), "{reply}");
    assert!(reply.contains("us_ssn"), "{reply}");
    assert!(!reply.contains("4817"), "{reply}");
}

/// The forms of one address are one address to the policy: a restricted list written with a
/// `+tag`, a quoted local part, a trailing dot or in upper case is still the list, and an
/// authorised sender written so is still authorised (fixtures/policy/addresses/).
#[test]
fn address_forms_reach_the_restricted_list_rule() {
    let out = run(&[
        "replay",
        &p("fixtures/policy/addresses"),
        "--policy",
        &p("fixtures/policy/policy.toml"),
        "--expect",
        &p("fixtures/policy/expected-addresses.toml"),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("all verdicts as expected"), "{text}");
    assert!(text.contains("5 messages"), "{text}");
}

/// `policy check` refuses what would break routing or matching silently, with FILE:LINE.
#[test]
fn policy_check_refuses_bad_header_single_label_domain_and_tagged_list() {
    let text = std::fs::read_to_string(root().join("fixtures/policy/policy.toml")).expect("policy");
    for (i, (from, to, says)) in [
        (
            "header = \"X-Maildlp-Require-TLS\"",
            "header = \"\"",
            "a header name is printable ASCII",
        ),
        (
            "header = \"X-Maildlp-Require-TLS\"",
            "header = \"X-Maildlp-Require-TLS:\"",
            "without a colon",
        ),
        (
            "domains = [\"city.test\"]",
            "domains = [\"test\"]",
            "single label",
        ),
        (
            "address = \"all-employees@city.test\"",
            "address = \"all-employees+x@city.test\"",
            "write all-employees@city.test",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let broken = text.replacen(from, to, 1);
        assert_ne!(broken, text, "{from}");
        let path =
            std::env::temp_dir().join(format!("maildlp-check-{}-{i}.toml", std::process::id()));
        std::fs::write(&path, &broken).expect("write");
        let out = run(&["policy", "check", path.to_str().unwrap_or_default()]);
        let _ = std::fs::remove_file(&path);
        assert_eq!(out.status.code(), Some(2), "{to}");
        let err = String::from_utf8_lossy(&out.stderr);
        let line = broken
            .lines()
            .position(|l| l.contains(to))
            .map(|i| i + 1)
            .unwrap_or(0);
        assert!(
            err.contains(&format!("{}:{line}:", path.display())),
            "{to}: {err}"
        );
        assert!(err.contains(says), "{to}: {err}");
    }
}

/// Write `text` to a temporary file named after `tag`; the caller removes it.
fn temp_file(tag: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("maildlp-{tag}-{}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write temp file");
    path
}

/// Issue 12: chain letters, solicitations and file-sharing links, positive and negative, under
/// a partial policy (`extends = "default"`) with an approved tenant and a written exception,
/// judged as of a date inside the exception.
#[test]
fn content_rule_fixtures_get_their_expected_verdicts() {
    let out = run(&[
        "replay",
        &p("fixtures/policy/content"),
        "--policy",
        &p("fixtures/policy/content-policy.toml"),
        "--date",
        "2026-12-01",
        "--expect",
        &p("fixtures/policy/expected-content.toml"),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("judged as of 2026-12-01"), "{text}");
    assert!(text.contains("17 messages"), "{text}");
    assert!(text.contains("all verdicts as expected"), "{text}");
    assert!(
        text.contains("CTO-2026-031"),
        "exception use reported: {text}"
    );
    // What would have fired, and with which phrases, for the analyst.
    assert!(text.contains("content rule scores (messages):"), "{text}");
    assert!(
        text.contains("chain_letter         threshold 10: 2 at or over"),
        "{text}"
    );
    assert!(text.contains("chain_forward_demand"), "{text}");
    assert!(text.contains("file-sharing links (messages"), "{text}");
}

/// The same stored message judged on two days: inside the exception's validity it is waived,
/// after its expiry the rule applies. A malformed date is refused with what to write.
#[test]
fn replay_date_decides_exception_expiry() {
    let mail = p("fixtures/policy/content/share_exception_vendor.eml");
    let policy = p("fixtures/policy/content-policy.toml");
    let expired = temp_file(
        "expect-expired",
        "[[message]]\nfile = \"share_exception_vendor.eml\"\naction = \"tag\"\nrules = [\"unapproved_file_share\"]\n",
    );
    let out = run(&[
        "replay",
        &mail,
        "--policy",
        &policy,
        "--date",
        "2027-01-15",
        "--expect",
        expired.to_str().unwrap_or_default(),
    ]);
    let _ = std::fs::remove_file(&expired);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("CTO-2026-031"), "expired: not used: {text}");
    // The last valid day still waives it.
    let out = run(&["replay", &mail, "--policy", &policy, "--date", "2026-12-31"]);
    let text = stdout(&out);
    assert!(text.contains("CTO-2026-031"), "{text}");
    assert!(text.contains("accept"), "{text}");
    for bad in ["2026-13-01", "2026-02-30", "31/12/2026", "2026-1-5"] {
        let out = run(&["replay", &mail, "--date", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("YYYY-MM-DD"), "{bad}: {err}");
    }
}

/// `replay --scores`: one line per message that scored, with its phrases and points.
#[test]
fn replay_scores_show_the_phrases_behind_each_score() {
    let out = run(&[
        "replay",
        &p("fixtures/policy/content"),
        "--policy",
        &p("fixtures/policy/content-policy.toml"),
        "--scores",
    ]);
    let text = stdout(&out);
    let line = |file: &str| {
        text.lines()
            .find(|l| l.contains(file))
            .unwrap_or_default()
            .to_string()
    };
    let chain = line("content/chain_letter.eml");
    assert!(
        chain.contains("chain_letter") && chain.contains("FIRES"),
        "{text}"
    );
    assert!(chain.contains("chain_forward_demand 6"), "{chain}");
    let memo = line("charity_drive_memo.eml");
    assert!(memo.contains("mass_solicitation -"), "{memo}");
    assert!(memo.contains("city_sanctioned -"), "{memo}");
    assert!(!memo.contains("FIRES"), "{memo}");
    assert!(
        line("share_public_link.eml").is_empty(),
        "no score: no line"
    );
}

/// With monitor off (after tuning) the content rules act: a chain letter leaving the City is
/// held, a fundraiser among colleagues tagged, the City's own drive still accepted.
#[test]
fn enforced_content_rules_tag_and_hold() {
    let policy = p("fixtures/policy/content-enforce-policy.toml");
    let verdict = |file: &str| -> serde_json::Value {
        let out = run(&[
            "scan",
            "--format",
            "json",
            "--policy",
            &policy,
            &p(&format!("fixtures/policy/content/{file}")),
        ]);
        let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("json");
        v["verdict"].clone()
    };
    let v = verdict("chain_letter.eml");
    assert_eq!(v["action"], "quarantine", "{v}");
    let reason = v["rules"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("score ") && reason.contains("threshold 10"),
        "{reason}"
    );
    let v = verdict("solicitation_fundraiser.eml");
    assert_eq!(v["action"], "tag", "{v}");
    assert_eq!(v["rules"][0]["rule"], "mass_solicitation", "{v}");
    let v = verdict("charity_drive_memo.eml");
    assert_eq!(v["action"], "accept", "{v}");
}

/// The reason names the service and host linked and the approved tenant to use instead, and
/// never the link itself (whoever holds a sharing link can open it).
#[test]
fn file_share_reason_names_the_approved_tenant_not_the_link() {
    let out = run(&[
        "scan",
        "--format",
        "json",
        "--policy",
        &p("fixtures/policy/content-policy.toml"),
        &p("fixtures/policy/content/share_public_link_with_ssn.eml"),
    ]);
    let text = stdout(&out);
    let v: serde_json::Value = serde_json::from_str(text.trim()).expect("json");
    let rule = v["verdict"]["rules"]
        .as_array()
        .and_then(|r| r.iter().find(|h| h["rule"] == "unapproved_file_share"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(rule["action"], "quarantine", "with sensitive kinds: {rule}");
    let reason = rule["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("Dropbox (www.dropbox.com in body)"),
        "{reason}"
    );
    assert!(
        reason.contains("cityofexample.sharepoint.com or cityofexample-my.sharepoint.com"),
        "{reason}"
    );
    assert!(rule["findings"][0]["kind"] == "us_ssn", "{rule}");
    assert_eq!(v["links"][0]["host"], "www.dropbox.com", "{text}");
    assert_eq!(v["links"][0]["service"], "Dropbox", "{text}");
    assert!(
        !text.contains("q8z3k1v0example"),
        "link path leaked: {text}"
    );
    assert!(!text.contains("abc123example"), "link key leaked: {text}");
}

/// A partial policy: only what the City changes, merged over the default; unknown keys and a
/// wrong base are refused with the line in the City's file.
#[test]
fn partial_policy_merges_over_the_default_and_checks_keys() {
    let overlay = p("fixtures/policy/content-policy.toml");
    let out = run(&["policy", "check", &overlay]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = run(&["policy", "show", "--policy", &overlay]);
    let shown = stdout(&out);
    assert!(
        shown.contains("cityofexample-my.sharepoint.com"),
        "the City's value: {shown}"
    );
    assert!(shown.contains("max_visible = 25"), "the default's: {shown}");
    assert!(shown.contains("[rules.chain_letter]"), "{shown}");

    let base = std::fs::read_to_string(&overlay).expect("overlay");
    // (replace, with, the error says, on the line that holds)
    for (i, (from, to, says, at)) in [
        (
            "[rules.unapproved_file_share]\n",
            "[rules.unapproved_file_share]\naproved = [\"x.sharepoint.com\"]\n",
            "aproved",
            "aproved = ",
        ),
        (
            "[notices]\n",
            "[notices]\nsmtp_prot = 25\n",
            "smtp_prot",
            "smtp_prot = ",
        ),
        (
            "extends = \"default\"",
            "extends = \"city\"",
            "the only base is \"default\"",
            "extends = ",
        ),
        (
            "approved = [\"cityofexample.sharepoint.com\"",
            "approved = [\"https://cityofexample.sharepoint.com\"",
            "not an approved tenant",
            "approved = ",
        ),
        (
            "[rules.unapproved_file_share]\n",
            "[rules.chain_letter]\nthreshold = 0\n\n[rules.unapproved_file_share]\n",
            "threshold 0",
            "threshold = 0",
        ),
        (
            "[rules.unapproved_file_share]\n",
            "[rules.chain_letter]\noutbound = { action = \"hold\" }\n\n[rules.unapproved_file_share]\n",
            "hold",
            "outbound = ",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let text = base.replacen(from, to, 1);
        assert_ne!(text, base, "{from}");
        let path = temp_file(&format!("overlay-{i}"), &text);
        let out = run(&["policy", "check", path.to_str().unwrap_or_default()]);
        let _ = std::fs::remove_file(&path);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{to}: {err}");
        let line = text
            .lines()
            .position(|l| l.starts_with(at))
            .map(|i| i + 1)
            .unwrap_or(0);
        assert!(err.contains(says), "{to}: {err}");
        assert!(
            err.contains(&format!("{}:{line}:", path.display())),
            "line {line} of {to}: {err}"
        );
    }
}

/// A City's own pattern directory: a phrase for its sanctioned campaign (negative weight)
/// lowers the score; a phrase for an unknown rule is refused with its file and line.
#[test]
fn a_city_tunes_phrases_in_its_own_pattern_file() {
    let dir = std::env::temp_dir().join(format!("maildlp-city-phrases-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("city.toml"),
        "[[phrase]]\nname = \"northside_boosters\"\nrule = \"mass_solicitation\"\nkeywords = [\"Northside Booster Club\"]\nweight = -20\n",
    )
    .expect("write");
    let out = run(&[
        "replay",
        &p("fixtures/policy/content/solicitation_fundraiser.eml"),
        "--patterns",
        dir.to_str().unwrap_or_default(),
        "--scores",
    ]);
    let text = stdout(&out);
    assert!(text.contains("northside_boosters -20"), "{text}");
    assert!(!text.contains("FIRES"), "{text}");
    std::fs::write(
        dir.join("city.toml"),
        "[[phrase]]\nname = \"x\"\nrule = \"chain_letters\"\nkeywords = [\"x\"]\nweight = 1\n",
    )
    .expect("write");
    let out = run(&[
        "replay",
        &p("fixtures/policy/content/solicitation_fundraiser.eml"),
        "--patterns",
        dir.to_str().unwrap_or_default(),
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("city.toml:3:"), "{err}");
    assert!(err.contains("chain_letter, mass_solicitation"), "{err}");
}

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

//! The `maildlp scan` command as a user runs it: inputs, formats, exit codes, custom patterns.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_maildlp"))
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/scan")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("maildlp runs")
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("maildlp-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn json_line_has_the_documented_keys_and_masks_values() {
    let path = fixture("kind_us_ssn.eml");
    let out = run(&[
        "scan",
        "--format",
        "json",
        path.to_str().unwrap_or_default(),
    ]);
    assert!(out.status.success());
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    let rec = &lines[0];
    for key in [
        "path",
        "message_id",
        "from",
        "recipients",
        "findings",
        "encrypted",
        "unscannable",
    ] {
        assert!(rec.get(key).is_some(), "missing key {key}");
    }
    assert_eq!(rec["recipients"]["to"], 1);
    let f = &rec["findings"][0];
    assert_eq!(f["kind"], "us_ssn");
    assert_eq!(f["where"], "body");
    assert_eq!(f["confidence"], "high");
    assert_eq!(f["count"], 1);
    assert_eq!(f["masked"][0], "***-**-4817");
    // The full value is nowhere in the output.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("536-22"));
}

#[test]
fn text_format_is_readable() {
    let path = fixture("archive_zip.eml");
    let out = run(&[
        "scan",
        "--format",
        "text",
        path.to_str().unwrap_or_default(),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("us_ssn"), "{text}");
    assert!(
        text.contains("attachment:records.zip/hr/roster.csv"),
        "{text}"
    );
}

#[test]
fn stdin_mbox_and_maildir_are_read() {
    // stdin
    let raw = std::fs::read(fixture("kind_credit_card.eml")).expect("fixture");
    let mut child = bin()
        .args(["scan", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&raw)
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    let lines = json_lines(&out);
    assert_eq!(lines[0]["path"], "-");
    assert_eq!(lines[0]["findings"][0]["kind"], "credit_card");

    // mbox with two messages
    let dir = tempdir("mbox");
    let mbox = dir.join("sent.mbox");
    let mut data = Vec::new();
    for name in ["kind_us_ssn.eml", "neg_phone_dates_zip.eml"] {
        data.extend_from_slice(b"From pat@city.test Sun Nov 22 10:00:00 2026\n");
        data.extend_from_slice(&std::fs::read(fixture(name)).expect("fixture"));
        data.extend_from_slice(b"\n");
    }
    std::fs::write(&mbox, &data).expect("write mbox");
    let out = run(&[
        "scan",
        "--format",
        "json",
        mbox.to_str().unwrap_or_default(),
    ]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["index"], 0);
    assert_eq!(lines[1]["index"], 1);
    assert_eq!(lines[0]["findings"][0]["kind"], "us_ssn");
    assert_eq!(lines[1]["findings"].as_array().map(Vec::len), Some(0));

    // Maildir
    let md = dir.join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).expect("maildir");
    }
    std::fs::copy(fixture("kind_iban.eml"), md.join("new/1.eml")).expect("copy");
    std::fs::copy(fixture("kind_npi.eml"), md.join("cur/2.eml")).expect("copy");
    std::fs::write(md.join("tmp/partial"), b"half a message").expect("tmp");
    let out = run(&["scan", "--format", "json", md.to_str().unwrap_or_default()]);
    let kinds: Vec<String> = json_lines(&out)
        .iter()
        .map(|l| l["findings"][0]["kind"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(kinds, vec!["npi", "iban"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_path_exits_2_with_a_helpful_message() {
    let out = run(&["scan", "/nonexistent/mail.eml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/mail.eml"), "{err}");
    assert!(err.contains("check the path"), "{err}");
}

#[test]
fn usage_error_exits_2() {
    let out = run(&["scan"]);
    assert_eq!(out.status.code(), Some(2));
}

fn write_patterns(dir: &Path, body: &str) {
    std::fs::write(dir.join("city.toml"), body).expect("write pattern");
}

#[test]
fn custom_patterns_are_loaded_and_broken_ones_named() {
    let dir = tempdir("patterns");
    write_patterns(
        &dir,
        "[[pattern]]\nname = \"employee_id\"\nkind = \"employee_id\"\nregex = '''\\bEMP-\\d{6}\\b'''\nconfidence = \"high\"\n",
    );
    let msg = dir.join("m.eml");
    std::fs::write(
        &msg,
        "From: a@city.test\r\nTo: b@example.com\r\nSubject: x\r\n\r\nBadge EMP-482913 lost.\r\n",
    )
    .expect("write msg");
    let out = run(&[
        "scan",
        "--format",
        "json",
        "--patterns",
        dir.to_str().unwrap_or_default(),
        msg.to_str().unwrap_or_default(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines[0]["findings"][0]["kind"], "employee_id");

    write_patterns(
        &dir,
        "[[pattern]]\nname = \"broken\"\nkind = \"employee_id\"\nregex = '''(unclosed'''\nconfidence = \"high\"\n",
    );
    let out = run(&[
        "scan",
        "--patterns",
        dir.to_str().unwrap_or_default(),
        msg.to_str().unwrap_or_default(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("city.toml:4"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A pattern file named `*.TOML` is loaded like `*.toml`; a `--patterns` directory without any
/// pattern file stops the command with a message naming it (a wrong path must not silently
/// leave the City's own patterns out).
#[test]
fn upper_case_pattern_files_load_and_an_empty_pattern_dir_is_refused() {
    let dir = tempdir("patterns-case");
    std::fs::write(
        dir.join("CITY.TOML"),
        "[[pattern]]\nname = \"employee_id\"\nkind = \"employee_id\"\nregex = '''\\bEMP-\\d{6}\\b'''\nconfidence = \"high\"\n",
    )
    .expect("write pattern");
    let msg = dir.join("m.eml");
    std::fs::write(
        &msg,
        "From: a@city.test\r\nTo: b@example.com\r\nSubject: x\r\n\r\nBadge EMP-482913 lost.\r\n",
    )
    .expect("write msg");
    let out = run(&[
        "scan",
        "--format",
        "json",
        "--patterns",
        dir.to_str().unwrap_or_default(),
        msg.to_str().unwrap_or_default(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_lines(&out)[0]["findings"][0]["kind"], "employee_id");

    // Only files that are not pattern files: refused, and what is there is named.
    let empty = tempdir("patterns-none");
    std::fs::write(empty.join("city.tml"), "").expect("write");
    for args in [
        vec![
            "scan",
            "--patterns",
            empty.to_str().unwrap_or_default(),
            msg.to_str().unwrap_or_default(),
        ],
        vec![
            "policy",
            "show",
            "--policy",
            "/dev/null",
            "--patterns",
            empty.to_str().unwrap_or_default(),
        ],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(empty.to_str().unwrap_or_default()), "{err}");
        assert!(err.contains("no pattern file"), "{err}");
        assert!(err.contains("city.tml"), "{err}");
    }
    // An empty directory too.
    std::fs::remove_file(empty.join("city.tml")).expect("rm");
    let out = run(&[
        "scan",
        "--patterns",
        empty.to_str().unwrap_or_default(),
        msg.to_str().unwrap_or_default(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("it is empty"));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&empty);
}

/// `scan` and `replay` use every core but report in input order: the same lines and summary
/// with one thread and with four (times aside), on the fixtures and a mbox with an input error.
#[test]
fn parallel_scan_and_replay_keep_input_order() {
    let dir = tempdir("parallel");
    // An unreadable input in the middle: reported at its place, the rest still scanned.
    let missing = dir.join("missing.eml");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let inputs = [
        root.join("fixtures/policy/mail"),
        missing.clone(),
        root.join("fixtures/evasion"),
    ];
    let args = |jobs: &str| {
        let mut a: Vec<String> = vec![
            "scan".into(),
            "--format".into(),
            "json".into(),
            "-j".into(),
            jobs.into(),
        ];
        a.extend(inputs.iter().map(|p| p.display().to_string()));
        a
    };
    let strip = |out: &Output| -> Vec<serde_json::Value> {
        json_lines(out)
            .into_iter()
            .map(|mut v| {
                if let Some(o) = v.as_object_mut() {
                    o.remove("elapsed_ms");
                }
                v
            })
            .collect()
    };
    let one = bin().args(args("1")).output().expect("scan -j1");
    let four = bin().args(args("4")).output().expect("scan -j4");
    assert_eq!(one.status.code(), Some(2), "the missing input is an error");
    assert_eq!(four.status.code(), Some(2));
    let (a, b) = (strip(&one), strip(&four));
    assert!(a.len() > 20, "{}", a.len());
    assert_eq!(a, b, "same lines in the same order");
    // In input order: the arguments in turn, each directory in name order.
    let paths: Vec<&str> = a.iter().filter_map(|v| v["path"].as_str()).collect();
    let split = paths
        .iter()
        .position(|p| p.contains("fixtures/evasion"))
        .expect("evasion fixtures scanned");
    let (first, second) = paths.split_at(split);
    assert!(
        first.iter().all(|p| p.contains("fixtures/policy/mail")),
        "{first:?}"
    );
    assert!(
        second.iter().all(|p| p.contains("fixtures/evasion")),
        "{second:?}"
    );
    assert!(
        first.is_sorted() && second.is_sorted(),
        "each directory in name order"
    );

    let replay = |jobs: &str| {
        let out = bin()
            .args(["replay", "-j", jobs])
            .arg(root.join("fixtures/policy/mail"))
            .output()
            .expect("replay");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.contains(" in ") || !l.contains(" s"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(replay("1"), replay("4"));
    let _ = std::fs::remove_dir_all(&dir);
}

//! Property tests where a round trip or a bound exists: milter frames (encode → decode),
//! masking (at most 4 characters in clear), `policy show` → `policy check`, and ages on the
//! command line and in the console's filters.

#[allow(dead_code)]
#[path = "../fuzz/src/targets.rs"]
mod targets;

use maildlp::mask::{mask, mask_kind};
use maildlp::milter::codec::{self, Command, Response};
use maildlp::policy::Policy;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    }
}

/// Text without NUL (milter strings are NUL-terminated).
fn no_nul() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,40}"
}

fn bytes_no_nul() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(1u8..=255, 0..40)
}

/// The frames of `out`: (command byte, data).
fn split_frames(mut out: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while !out.is_empty() {
        let len = u32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize;
        let n = codec::check_length(len as u32).expect("length in range");
        frames.push((out[4], out[5..4 + n].to_vec()));
        out = &out[4 + n..];
    }
    frames
}

proptest! {
    #![proptest_config(config())]

    /// Any value: at most 4 letters or digits in clear, never more than half of the value,
    /// and those are its last characters.
    #[test]
    fn mask_keeps_at_most_four_clear(value in "\\PC{0,80}") {
        let masked = mask(&value);
        let alnum = masked.chars().filter(|c| c.is_alphanumeric()).count();
        let chars: Vec<char> = value.chars().filter(|c| !c.is_control()).collect();
        let shown = 4.min(chars.len() / 2);
        prop_assert!(alnum <= shown, "{masked:?} shows {alnum} letters/digits (at most {shown})");
        let tail: String = chars[chars.len() - shown..].iter().collect();
        prop_assert!(masked.ends_with(&tail), "{masked:?} does not end with {tail:?}");
        // A long value is shortened: its length is not revealed either.
        prop_assert!(masked.chars().count() <= chars.len().max(1 + 24 + 4));
        for kind in ["password", "credential_list", "private_key"] {
            prop_assert_eq!(mask_kind(kind, &value), "********");
        }
    }

    /// Every command an MTA can send decodes to what was encoded.
    #[test]
    fn milter_commands_round_trip(
        pick in 0u8..16,
        a in no_nul(),
        b in no_nul(),
        raw in bytes_no_nul(),
        raw2 in bytes_no_nul(),
        list in proptest::collection::vec(no_nul(), 0..5),
        n in any::<(u32, u32, u32)>(),
        for_command in any::<u8>(),
    ) {
        let pairs: Vec<(&str, &str)> =
            list.chunks(2).filter(|c| c.len() == 2).map(|c| (c[0].as_str(), c[1].as_str())).collect();
        // A list of one empty string is written like no list at all.
        let args: Vec<&str> = if list.len() == 1 && list[0].is_empty() {
            Vec::new()
        } else {
            list.iter().map(String::as_str).collect()
        };
        let address = match pick % 3 {
            0 => None,
            1 => Some(b.clone()),
            _ => Some(format!("unix:{b}")),
        };
        let cmd = match pick {
            0 => Command::OptNeg { version: n.0, actions: n.1, protocol: n.2 },
            1 => Command::Macro { for_command, pairs },
            2..=4 => Command::Connect { hostname: &a, address },
            5 => Command::Helo(&a),
            6 => Command::Mail(args),
            7 => Command::Rcpt(args),
            8 => Command::Header { name: &raw, value: &raw2 },
            9 => Command::Body(&raw),
            10 => Command::Unknown(&raw),
            11 => Command::Data,
            12 => Command::EndOfHeaders,
            13 => Command::EndOfBody,
            14 => Command::Abort,
            _ => Command::QuitNewConnection,
        };
        let frame = targets::encode_command(&cmd);
        prop_assert_eq!(codec::decode(&frame), Ok(cmd));
    }

    /// Any bytes: decoding never panics, and what decodes re-encodes to the same command.
    #[test]
    fn milter_decode_is_stable(frame in proptest::collection::vec(any::<u8>(), 1..64)) {
        if let Ok(cmd) = codec::decode(&frame) {
            let again = targets::encode_command(&cmd);
            prop_assert_eq!(codec::decode(&again), Ok(cmd));
        }
    }

    /// Every response is one frame whose length, command byte and strings read back.
    #[test]
    fn milter_responses_frame_what_they_carry(
        pick in 0u8..9,
        text in no_nul(),
        value in no_nul(),
        n in any::<(u32, u32, u32)>(),
    ) {
        let (response, cmd, data): (Response, u8, Vec<u8>) = match pick {
            0 => (
                Response::OptNeg { version: n.0, actions: n.1, protocol: n.2 },
                b'O',
                [n.0, n.1, n.2].iter().flat_map(|v| v.to_be_bytes()).collect(),
            ),
            1 => (Response::Continue, b'c', vec![]),
            2 => (Response::Accept, b'a', vec![]),
            3 => (Response::Reject, b'r', vec![]),
            4 => (Response::TempFail, b't', vec![]),
            5 => (Response::Discard, b'd', vec![]),
            6 => (Response::ReplyCode(text.clone()), b'y', format!("{text}\0").into_bytes()),
            7 => (
                Response::AddHeader { name: text.clone(), value: value.clone() },
                b'h',
                format!("{text}\0{value}\0").into_bytes(),
            ),
            _ => (Response::Quarantine(text.clone()), b'q', format!("{text}\0").into_bytes()),
        };
        let mut out = Vec::new();
        response.encode(&mut out);
        prop_assert_eq!(split_frames(&out), vec![(cmd, data)]);
    }

    /// Text made safe for a reply or a header: no line break, no `%`, within its length.
    #[test]
    fn sanitized_text_is_one_safe_line(text in "\\PC{0,300}", max in 3usize..200) {
        let safe = codec::sanitize(&text, max);
        prop_assert!(safe.len() <= max);
        prop_assert!(!safe.contains(['\r', '\n', '%', '\0']));
    }

    /// `policy show` prints a policy that `policy check` reads back to the same policy.
    #[test]
    fn policy_show_reads_back(
        monitor in any::<bool>(),
        domains in proptest::collection::vec("[a-z]{1,12}\\.(test|example|gov)", 0..4),
        personal in proptest::collection::vec("[a-z]{1,12}\\.(com|net)", 0..4),
        officer in "[a-z]{1,10}@city\\.test",
        reason in "[ -~]{0,60}",
        port in 1u16..,
        digest_hour in -1i8..24,
    ) {
        let mut policy = Policy::default_policy().expect("default policy");
        policy.monitor = monitor;
        policy.organisation.domains = domains;
        policy.organisation.personal_domains = personal;
        policy.organisation.security_officer = officer;
        policy.rules.personal_account.reason = reason;
        policy.notices.smtp_port = port;
        policy.notices.digest_hour = digest_hour;
        let shown = policy.to_toml();
        match Policy::parse(&shown, "shown.toml", &[]) {
            Ok(again) => prop_assert_eq!(again, policy),
            Err(e) => prop_assert!(false, "`policy show` output does not load: {e:?}\n{shown}"),
        }
    }

    /// An age on the command line or in a console filter (`7d`, `5000000000y`) is never in the
    /// future, however large.
    #[test]
    fn ages_are_never_in_the_future(amount in any::<u64>(), unit in "(s|m|h|d|w|y|ms)") {
        let now = 1_795_996_800_000i64;
        if let Ok(t) = maildlp::quarantine::parse_time(&format!("{amount}{unit}"), now) {
            prop_assert!(t <= now, "{amount}{unit} is {t}, after now ({now})");
        }
    }
}

/// A few session streams, generated from valid commands in any order: the buffer budget is all
/// given back, and every reply is well formed (checked inside the fuzz target).
#[test]
fn milter_session_gives_back_its_budget() {
    let mut runner = proptest::test_runner::TestRunner::new(config());
    let cmd = prop_oneof![
        Just(b"O\x00\x00\x00\x06\x00\x00\x01\xff\x00\x1f\xff\xff".to_vec()),
        Just(b"M<pat@city.test>\x00".to_vec()),
        Just(b"R<sam@example.com>\x00".to_vec()),
        Just(b"LSubject\x00roster\x00".to_vec()),
        Just(b"N".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..3000).prop_map(|b| [&b"B"[..], &b].concat()),
        Just(b"E".to_vec()),
        Just(b"A".to_vec()),
        Just(b"K".to_vec()),
    ];
    runner
        .run(&proptest::collection::vec(cmd, 0..40), |frames| {
            let mut stream = Vec::new();
            for f in &frames {
                stream.extend_from_slice(&(f.len() as u32).to_be_bytes());
                stream.extend_from_slice(f);
            }
            targets::milter_session(&stream);
            Ok(())
        })
        .expect("session property");
}

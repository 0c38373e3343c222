//! Detection tests per kind: positives in several formats and the hard negatives a naive regex
//! would flag. All values are synthetic. Failure messages show kinds and masked values only.

use super::*;
use crate::mask::mask;
use std::sync::OnceLock;

fn det() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(|| Detector::new(&[]).expect("built-in patterns load"))
}

/// (kind, confidence, masked value) of every match, after normalisation.
fn found(text: &str) -> Vec<(String, Confidence, String)> {
    let t = normalize(text);
    det()
        .find(&t)
        .into_iter()
        .map(|m| (m.kind, m.confidence, mask(&t[m.start..m.end])))
        .collect()
}

/// The most confident match of `kind` in `text`, if any.
fn best(text: &str, kind: &str) -> Option<Confidence> {
    found(text)
        .into_iter()
        .filter(|f| f.0 == kind)
        .map(|f| f.1)
        .max()
}

#[track_caller]
fn assert_kind(text: &str, kind: &str, at_least: Confidence) {
    let got = best(text, kind);
    assert!(
        got.is_some_and(|c| c >= at_least),
        "expected {kind} >= {at_least:?}, found {:?} in {:?}",
        found(text),
        mask(text)
    );
}

/// Not reported at the policy's default trigger level (medium).
#[track_caller]
fn assert_not_reported(text: &str, kind: &str) {
    let got = best(text, kind);
    assert!(
        got.is_none_or(|c| c < Confidence::Medium),
        "unexpected {kind} {got:?}: {:?} in {:?}",
        found(text),
        mask(text)
    );
}

#[track_caller]
fn assert_none(text: &str, kind: &str) {
    assert!(
        best(text, kind).is_none(),
        "unexpected {kind}: {:?} in {:?}",
        found(text),
        mask(text)
    );
}

use Confidence::{High, Low, Medium};

/// A Luhn-valid number: `prefix`, filler digits, check digit.
fn card(prefix: &str, len: usize, seed: u8) -> String {
    let mut d: Vec<u8> = prefix.bytes().map(|b| b - b'0').collect();
    let mut x = seed;
    while d.len() < len - 1 {
        x = x.wrapping_mul(73).wrapping_add(41);
        d.push(x % 10);
    }
    (0..10)
        .map(|c| {
            let mut t = d.clone();
            t.push(c);
            t
        })
        .find(|t| validate::luhn(t))
        .map(|t| t.iter().map(|&x| char::from(b'0' + x)).collect())
        .unwrap()
}

fn group4(n: &str, sep: &str) -> String {
    n.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(sep)
}

fn b64url(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, &b)| a | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

// ---- us_ssn / us_itin ----

#[test]
fn ssn_formats() {
    assert_kind("Employee SSN: 536-22-1234", "us_ssn", High);
    assert_kind("Her number is 536-22-1234.", "us_ssn", Medium);
    assert_kind("social security number 536 22 1234", "us_ssn", High);
    assert_kind("536 22 1234 is on file", "us_ssn", Medium);
    assert_kind("SSN 536221234", "us_ssn", High);
    // Full-width digits and a zero-width space are normalised away.
    assert_kind("SSN ５３６-２２-１２３４", "us_ssn", High);
    assert_kind("SSN 536\u{200B}-22-1234", "us_ssn", High);
    assert_kind("SSN 536\u{2013}22\u{2013}1234", "us_ssn", High);
}

#[test]
fn ssn_hard_negatives() {
    for t in [
        "call (555) 123-4567 or 555-123-4567",
        "on 2002-08-22 and 08/22/2002",
        "ZIP 75201-1234",
        "SSN 666-22-1234",
        "SSN 900-22-1234",
        "SSN 000-22-1234",
        "SSN 536-00-1234",
        "SSN 536-22-0000",
        "SSN 078-05-1120",
        "SSN 219-09-9999",
        "SSN 123-45-6789",
        "SSN XXX-XX-1234",
        "SSN ***-**-1234",
        "part 1-536-22-1234-5",
        "mixed 536-22 1234",
        "order 536221234 shipped",
        "tracking 1Z999AA10123456784",
    ] {
        assert_none(t, "us_ssn");
    }
}

#[test]
fn itin() {
    assert_kind("ITIN 912-70-1234", "us_itin", High);
    assert_kind("number 912-78-1234", "us_itin", Medium);
    assert_kind("ITIN 912781234", "us_itin", High);
    assert_none("ITIN 912-40-1234", "us_itin");
    assert_none("ref 912781234", "us_itin");
    assert_none("ITIN 912-70-1234", "us_ssn");
}

// ---- credit_card ----

#[test]
fn card_formats() {
    let visa = card("4539", 16, 1);
    assert_kind(&format!("Visa {}", group4(&visa, " ")), "credit_card", High);
    assert_kind(
        &format!("number {}", group4(&visa, "-")),
        "credit_card",
        Medium,
    );
    assert_kind(&format!("number {visa}"), "credit_card", Medium);
    let mc2 = card("2221", 16, 2);
    assert_kind(&format!("card: {}", group4(&mc2, " ")), "credit_card", High);
    let amex = card("378", 15, 3);
    let amex_g = format!("{} {} {}", &amex[..4], &amex[4..10], &amex[10..]);
    assert_kind(&format!("Amex {amex_g} exp 12/27"), "credit_card", High);
    let diners = card("36", 14, 4);
    assert_kind(&format!("Diners {diners}"), "credit_card", High);
    let long = card("62", 19, 5);
    assert_kind(&format!("UnionPay card {long}"), "credit_card", High);
    assert_not_reported(&format!("value {long}"), "credit_card");
    for (p, l) in [("6011", 16), ("3530", 16), ("5412", 16)] {
        let n = card(p, l, 5);
        assert_kind(&format!("credit card {n}"), "credit_card", High);
    }
    // The span is the number, masked to its last four digits.
    let f = found(&format!("Visa {}", group4(&visa, " ")));
    assert_eq!(f[0].2, format!("**** **** **** {}", &visa[12..]));
}

#[test]
fn card_hard_negatives() {
    let visa = card("4539", 16, 1);
    let mut bad = visa.clone().into_bytes();
    bad[15] = b'0' + (bad[15] - b'0' + 1) % 10;
    let bad = String::from_utf8(bad).unwrap();
    let no_issuer = card("9123", 16, 6);
    let meter = card("1000", 16, 7);
    for t in [
        format!("card {}", group4(&bad, " ")),
        format!("card {no_issuer}"),
        format!("meter serial {meter}"),
        format!("tracking number {}", group4(&visa, " ")),
        "card **** **** **** 4242".to_string(),
        "card ending in 4242".to_string(),
        "test card 4242 4242 4242 4242".to_string(),
        "test card 4111111111111111".to_string(),
        "ISBN 978-0-306-40615-7".to_string(),
        "id 123e4567-e89b-12d3-a456-426614174000".to_string(),
        "md5 d41d8cd98f00b204e9800998ecf8427e sha 4539148803436467ab".to_string(),
        format!("url http://example.com/item/{visa}/view"),
        format!("{}-{}", group4(&visa, "-"), "1234"),
    ] {
        assert_none(&t, "credit_card");
    }
}

// ---- aba_routing / bank_account ----

#[test]
fn routing_and_account() {
    assert_kind("Routing number: 021000021", "aba_routing", High);
    assert_kind("ABA 0210-0002-1", "aba_routing", High);
    // A valid routing number with nothing to say so is only low.
    assert_eq!(best("ref 021000021 done", "aba_routing"), Some(Low));
    assert_none("Routing number: 021000022", "aba_routing");
    let t = "Routing: 021000021\nChecking account: 48213907";
    assert_kind(t, "bank_account", High);
    let f = found(t);
    assert!(
        !f.iter()
            .any(|x| x.0 == "bank_account" && x.2.ends_with("0021")),
        "the routing number is not the account: {f:?}"
    );
    assert_kind(
        "Please wire to our bank account no. 5502-381-77",
        "bank_account",
        High,
    );
    assert_kind("Direct deposit: acct 000123004821", "bank_account", High);
}

#[test]
fn account_hard_negatives() {
    for t in [
        "Customer account number: 48213907 (bank holiday hours apply)",
        "Your utility account 48213907 with the bank",
        "Order account 48213907, paid by bank transfer",
        "I was checking the 2002 logs at the bank",
        "bank account ending in 4821",
        "Account 48213907",
        "bank account balance $4821.33",
        "checking account 4821.33 at the bank",
    ] {
        assert_none(t, "bank_account");
    }
}

// ---- iban ----

#[test]
fn iban_formats() {
    assert_kind("IBAN: DE89 3704 0044 0532 0130 00", "iban", High);
    assert_kind("pay to GB29 NWBK 6016 1331 9268 19 today", "iban", Medium);
    assert_kind("GB82WEST12345698765432", "iban", Medium);
    assert_none("IBAN: DE89 3704 0044 0532 0130 01", "iban");
    assert_none("IBAN: DE89 3704 0044 0532 0130", "iban");
    assert_none("code XX89 3704 0044 0532 0130 00", "iban");
}

// ---- drivers_license / passport ----

#[test]
fn drivers_license() {
    assert_kind("Texas driver's license: 48213907", "drivers_license", High);
    assert_kind("DL# 548213907", "drivers_license", High);
    assert_kind("DL 48213907", "drivers_license", High);
    assert_kind("Driver License No. D4821390", "drivers_license", High);
    assert_kind(
        "drivers license number is F482-139-07-215-0",
        "drivers_license",
        High,
    );
    assert_none("Texas 48213907", "drivers_license");
    assert_none("driver's license expired 20020822", "drivers_license");
    assert_none("software license number 48213907", "drivers_license");
    assert_none("license 12345678", "drivers_license");
    assert_none("download dl 48213907", "drivers_license");
}

#[test]
fn passport() {
    assert_kind("Passport No: 548213907", "passport", High);
    assert_kind("passport number C48213907", "passport", High);
    assert_none("ref 548213907", "passport");
    assert_none("passport photo 2002-08-22", "passport");
}

// ---- health ----

#[test]
fn medicare_mbi() {
    assert_kind("Medicare ID 1EG4-TE5-MK73", "medicare_mbi", High);
    assert_kind("id 1EG4TE5MK73", "medicare_mbi", Medium);
    assert_none("id 1SG4TE5MK73", "medicare_mbi");
    assert_none("id 1EG4-TE5MK73", "medicare_mbi");
    assert_none("id 1eg4te5mk73", "medicare_mbi");
}

#[test]
fn npi_dea_mrn() {
    assert_kind("Provider NPI: 1234567893", "npi", High);
    assert_kind("1234567893 (NPI)", "npi", High);
    assert_none("call 1234567893", "npi");
    assert_none("NPI: 1234567890", "npi");
    assert_kind("DEA# AB1234563", "dea_number", High);
    assert_kind("reg AB1234563", "dea_number", Medium);
    assert_none("DEA# AB1234564", "dea_number");
    assert_none("DEA# IB1234563", "dea_number");
    assert_kind("MRN: 00482139", "medical_record", High);
    assert_kind("Patient ID 4821390", "medical_record", High);
    assert_kind("medical record number: MR-4821390", "medical_record", High);
    assert_none("your medical record is private", "medical_record");
    assert_none("patient id card", "medical_record");
}

// ---- password / credential_list ----

#[test]
fn passwords() {
    assert_kind("Password: Tr0ub4dor&3", "password", Medium);
    assert_kind("Username: jdoe\nPassword: Tr0ub4dor&3", "password", High);
    assert_kind(
        "Your temporary password is Xk9#mPq2 and expires",
        "password",
        Medium,
    );
    assert_kind("db pwd=S3cr3tV4l", "password", Medium);
    assert_kind("The password for the VPN is Wint3r!Gate", "password", High);
    assert_kind("Password:\n  sunshine\n", "password", Medium);
    assert_kind("PIN: 4821", "password", Medium);
    // The span is the password, not the label.
    let f = found("Password: Tr0ub4dor&3.");
    assert_eq!(
        f.iter().find(|x| x.0 == "password").map(|x| x.2.as_str()),
        Some("*******or&3")
    );
}

#[test]
fn password_hard_negatives() {
    for t in [
        "Click here to reset your password.",
        "Password requirements: at least 8 characters",
        "Password: ********",
        "Password: ••••••••",
        "password: <your-password>",
        "The password is incorrect, try again",
        "The password is the same as before",
        "password = getpass.getpass()",
        "password: required",
        "Forgot your password? Reset it here",
        "pwd = /home/jdoe",
        "conference passcode: 482139",
        "see the password manager",
        "password: e.g. Tr0ub4dor&3",
        "pub password: *const u16,",
        "password: Option<&'a [u8]>,",
        "password : windows_sys::core::PCWSTR,",
        "pub Password: LSA_UNICODE_STRING,",
        "let password = hash_password(input);",
        "Enter passphrase for key: git@github.org's password:",
    ] {
        assert_not_reported(t, "password");
    }
}

#[test]
fn credential_lists() {
    let csv = "Accounts for the new hires:\nusername,password,department\njdoe,Winter2024!,IT\nasmith,Spring#99,HR\nbwong,Fall*2023,Finance\n\nThanks";
    assert_kind(csv, "credential_list", High);
    let n = found(csv)
        .iter()
        .filter(|f| f.0 == "credential_list")
        .count();
    assert_eq!(n, 3);
    let tsv = "User\tPassword\njdoe\tWinter2024!\nasmith\tSpring#99\n";
    assert_kind(tsv, "credential_list", High);
    let md = "| Login | Password |\n|---|---|\n| jdoe | Winter2024! |\n| asmith | Spring#99 |\n";
    assert_kind(md, "credential_list", High);
    let aligned = "user        password\njdoe        Winter2024!\nasmith      Spring#99\n";
    assert_kind(aligned, "credential_list", High);
    let pairs = "username: jdoe password: Winter2024!\nusername: asmith password: Spring#99\n";
    assert_kind(pairs, "credential_list", High);
}

#[test]
fn credential_list_negatives() {
    // One pair is a password, not a list.
    let one = "username: jdoe password: Winter2024!";
    assert_none(one, "credential_list");
    assert_kind(one, "password", Medium);
    // A table whose passwords are masked.
    let masked = "user,password\njdoe,********\nasmith,********\n";
    assert_none(masked, "credential_list");
    // A header with no rows, and a sentence naming the columns.
    assert_none("columns: user, password\n\nbye", "credential_list");
    assert_none(
        "Please send the user and password separately.\njdoe\nasmith",
        "credential_list",
    );
}

// ---- private_key ----

const KEY_BODY: &str = "MIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ0iT9wCS0DRTXu269V264Vf/3jvredZiKRkgwlL9xNAwxXFg0x/XFw005UWVRIkdgcKWTjpBP2dPwVZ4WWC+9aGVd+Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbcmwIDAQABAoIBAQCN";

#[test]
fn private_keys() {
    let pem = format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n{}\n-----END RSA PRIVATE KEY-----",
        &KEY_BODY[..64],
        &KEY_BODY[64..128]
    );
    assert_kind(&pem, "private_key", High);
    let pkcs8 = format!(
        "-----BEGIN PRIVATE KEY-----\r\n{}\r\n-----END PRIVATE KEY-----",
        &KEY_BODY[..64]
    );
    assert_kind(&pkcs8, "private_key", High);
    let ssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----";
    assert_kind(ssh, "private_key", High);
    let enc = format!(
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F17F5316E2BAC89\n\n{}\n",
        &KEY_BODY[..64]
    );
    assert_kind(&enc, "private_key", High);
    let pgp = format!(
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\n{}\n",
        &KEY_BODY[..64]
    );
    assert_kind(&pgp, "private_key", High);
    let json = format!(
        "{{\"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{}\\n-----END PRIVATE KEY-----\\n\"}}",
        &KEY_BODY[..64]
    );
    assert_kind(&json, "private_key", High);
    // The value masked keeps at most 4 characters.
    let f = found(&pem);
    let v = &f.iter().find(|x| x.0 == "private_key").unwrap().2;
    assert!(
        v.chars().filter(|&c| c != '*' && c != '…').count() <= 4,
        "{v}"
    );
}

#[test]
fn public_material_is_not_a_private_key() {
    for armour in [
        "PUBLIC KEY",
        "CERTIFICATE",
        "PGP SIGNATURE",
        "PGP PUBLIC KEY BLOCK",
        "RSA PUBLIC KEY",
        "CERTIFICATE REQUEST",
    ] {
        let t = format!(
            "-----BEGIN {armour}-----\n{}\n-----END {armour}-----",
            &KEY_BODY[..64]
        );
        assert_none(&t, "private_key");
    }
    assert_none(
        "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
        "private_key",
    );
}

// ---- api_token ----

#[test]
fn api_tokens() {
    assert_kind("key AKIAZ7Q2M4XPLR6TNW3K", "api_token", Medium);
    assert_kind(
        "aws_access_key_id = AKIAZ7Q2M4XPLR6TNW3K\naws_secret_access_key = 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",
        "api_token",
        High,
    );
    assert_kind(
        "token ghp_R8x2Lq9ZtVb3Nw7Ke4Hs1Pm6Yc0Ja5Ud2Gf8",
        "api_token",
        High,
    );
    assert_kind(
        "xoxb-2948172630-7731046280-Qw8Zr2Lx9Kp4Vn7Tb3Hs",
        "api_token",
        High,
    );
    assert_kind(
        "STRIPE=sk_live_51Hq8ZrLx9Kp4Vn7Tb3HsQw2Me6",
        "api_token",
        High,
    );
    assert_kind(
        "maps key AIzaSyD8Zr2Lx9Kp4Vn7Tb3HsQw8Me6Yc1Ja5Uq",
        "api_token",
        High,
    );
    assert_kind(
        "DATABASE_URL=postgres://app:S3cretPw9@db.internal:5432/prod",
        "api_token",
        High,
    );
    assert_kind(
        "Server=sql01;Database=Payroll;User Id=app;Password=Xk9#mPq2zz;",
        "api_token",
        High,
    );
    let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64url(br#"{"sub":"4821","name":"Test User","iat":1700000000}"#);
    let jwt = format!("{header}.{payload}.Qw8Zr2Lx9Kp4Vn7Tb3HsMe6Yc1Ja5U");
    assert_kind(&format!("Authorization: Bearer {jwt}"), "api_token", High);
    assert_kind(&format!("here: {jwt}"), "api_token", Medium);
    assert_kind(
        "https://hooks.slack.com/services/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",
        "api_token",
        High,
    );
}

#[test]
fn token_placeholders_and_lookalikes() {
    for t in [
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "stripe test key sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "publishable pk_live_51Hq8ZrLx9Kp4Vn7Tb3HsQw2Me6",
        "API key: <your-api-key-here>",
        "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "postgres://user:password@localhost/db",
        "postgres://app:${DB_PASSWORD}@db/prod",
        "mysql://root@localhost/test",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709",
    ] {
        assert_none(t, "api_token");
    }
}

// ---- attorney_client ----

#[test]
fn privilege_markings() {
    assert_kind(
        "PRIVILEGED & CONFIDENTIAL\nATTORNEY-CLIENT COMMUNICATION\n\nRe: lawsuit",
        "attorney_client",
        High,
    );
    assert_kind(
        "Subject: Attorney Work Product - draft",
        "attorney_client",
        High,
    );
    assert_kind("attorney/client privileged", "attorney_client", High);
    assert_none(
        "This e-mail may contain privileged and confidential information. If you are not the intended recipient, delete it.",
        "attorney_client",
    );
    assert_none("the process runs as a privileged user", "attorney_client");
}

// ---- engine ----

#[test]
fn quiet_text_has_no_matches() {
    let t = "Hi all,\n\nThe build 2.4.18-3 from 2002-08-22 10:23:45 failed on i386; see bug 48213 and \
             http://example.com/a/b?id=7. Call me at (555) 123-4567. Cheers, Bob\n";
    assert_eq!(found(t), vec![]);
}

#[test]
fn matches_have_valid_spans_in_long_text() {
    // Values placed across the keyword scanner's lane cuts.
    let mut t = String::new();
    let visa = group4(&card("4539", 16, 9), " ");
    for i in 0..300 {
        t.push_str(&format!(
            "line {i} Password: Tr0ub{i}dor&3 card {visa} SSN 536-22-{:04}\n",
            1000 + i
        ));
    }
    let m = det().find(&t);
    assert_eq!(m.iter().filter(|m| m.kind == "password").count(), 300);
    assert_eq!(m.iter().filter(|m| m.kind == "us_ssn").count(), 300);
    assert_eq!(m.iter().filter(|m| m.kind == "credit_card").count(), 300);
    for x in &m {
        assert!(x.start < x.end && t.is_char_boundary(x.start) && t.is_char_boundary(x.end));
    }
}

#[test]
fn odd_input_does_not_panic() {
    let d = det();
    for t in [
        "",
        "5",
        "password",
        "password:",
        "-----BEGIN",
        "é5é5é5é5é5é5é5é5é5",
        "Password: ééééééé",
        "SSN ５３６-２２-",
        "\u{FEFF}\u{200B}",
        "user,password\n",
        "user,password\né,é\nü,ü\n",
    ] {
        let n = normalize(t);
        for m in d.find(&n) {
            assert!(n.get(m.start..m.end).is_some());
        }
    }
    let noise: String = (0..20_000u32)
        .map(|i| char::from_u32(0x20 + (i * 7919) % 0x2FF).unwrap_or('x'))
        .collect();
    let n = normalize(&noise);
    for m in d.find(&n) {
        assert!(n.get(m.start..m.end).is_some());
    }
}

#[test]
fn normalize_by_stretches_equals_whole_text_nfkc() {
    // Pieces that stress composition and reordering next to ASCII.
    let pieces = [
        "a",
        "e",
        "<",
        " ",
        "1",
        "\u{301}",
        "\u{338}",
        "\u{327}\u{301}",
        "\u{A0}",
        "\u{FF15}",
        "\u{FB01}",
        "\u{1100}",
        "\u{1161}",
        "\u{11A8}",
        "\u{200B}",
        "\u{AD}",
        "\u{2013}",
        "é",
        "\u{2460}",
        "\u{3000}",
        "x\u{323}\u{307}",
        "\u{FEFF}",
        "ǅ",
        "\u{2126}",
    ];
    let whole = |t: &str| -> String {
        t.chars()
            .filter(|&c| !is_invisible(c))
            .nfkc()
            .map(|c| if is_dash(c) { '-' } else { c })
            .collect()
    };
    let mut x: u32 = 7;
    for _ in 0..3000 {
        let mut t = String::new();
        for _ in 0..12 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            t.push_str(pieces[(x >> 16) as usize % pieces.len()]);
        }
        assert_eq!(
            normalize(&t),
            whole(&t),
            "{:?}",
            t.escape_unicode().to_string()
        );
    }
}

#[test]
fn normalize_forms() {
    assert!(matches!(normalize("plain ascii"), Cow::Borrowed(_)));
    assert!(matches!(normalize("café déjà vu"), Cow::Borrowed(_)));
    assert_eq!(normalize("１２３"), "123");
    assert_eq!(
        normalize("a\u{200B}b\u{200C}c\u{200D}d\u{2060}e\u{FEFF}f\u{00AD}g"),
        "abcdefg"
    );
    assert_eq!(normalize("1\u{2013}2\u{2212}3"), "1-2-3");
}

// ---- pattern files ----

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("maildlp-detect-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn load_error(file: &str, body: &str) -> PatternError {
    let d = temp_dir(file.trim_end_matches(".toml"));
    std::fs::write(d.join(file), body).unwrap();
    let e = Detector::new(std::slice::from_ref(&d)).expect_err("must fail");
    let _ = std::fs::remove_dir_all(&d);
    e
}

const GOOD: &str = "[[pattern]]\nname = \"emp\"\nkind = \"employee_id\"\nregex = '''EMP-\\d{6}'''\nconfidence = \"medium\"\n";

#[test]
fn bad_regex_names_file_and_line() {
    let body = format!(
        "{GOOD}\n[[pattern]]\nname = \"x\"\nkind = \"k\"\nregex = '''(unclosed'''\nconfidence = \"low\"\n"
    );
    let e = load_error("badregex.toml", &body);
    assert!(e.file.ends_with("badregex.toml"), "{e}");
    assert_eq!(e.line, 10, "{e}");
    assert!(e.message.contains("bad regex"), "{e}");
    assert!(e.to_string().contains("badregex.toml:10: bad regex"), "{e}");
}

#[test]
fn unknown_key_names_file_and_line() {
    let e = load_error(
        "unknownkey.toml",
        "[[pattern]]\nname = \"x\"\nkind = \"k\"\nregex = 'a'\nconfidence = \"low\"\ncontxt = [\"a\"]\n",
    );
    assert!(e.file.ends_with("unknownkey.toml"), "{e}");
    assert_eq!(e.line, 6, "{e}");
    assert!(e.message.contains("contxt"), "{e}");
}

#[test]
fn unknown_validator_and_confidence() {
    let e = load_error(
        "badval.toml",
        "[[pattern]]\nname = \"x\"\nkind = \"k\"\nregex = 'a'\nvalidator = \"luhnn\"\nconfidence = \"low\"\n",
    );
    assert_eq!((e.line, e.message.contains("luhnn")), (5, true), "{e}");
    let e = load_error(
        "badconf.toml",
        "[[pattern]]\nname = \"x\"\nkind = \"k\"\nregex = 'a'\nconfidence = \"sure\"\n",
    );
    assert_eq!((e.line, e.message.contains("sure")), (5, true), "{e}");
}

#[test]
fn other_load_errors() {
    let e = load_error(
        "dup.toml",
        "[[pattern]]\nname = \"ssn_plain\"\nkind = \"k\"\nregex = 'a'\nconfidence = \"low\"\n",
    );
    assert!(e.message.contains("already used"), "{e}");
    assert_eq!(e.line, 2);
    let e = load_error(
        "badkind.toml",
        "[[pattern]]\nname = \"x\"\nkind = \"Bad Kind\"\nregex = 'a'\nconfidence = \"low\"\n",
    );
    assert_eq!(e.line, 3, "{e}");
    let e = load_error(
        "noregex.toml",
        "[[pattern]]\nname = \"x\"\nkind = \"k\"\ntrigger = \"number\"\nconfidence = \"low\"\n",
    );
    assert!(e.message.contains("regex"), "{e}");
    let e = load_error(
        "empty.toml",
        "[[pattern]]\nname = \"x\"\nkind = \"k\"\nregex = 'a*'\nconfidence = \"low\"\n",
    );
    assert!(e.message.contains("empty"), "{e}");
    let e = load_error(
        "ctx.toml",
        "[[pattern]]\nname = \"x\"\nkind = \"k\"\nregex = 'a'\nrequire_context = true\nconfidence = \"low\"\n",
    );
    assert!(e.message.contains("context"), "{e}");
    let e = load_error(
        "userinfo.toml",
        "[[pattern]]\nname = \"x\"\nkind = \"k\"\nregex = 'a'\nuserinfo = true\nconfidence = \"low\"\n",
    );
    assert!(e.message.contains("userinfo"), "{e}");
    let e = load_error("syntax.toml", "[[pattern]\nname = 'x'\n");
    assert_eq!(e.line, 1, "{e}");
    let missing = Detector::new(&[PathBuf::from("/nonexistent/maildlp-patterns")]).unwrap_err();
    assert!(missing.message.contains("cannot read"), "{missing}");
}

#[test]
fn custom_patterns_from_extra_dir() {
    let d = temp_dir("custom");
    std::fs::write(
        d.join("city.toml"),
        format!(
            "{GOOD}
[[pattern]]
name = \"project_codenames\"
kind = \"project_codename\"
keywords = [\"Bluebonnet\", \"Project Armadillo\"]
confidence = \"high\"

[[pattern]]
name = \"case_number\"
kind = \"court_case\"
trigger = \"number\"
min_digits = 6
regex = '''\\b\\d{{2}}-CV-\\d{{4,6}}\\b'''
context = [\"case\"]
confidence = \"low\"
context_confidence = \"medium\"

[[pattern]]
name = \"badge\"
kind = \"badge_number\"
trigger = \"number\"
min_digits = 5
regex = '''\\bBDG-\\d{{5}}\\b'''
confidence = \"low\"
"
        ),
    )
    .unwrap();
    std::fs::write(d.join("notes.txt"), "not a pattern file").unwrap();
    let det = Detector::new(std::slice::from_ref(&d)).unwrap();
    let _ = std::fs::remove_dir_all(&d);
    let t = "Ticket for EMP-482139 about project armadillo and Bluebonnet; case 23-CV-004821. Bluebonnets bloom. BDG-48213";
    let m = det.find(t);
    let got: Vec<(&str, &str, Confidence)> = m
        .iter()
        .map(|m| (m.kind.as_str(), &t[m.start..m.end], m.confidence))
        .collect();
    assert_eq!(
        got,
        vec![
            ("employee_id", "EMP-482139", Medium),
            ("project_codename", "project armadillo", High),
            ("project_codename", "Bluebonnet", High),
            ("court_case", "23-CV-004821", Medium),
            ("badge_number", "BDG-48213", Low),
        ]
    );
    assert!(
        det.patterns()
            .any(|(n, k)| n == "case_number" && k == "court_case")
    );
}

#[test]
fn builtin_files_are_valid_and_kinds_are_the_policy_names() {
    let kinds: HashSet<&str> = det().patterns().map(|(_, k)| k).collect();
    let policy = [
        "us_ssn",
        "us_itin",
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
        "password",
        "credential_list",
        "private_key",
        "api_token",
        "attorney_client",
    ];
    for k in policy {
        assert!(kinds.contains(k), "no pattern for {k}");
    }
    for k in &kinds {
        assert!(policy.contains(k), "kind {k} is not in the policy map");
    }
}

#[test]
fn regex_needs_count_required_digits_and_letters() {
    let needs = |r: &str| build_regex(r).unwrap().1;
    assert_eq!(
        needs(r"\b\d{3}-\d{2}-\d{4}\b"),
        Needs {
            digits: 9,
            letters: 0
        }
    );
    assert_eq!(
        needs(r"\b[A-Z]{2}\d{2}(?:\x20?[A-Z0-9]{4}){2,7}\b"),
        Needs {
            digits: 2,
            letters: 2
        }
    );
    assert_eq!(
        needs(r"(?i)ab\d|x\d\d"),
        Needs {
            digits: 1,
            letters: 1
        }
    );
    assert_eq!(
        needs(r"[A-Z9]\d{7}"),
        Needs {
            digits: 7,
            letters: 0
        }
    );
    assert_eq!(
        needs(r"(?P<value>\d+)x?"),
        Needs {
            digits: 1,
            letters: 0
        }
    );
}

#[test]
fn detector_is_shareable_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Detector>();
}

#[test]
fn window_merging() {
    let mut w = vec![(10, 20), (15, 30), (31, 40), (8, 12), (40, 45), (50, 60)];
    merge_windows(&mut w);
    assert_eq!(w, vec![(8, 30), (31, 45), (50, 60)]);
}

#[test]
fn adversarial_texts_stay_bounded() {
    let d = det();
    let card4 = group4(&card("4539", 16, 11), " ");
    let texts = [
        "password ".repeat(30_000),
        "Password: Tr0ub4dor&3 ".repeat(5_000),
        "user,password\n".repeat(20_000),
        "1 ".repeat(100_000),
        format!("{card4} ").repeat(10_000),
        "-----BEGIN ".repeat(20_000),
        "eyJ".repeat(50_000),
        "account 48213907 bank ".repeat(5_000),
    ];
    for t in &texts {
        let started = std::time::Instant::now();
        let m = d.find(t);
        assert!(m.len() <= MAX_MATCHES_PER_PATTERN * d.patterns().count());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{:?}: {:?}",
            mask(&t[..20]),
            started.elapsed()
        );
    }
}

#[test]
fn realistic_sentences() {
    for (t, kind, c) in [
        ("My social is 536-22-1234, thanks", "us_ssn", Medium),
        (
            "Please charge my Visa 4539-1488-0343-6467, exp 04/26, CVV 123",
            "credit_card",
            High,
        ),
        (
            "Acct #: 48213907, Routing #: 021000021 at Chase",
            "bank_account",
            High,
        ),
        (
            "Wire to First National Bank, ABA 021000021, Account 4821390712",
            "bank_account",
            High,
        ),
        (
            "Wire to First National Bank, ABA 021000021, Account 4821390712",
            "aba_routing",
            High,
        ),
        ("DL: 48213907 (TX)", "drivers_license", High),
        ("Medicare #: 1EG4-TE5-MK73", "medicare_mbi", High),
        ("Dr. Smith, NPI 1234567893, DEA AB1234563", "npi", High),
        (
            "Dr. Smith, NPI 1234567893, DEA AB1234563",
            "dea_number",
            High,
        ),
        ("login: jdoe / pass: Winter2024!", "password", High),
        (
            "your new password Winter2024! works now",
            "password",
            Medium,
        ),
        (
            "jdbc:sqlserver://db01;user=app;password=Xk9#mPq2;",
            "api_token",
            High,
        ),
        (
            "jdbc:sqlserver://db01;user=app;password=Xk9#mPq2;",
            "password",
            Medium,
        ),
    ] {
        assert_kind(t, kind, c);
    }
    for (t, kind) in [
        (
            "the password MD5 hash d41d8cd98f00b204e9800998ecf8427e",
            "password",
        ),
        ("store the password SHA256-hashed", "password"),
        ("I will pass: tomorrow is fine", "password"),
        ("password protection is enabled", "password"),
        ("Password missing!", "password"),
        ("error: \"Password protected!\"", "password"),
    ] {
        assert_not_reported(t, kind);
    }
}

#[test]
fn many_separate_keyword_windows_stay_fast() {
    // Thousands of keyword hits whose windows do not overlap (one per line, far apart).
    let line = format!("Password: Tr0ub4dor&3 {}\n", "x".repeat(400));
    let t = line.repeat(20_000);
    let started = std::time::Instant::now();
    let m = det().find(&t);
    assert_eq!(m.iter().filter(|m| m.kind == "password").count(), 20_000);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn web_urls_with_a_password() {
    assert_kind(
        "Log in at https://jdoe:Wint3r-Sky@portal.vendor.example/admin today.",
        "password",
        High,
    );
    assert_none(
        "See https://www.example.com/path?q=1 and http://example.org:8080/x",
        "password",
    );
    assert_none(
        "Template: https://user:<password>@host.example/",
        "password",
    );
    assert_none(
        "Mail me at https://example.com/@jdoe or mailto:a@b.example",
        "password",
    );
    // Among other addresses in the same search window (the second of three), in any case.
    assert_kind(
        "http://a.example/x https://b.example/y HTTPS://jdoe:Wint3r-Sky@portal.example/ http://c.example/",
        "password",
        High,
    );
    // Only an address with a user-info part opens the search; it may end the text, or stand
    // in angle brackets or quotes.
    for t in [
        "portal: https://jdoe:Wint3r-Sky@portal.example",
        "<https://jdoe:Wint3r-Sky@portal.example/>",
        "href=\"http://jdoe:Wint3r-Sky@portal.example:8443/x\"",
    ] {
        assert_kind(t, "password", High);
    }
    let ui = |t: &str| has_userinfo(t.as_bytes(), t.find("://").unwrap() + 3, 200);
    assert!(ui("https://jdoe:pw@host/"));
    assert!(ui("http://jdoe:pw@host"));
    assert!(!ui("https://example.com/@jdoe"));
    assert!(!ui("https://example.com jdoe:pw@host"));
    assert!(!ui("\"https://example.com\" a@b"));
    assert!(!ui("https://example.com"));
    // Not beyond the search window.
    let far = format!("https://{}:pw@host/", "u".repeat(300));
    assert!(!ui(&far));
}

#[test]
fn privilege_as_a_topic_and_code_expressions_are_not_reported() {
    assert_none(
        "The seminar covers the attorney-client privilege and its limits.",
        "attorney_client",
    );
    assert_kind(
        "ATTORNEY-CLIENT PRIVILEGE - DO NOT FORWARD",
        "attorney_client",
        High,
    );
    assert_kind(
        "This memo is subject to the attorney-client privilege.",
        "attorney_client",
        High,
    );
    assert_kind("Attorney-Client Privileged", "attorney_client", High);
    assert_not_reported("password = os.environ[\"DB_PASSWORD\"]", "password");
    assert_not_reported("db_password = settings{", "password");
    assert_kind("Password: Xk7#mPq2wL!", "password", Medium);
}

/// Issue 13, class 1: filler that makes candidates (`pw ` over and over, a hidden div, a CSV
/// column) must not push real values out; a text past a per-pattern limit says so. (With the
/// former global candidate cap, the first text here lost both values.)
#[test]
fn filler_candidates_never_hide_real_values() {
    let d = det();
    for filler in ["pw ", "pin 1 ", "ssn "] {
        let mut t = filler.repeat(1_200_000 / filler.len());
        t.push_str("\nEmployee SSN: 536-22-4817. Her password: Tr0ub4dor&3x\n");
        t.push_str(&filler.repeat(100_000 / filler.len()));
        let started = std::time::Instant::now();
        let f = d.find_all(&normalize(&t));
        let kinds: Vec<&str> = f.matches.iter().map(|m| m.kind.as_str()).collect();
        assert!(kinds.contains(&"us_ssn"), "{filler:?}: {kinds:?}");
        assert!(kinds.contains(&"password"), "{filler:?}: {kinds:?}");
        assert!(!f.truncated, "{filler:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}

#[test]
fn past_the_per_pattern_limit_the_text_is_reported_truncated() {
    let d = det();
    // More valid-looking values of one pattern than the limit: reported, never silent.
    let t = "SSN 536-22-4817\n".repeat(MAX_MATCHES_PER_PATTERN + 10);
    let f = d.find_all(&t);
    assert!(f.truncated);
    assert!(f.matches.iter().any(|m| m.kind == "us_ssn"));
}

// ---- issue 13, class 7: separators and characters ----

/// `digits` written with the decimal digits of the script whose zero is `zero`.
fn in_script(digits: &str, zero: u32) -> String {
    digits
        .chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_u32(zero + d).unwrap(),
            None => c,
        })
        .collect()
}

#[test]
fn ssn_with_dots_slashes_tabs_and_mixed_separators() {
    // Dots: a clear format, like dashes and spaces.
    assert_kind("Her number is 536.22.4817.", "us_ssn", Medium);
    assert_kind("SSN 536.22.4817", "us_ssn", High);
    assert_kind("ITIN 912.70.1234", "us_itin", High);
    // Separators that also make dates, paths and table rows: with an SSN word near.
    for t in [
        "SSN: 536/22/4817",
        "SSN\t536\t22\t4817",
        "social security number 536-22 4817",
        "SSN 536 22-4817",
        "SSN 536  22  4817",
        "SSN 536 - 22 - 4817",
        "SSN 536_22_4817",
        "SSN 536\\22\\4817",
        "SSN 536 / 22 / 4817",
        "536/22/4817 (SSN)",
        "ss# 536.22/4817",
    ] {
        assert_kind(t, "us_ssn", High);
    }
    // Masked to the last four digits.
    let f = found("SSN: 536/22/4817");
    assert!(f.iter().all(|x| x.2 == "***/**/4817"), "{f:?}");
    let f = found("SSN\t536\t22\t4817");
    assert!(
        f.iter()
            .all(|x| x.2.chars().filter(|c| c.is_ascii_digit()).count() <= 4),
        "{f:?}"
    );
}

#[test]
fn loose_ssn_separators_need_an_ssn_word() {
    for t in [
        "536/22/4817",
        "ref 536/22/4817",
        "Ref. 123/45/2019 of the council",
        "536\t22\t4817",
        "Q3\t536\t22\t4817\t9120",
        "mixed 536-22 4817",
        "536 - 22 - 4817",
        "536  22  4817",
    ] {
        assert_none(t, "us_ssn");
    }
    // Near an SSN word, still not a piece of a longer token, and still validated.
    for t in [
        "SSN see /files/536/22/4817/x",
        "SSN part 1/536/22/4817",
        "SSN 666/22/4817",
        "SSN 536/00/4817",
        "SSN 123/45/6789",
        "SSN 536/22/48170",
    ] {
        assert_none(t, "us_ssn");
    }
}

#[test]
fn dotted_numbers_are_not_ssns_or_cards() {
    for t in [
        "version 1.2.3 and 10.22.48.17",
        "released 2.4.18, build 536.22.48170",
        "server 10.22.48.17 port 8080",
        "on 2026.11.30 at 10.30",
        "call 940.555.0142 today",
        "dated 08.22.2002 and 22.08.2002",
        "OID 1.3.6.1.4.1.311.21.7",
        "part 1.536.22.4817",
        "sections 536.22.4817.5",
        "SSN field 1.536.22.4817",
    ] {
        assert_none(t, "us_ssn");
        assert_none(t, "credit_card");
    }
}

#[test]
fn cards_grouped_by_dots_tabs_and_double_spaces() {
    let visa = card("4539", 16, 1);
    // Dots: like spaces and dashes.
    assert_kind(
        &format!("number {}", group4(&visa, ".")),
        "credit_card",
        Medium,
    );
    assert_kind(&format!("Visa {}", group4(&visa, ".")), "credit_card", High);
    // Tabs, several spaces, a separator with spaces around it: with a card word near.
    for sep in ["\t", "  ", "   ", " - ", " . ", "/", " / ", "\t\t"] {
        let t = format!("card number: {} exp 04/27", group4(&visa, sep));
        assert_kind(&t, "credit_card", High);
        assert_none(&format!("total {}", group4(&visa, sep)), "credit_card");
        let f = found(&t);
        for x in f.iter().filter(|x| x.0 == "credit_card") {
            assert!(
                x.2.ends_with(&visa[12..])
                    && x.2.chars().filter(|c| c.is_ascii_digit()).count() == 4,
                "{sep:?}: {x:?}"
            );
        }
    }
    let amex = card("378", 15, 3);
    let amex_tab = format!("{}\t{}\t{}", &amex[..4], &amex[4..10], &amex[10..]);
    assert_kind(&format!("Amex {amex_tab}"), "credit_card", High);
    let amex_dot = format!("{}.{}.{}", &amex[..4], &amex[4..10], &amex[10..]);
    assert_kind(&format!("ref {amex_dot}"), "credit_card", Medium);
}

#[test]
fn loose_card_separators_keep_the_card_rules() {
    let visa = card("4539", 16, 1);
    let mut bad = visa.clone().into_bytes();
    bad[15] = b'0' + (bad[15] - b'0' + 1) % 10;
    let bad = String::from_utf8(bad).unwrap();
    let g = |sep: &str| group4(&visa, sep);
    for t in [
        // Luhn fails.
        format!("card {}", group4(&bad, "\t")),
        // Two kinds of separator.
        format!(
            "card {}\t{}  {}",
            &visa[..4],
            &visa[4..8],
            group4(&visa[8..], "  ")
        ),
        format!(
            "card {}.{} {}",
            &visa[..4],
            &visa[4..8],
            group4(&visa[8..], " ")
        ),
        // A documented test number.
        "card 4111\t1111\t1111\t1111".to_string(),
        // Negative context.
        format!("card tracking number {}", g("\t")),
        // A piece of a longer token.
        format!("card /x/{}/y", g("/")),
        // A spreadsheet row of amounts with no card word.
        format!("Q1\t{}\t2210", g("\t")),
    ] {
        assert_none(&t, "credit_card");
    }
}

#[test]
fn invisible_characters_are_removed() {
    for inv in [
        '\u{00AD}',
        '\u{034F}',
        '\u{061C}',
        '\u{115F}',
        '\u{17B4}',
        '\u{180E}',
        '\u{200B}',
        '\u{200E}',
        '\u{200F}',
        '\u{202A}',
        '\u{202E}',
        '\u{2060}',
        '\u{2061}',
        '\u{2062}',
        '\u{2063}',
        '\u{2064}',
        '\u{2066}',
        '\u{2069}',
        '\u{3164}',
        '\u{FE00}',
        '\u{FE0F}',
        '\u{FEFF}',
        '\u{FFA0}',
        '\u{1D173}',
        '\u{E0001}',
        '\u{E0020}',
        '\u{E0041}',
        '\u{E007F}',
        '\u{E0100}',
        '\u{E01EF}',
    ] {
        let ssn: String = "536-22-4817"
            .chars()
            .flat_map(|c| [c, inv])
            .collect::<String>();
        assert_eq!(normalize(&ssn), "536-22-4817", "U+{:04X}", u32::from(inv));
        assert_kind(&format!("SSN {ssn}"), "us_ssn", High);
        let word = format!("pass{inv}word: Tr0ub4dor&3x");
        assert_kind(&word, "password", Medium);
    }
    // A run of tag characters (an invisible "ASCII" message) between digits.
    let tags: String = "hidden"
        .chars()
        .map(|c| char::from_u32(0xE0000 + u32::from(c)).unwrap())
        .collect();
    assert_eq!(normalize(&format!("536{tags}-22-4817")), "536-22-4817");
}

#[test]
fn decimal_digits_of_every_script_become_ascii() {
    for (script, zero) in [
        ("Arabic-Indic", 0x660),
        ("Extended Arabic-Indic", 0x6F0),
        ("Devanagari", 0x966),
        ("Bengali", 0x9E6),
        ("Gurmukhi", 0xA66),
        ("Tamil", 0xBE6),
        ("Thai", 0xE50),
        ("Myanmar", 0x1040),
        ("Mathematical bold", 0x1D7CE),
        ("Full-width", 0xFF10),
    ] {
        let ssn = in_script("536-22-4817", zero);
        assert_eq!(normalize(&ssn), "536-22-4817", "{script}");
        assert_kind(&format!("SSN {ssn}"), "us_ssn", High);
        assert_kind(&format!("number {ssn}"), "us_ssn", Medium);
        let visa = card("4539", 16, 1);
        let c = in_script(&group4(&visa, " "), zero);
        assert_kind(&format!("Visa {c}"), "credit_card", High);
        // The sample shows the last four digits, in ASCII, and nothing more.
        let f = found(&format!("number {ssn}"));
        assert!(f.iter().any(|x| x.2 == "***-**-4817"), "{script}: {f:?}");
    }
    // Mixed with ASCII digits and an Arabic letter mark between them.
    assert_eq!(normalize("٥3\u{61C}٦-22-٤817"), "536-22-4817");
    // Prose in those scripts without digits is not copied.
    assert!(matches!(normalize("مرحبا بالعالم"), Cow::Borrowed(_)));
    assert!(matches!(normalize("नमस्ते दुनिया"), Cow::Borrowed(_)));
}

#[test]
fn digit_table_is_unicode_nd_and_invisible_set_is_default_ignorable() {
    let nd = regex::Regex::new(r"^\p{Nd}$").unwrap();
    let di = regex::Regex::new(r"^\p{Default_Ignorable_Code_Point}$").unwrap();
    let mut buf = [0u8; 4];
    for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
        let s = c.encode_utf8(&mut buf);
        let is_nd = nd.is_match(s);
        // Besides Nd: the dingbat circled digits that NFKC keeps (❶, ➀, ➊, ⓵, ⓿, 🄋, 🄌).
        let cp = u32::from(c);
        let dingbat = DINGBAT_ONES.iter().any(|&one| (one..one + 9).contains(&cp))
            || DINGBAT_ZEROS.contains(&cp);
        if !c.is_ascii() {
            assert_eq!(ascii_digit(c).is_some(), is_nd || dingbat, "U+{cp:04X}");
        }
        if is_nd && !c.is_ascii() {
            // The digit before a digit of value v > 0 has value v - 1 (blocks are in order).
            let v = ascii_digit(c).unwrap();
            if v != '0' {
                let prev = char::from_u32(u32::from(c) - 1).unwrap();
                assert_eq!(
                    ascii_digit(prev).map(|p| p as u32 + 1),
                    Some(v as u32),
                    "U+{:04X}",
                    u32::from(c)
                );
            }
        }
        // Besides Default_Ignorable: the combining enclosing marks (keycap, circle, square).
        let enclosing = (0x20DD..=0x20E4).contains(&cp);
        assert_eq!(is_invisible(c), di.is_match(s) || enclosing, "U+{cp:04X}");
    }
    for (c, d) in [
        ('\u{665}', '5'),
        ('\u{6F9}', '9'),
        ('\u{96B}', '5'),
        ('\u{9E7}', '1'),
        ('\u{277A}', '5'),
        ('\u{2784}', '5'),
        ('\u{24FF}', '0'),
    ] {
        assert_eq!(ascii_digit(c), Some(d));
    }
}

#[test]
fn nfkc_never_makes_an_invisible_character() {
    // normalize drops invisible characters before NFKC only: no character may turn into one.
    for c in (0x80..=0x10FFFFu32).filter_map(char::from_u32) {
        if is_invisible(c) {
            continue;
        }
        let mut buf = [0u8; 4];
        let s: &str = c.encode_utf8(&mut buf);
        assert!(
            !s.nfkc().any(is_invisible),
            "U+{:04X} becomes an invisible character",
            u32::from(c)
        );
    }
}

#[test]
fn normalize_by_stretches_equals_whole_text_with_digits_and_invisibles() {
    let pieces = [
        "a",
        "1",
        " ",
        "-",
        "\u{301}",
        "\u{34F}",
        "\u{200E}",
        "\u{2063}",
        "\u{180E}",
        "\u{FE0F}",
        "\u{E0041}",
        "\u{E0100}",
        "\u{3164}",
        "\u{FFA0}",
        "\u{1160}",
        "\u{1100}",
        "\u{1161}",
        "٥",
        "۳",
        "५",
        "৭",
        "\u{FF15}",
        "\u{1D7D9}",
        "\u{2013}",
        "é",
        "\u{A0}",
    ];
    let whole = |t: &str| -> String {
        t.chars()
            .filter(|&c| !is_invisible(c))
            .nfkc()
            .map(replace)
            .collect()
    };
    let mut x: u32 = 11;
    for _ in 0..3000 {
        let mut t = String::new();
        for _ in 0..12 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            t.push_str(pieces[(x >> 16) as usize % pieces.len()]);
        }
        let n = normalize(&t);
        assert_eq!(n, whole(&t), "{:?}", t.escape_unicode().to_string());
        assert!(
            n.chars()
                .all(|c| !is_invisible(c) && ascii_digit(c).is_none())
        );
    }
    // ASCII stays on the fast path, and text with nothing to change is not copied.
    assert!(matches!(
        normalize("SSN 536.22.4817\t536/22/4817"),
        Cow::Borrowed(_)
    ));
    assert!(matches!(
        normalize("Grüße, « café » naïve"),
        Cow::Borrowed(_)
    ));
}

const KEY_LINES: [&str; 4] = [
    "MIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
    "LxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo",
    "9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ0iT9wCS0DRTXu269V264Vf/3jvre",
];

fn pem_lines(armour: &str) -> Vec<String> {
    let mut v = vec![format!("-----BEGIN {armour}-----")];
    v.extend(KEY_LINES.iter().map(|l| l.to_string()));
    v.push(format!("-----END {armour}-----"));
    v
}

#[test]
fn private_keys_quoted_numbered_or_rewrapped() {
    let lines = pem_lines("RSA PRIVATE KEY");
    let quoted = lines
        .iter()
        .map(|l| format!("> {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_kind(
        &format!("On Monday Pat wrote:\n{quoted}\n"),
        "private_key",
        High,
    );
    let twice = lines
        .iter()
        .map(|l| format!("> > {l}"))
        .collect::<Vec<_>>()
        .join("\r\n");
    assert_kind(&twice, "private_key", High);
    let bare_quote = lines
        .iter()
        .map(|l| format!(">{l}"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_kind(&bare_quote, "private_key", High);
    for number in ["{} ", "{}: ", "{:02}| ", "{}. ", "{}) ", "{:6}\t"] {
        let numbered = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                number
                    .replace("{}", &(i + 1).to_string())
                    .replace("{:02}", &format!("{:02}", i + 1))
                    .replace("{:6}", &format!("{:6}", i + 1))
                    + l
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert_kind(&numbered, "private_key", High);
    }
    // Re-wrapped narrower (16 and 10 columns), the armour line broken at its spaces, quoted.
    let body: String = KEY_LINES.concat();
    for width in [16, 10] {
        let wrapped = body
            .as_bytes()
            .chunks(width)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n> ");
        let t = format!(
            "> -----BEGIN RSA\n> PRIVATE KEY-----\n> {wrapped}\n> -----END RSA\n> PRIVATE KEY-----"
        );
        assert_kind(&t, "private_key", High);
    }
    // Joined into one line.
    let joined = format!("-----BEGIN PRIVATE KEY----- {body} -----END PRIVATE KEY-----");
    assert_kind(&joined, "private_key", High);
    // Encrypted PEM with headers, quoted and numbered.
    let enc = format!(
        "> 1 -----BEGIN RSA PRIVATE KEY-----\n> 2 Proc-Type: 4,ENCRYPTED\n> 3 DEK-Info: AES-128-CBC,3F17F5316E2BAC89\n> 4\n> 5 {}\n",
        KEY_LINES[0]
    );
    assert_kind(&enc, "private_key", High);
    // PuTTY, quoted.
    let putty = format!(
        "> PuTTY-User-Key-File-2: ssh-rsa\n> Encryption: none\n> Comment: k\n> Public-Lines: 1\n> AAAAB3NzaC1yc2E\n> Private-Lines: 2\n> {}\n",
        KEY_LINES[1]
    );
    assert_kind(&putty, "private_key", High);
    // Every sample is fully masked.
    let f = found(&quoted);
    assert!(f.iter().any(|x| x.0 == "private_key"));
}

#[test]
fn quoted_public_material_and_key_talk_are_not_private_keys() {
    for armour in ["PUBLIC KEY", "CERTIFICATE", "PGP PUBLIC KEY BLOCK"] {
        let quoted = pem_lines(armour)
            .iter()
            .map(|l| format!("> {l}"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_none(&quoted, "private_key");
    }
    for t in [
        "> -----BEGIN RSA PRIVATE KEY-----\n> ...\n> -----END RSA PRIVATE KEY-----",
        "Paste the block from -----BEGIN PRIVATE KEY----- to the END line\ninto the field\nand save it.",
        "-----BEGIN PRIVATE KEY-----\n> <your key here>\n-----END PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----\n1 \n2 \n3 -----END PRIVATE KEY-----",
    ] {
        assert_none(t, "private_key");
    }
}

#[test]
fn card_followed_by_its_expiry_date() {
    let visa = card("4539", 16, 1);
    for sep in [" ", "-", ".", "\t", "  "] {
        let t = format!(
            "Please charge card {} {}/27 thanks",
            group4(&visa, sep),
            "12"
        );
        assert_kind(&t, "credit_card", High);
        // The same separator before the date: whitespace only ("-12/27" would make one token).
        if sep.trim().is_empty() {
            let t = format!("card {}{sep}12/27", group4(&visa, sep));
            assert_kind(&t, "credit_card", High);
        }
        let f = found(&t);
        assert!(
            f.iter()
                .filter(|x| x.0 == "credit_card")
                .all(|x| x.2.ends_with(&visa[12..])),
            "{sep:?}: {f:?}"
        );
    }
    // A 19-digit card grouped 4-4-4-4-3 is still one value.
    let long = card("4539", 19, 9);
    let g = format!("{} {}", group4(&long[..16], " "), &long[16..]);
    assert_kind(&format!("Visa {g}"), "credit_card", High);
    let f = found(&format!("Visa {g}"));
    let whole = format!("**** **** **** **** {}", &long[16..]);
    assert!(f.iter().any(|x| x.2 == whole), "{f:?}");
}

/// (service, host, path) of the file-sharing links in `text`.
fn links(text: &str) -> Vec<(String, String, String)> {
    det()
        .find_all(&normalize(text))
        .links
        .into_iter()
        .map(|l| (l.service, l.host, l.path))
        .collect()
}

#[test]
fn sharing_links_are_found_in_their_shapes_only() {
    let l = links("file: https://www.dropbox.com/scl/fi/abc/x.xlsx?dl=0.");
    assert_eq!(
        l,
        vec![(
            "dropbox".into(),
            "www.dropbox.com".into(),
            "/scl/fi/abc/x.xlsx?dl=0".into()
        )]
    );
    // Tenants are sub-domains; schemes are optional; sentence punctuation is not the link.
    let l = links("see (cityofexample.sharepoint.com/:x:/s/Finance/Eabc).");
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0].1, "cityofexample.sharepoint.com");
    assert_eq!(l[0].2, "/:x:/s/Finance/Eabc");
    assert_eq!(links("HTTPS://WE.TL/t-AbC123").len(), 1);
    assert_eq!(links("https://pastebin.com/AbCd1234").len(), 1);
    // Not shares: a home page, help pages, an app download, a look-alike host, a domain that
    // continues, an e-mail address, the bare name.
    for text in [
        "https://www.dropbox.com/",
        "https://www.dropbox.com/install",
        "https://help.dropbox.com/share/create-and-view-links",
        "https://mydropbox.com/s/abc",
        "https://dropbox.com.example.net/s/abc",
        "write to someone@dropbox.com/s",
        "we use Dropbox and Google Drive",
        "https://support.google.com/drive/answer/2424368",
        "https://pastebin.com/",
    ] {
        assert!(links(text).is_empty(), "{text}: {:?}", links(text));
    }
    // Phrases of content rules are scored, never reported as kinds.
    let t = normalize("Please forward this to 10 people. Do not break the chain!");
    let f = det().find_all(&t);
    assert!(f.matches.is_empty(), "{:?}", f.matches);
    let names: Vec<&str> = f.signals.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"chain_forward_demand"), "{names:?}");
    assert!(names.contains(&"chain_break_the_chain"), "{names:?}");
    assert!(det().patterns().all(|(_, k)| k != "chain_letter"));
    assert!(det().phrases().any(|(_, r)| r == "chain_letter"));
}

#[test]
fn a_text_of_links_is_bounded() {
    let text = "https://pastebin.com/AbCd1234x ".repeat(200)
        + &(0..5000)
            .map(|i| format!("https://pastebin.com/p{i} "))
            .collect::<String>();
    let l = links(&text);
    assert_eq!(l.len(), MAX_LINKS_PER_TEXT);
}

// ---- issue 9: driver's licences of every jurisdiction, credentials in prose and code ----

/// One synthetic number per jurisdiction, in the shape it issues (as printed on its cards).
const DL_BY_STATE: &[(&str, &str)] = &[
    ("Alabama", "4829137"),
    ("Alaska", "7264819"),
    ("Arizona", "D48291375"),
    ("Arkansas", "948213706"),
    ("California", "D4007885"),
    ("Colorado", "48-291-3075"),
    ("Connecticut", "048291375"),
    ("Delaware", "7264819"),
    ("District of Columbia", "4829137"),
    ("Florida", "F482-913-07-526-1"),
    ("Georgia", "048291375"),
    ("Hawaii", "H48291375"),
    ("Idaho", "AB482913C"),
    ("Illinois", "D400-7885-1293"),
    ("Indiana", "4829-13-7526"),
    ("Iowa", "482AB9130"),
    ("Kansas", "K48-29-1375"),
    ("Kentucky", "S48-291-375"),
    ("Louisiana", "004829137"),
    ("Maine", "7264819"),
    ("Maryland", "M-482-913-075-216"),
    ("Massachusetts", "S48291375"),
    ("Michigan", "S 482 913 075 261"),
    ("Minnesota", "K482913075261"),
    ("Mississippi", "948213706"),
    ("Missouri", "482A913075"),
    ("Montana", "0482913750261"),
    ("Nebraska", "A4829137"),
    ("Nevada", "4829137526"),
    ("New Hampshire", "48ABC91307"),
    ("New Jersey", "A4829 13075 26184"),
    ("New Mexico", "048291375"),
    ("New York", "482 913 075"),
    ("North Carolina", "000048291375"),
    ("North Dakota", "ABC482913"),
    ("Ohio", "AB739204"),
    ("Oklahoma", "A048291375"),
    ("Oregon", "7264819"),
    ("Pennsylvania", "29 481 736"),
    ("Rhode Island", "V482913"),
    ("South Carolina", "10482913750"),
    ("South Dakota", "04829137"),
    ("Tennessee", "104829137"),
    ("Texas", "40718296"),
    ("Utah", "0482913750"),
    ("Vermont", "0482913A"),
    ("Virginia", "T48-291-375"),
    ("Washington", "WDL7X4K9P2Q1"),
    ("West Virginia", "A482913"),
    ("Wisconsin", "W426-5521-8830-07"),
    ("Wyoming", "048291-375"),
    ("Puerto Rico", "4829137"),
    ("Guam", "A48291307526184"),
    ("Virgin Islands", "4829137526"),
    ("American Samoa", "4829137"),
    ("Northern Mariana Islands", "48291375"),
];

#[test]
fn drivers_license_of_every_jurisdiction_needs_its_label() {
    for (state, number) in DL_BY_STATE {
        for labelled in [
            format!("{state} driver's license: {number}"),
            format!("{state} license no. {number}"),
            format!("DL {number} ({state})"),
            format!("Operator's license {number}, {state}"),
        ] {
            assert_kind(&labelled, "drivers_license", High);
        }
        assert_none(
            &format!("{state} order reference {number} shipped"),
            "drivers_license",
        );
    }
    assert_kind("CDL: 0482913075", "drivers_license", High);
    assert_kind("Idaho DLN AB482913C", "drivers_license", High);
    assert_none("Texas license plate number 48291307", "drivers_license");
    assert_none("DL expires 05-12-2027", "drivers_license");
    assert_none("Driver's license: on file", "drivers_license");
    assert_none("the handler dl 48291307", "drivers_license");
}

#[test]
fn passwords_in_prose() {
    for text in [
        "The passphrase is: correct horse battery staple",
        "Passphrase: purple monkey dishwasher 42",
        "The passcode is 739184 for the door.",
        "The password for the HR portal is: Gr33nLeaf#7",
        "I'll send the file separately; decrypt with Bl4ckT0wer%",
        "Attached is the report. Use Quartz-8813 to open it.",
        "Open the attachment using Harbor!2291",
        "The zip password is \"river stone maple 88\"",
    ] {
        assert_kind(text, "password", Confidence::Medium);
    }
    for text in [
        "Please reset your password before Friday.",
        "use the stairs to open it",
        "Decrypt with the key we discussed by phone.",
        "The passphrase must be at least four words.",
        "Dial-in passcode: 482913 for the meeting",
        "The passphrase is: e.g. correct horse battery staple",
    ] {
        assert_not_reported(text, "password");
    }
}

#[test]
fn secrets_in_code_and_configuration() {
    for (text, kind) in [
        ("[db]\ndb_pass = Vx7!qLm29z\n", "password"),
        ("DB_PASSWORD=Kq82mZ!rt0w", "password"),
        ("dbPassword := \"Mk4r-92 lake river\"", "password"),
        ("export PGPASSWORD='Tz8#q monday'", "password"),
        ("if password == \"Tr0ub4dor&3\":", "password"),
        ("if (pwd.equals(\"Blue-Falcon-77\")) {", "password"),
        ("client_secret: 9fK2mQ7xL4vR8nT1pW6zY3bH", "api_token"),
        (
            "{\"client_secret\": \"9fK2mQ7xL4vR8nT1pW6zY3bH\"}",
            "api_token",
        ),
        ("api_key = \"a8F2 k9[Lm] 4Qz7 xR2v\"", "api_token"),
        ("token := \"b7Kq29LmX4vR8nT1pW6zYc\"", "api_token"),
        (
            "<add key=\"ApiKey\" value=\"Tq7mZ2kL9xR4vB8nW1pY\"/>",
            "api_token",
        ),
        (
            "<connection apiKey=\"Hn4mQ8xT2kL7vR9bW3pZ\" />",
            "api_token",
        ),
        ("SLACK_SIGNING_SECRET=8f3kQ2mZ7xL4vR9nT1pW", "api_token"),
    ] {
        assert_kind(text, kind, High);
    }
    for text in [
        "password=\nhost=db1.city.test\n",
        "api_key = your-api-key-here",
        "api_secret: <token>",
        "token=${SLACK_TOKEN}",
        "secret = changeme",
        "client_secret: xxxxxxxxxxxxxxxxxxxx",
        "api_key: ####################",
        "access_token = self.get_access_token()",
        "Thanks for the token of appreciation: a lovely gift basket.",
        "passport_no: 548213907",
        "AWS_ACCESS_KEY_ID=AKIAXXXXXXXXXXXXXXXX",
    ] {
        assert_not_reported(text, "password");
        assert_not_reported(text, "api_token");
    }
}

#[test]
fn token_families_and_their_placeholders() {
    for text in [
        "glpat-Qz7Lm2Vn8Rk4Tp1Wx6Yb",
        "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",
        "client secret Xk38Q~mZ2vR7nT1pW6zY3bHqL9xK4cJ5dF8gS0aE",
        "xoxe-1-My0xLTQ4MjE5MzA3NTI2MTQtOWYzYTdjMmUxYjhkNmY0YTBjOWU3YjVkM2YxYThjNmU0YjJk",
        "xapp-1-A0123QZ7LM2-4821930752614-9f3a7c2e1b8d6f4a0c9e7b5d3f1a8c6e",
        "STRIPE_KEY sk_test_51Hq7Lm2Vn8Rk4Tp1Wx6Yb3Hc9Jd5Fg0",
        "whsec_Qz7Lm2Vn8Rk4Tp1Wx6Yb3Hc9Jd5Fg0Ms2Na",
        "key-9f3a7c2e1b8d6f4a0c9e7b5d3f1a8c6e",
        "9f3a7c2e1b8d6f4a0c9e7b5d3f1a8c6e-us14",
        "npm_Qz7Lm2Vn8Rk4Tp1Wx6Yb3Hc9Jd5Fg0Ms2Na7",
    ] {
        assert_kind(text, "api_token", High);
    }
    for text in [
        "Stripe docs: sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "xoxp-123456789012-####",
        "glpat-xxxxxxxxxxxxxxxxxxxx",
        "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx",
        "GOCSPX-your-client-secret-goes-here0",
        "AKIAXXXXXXXXXXXXXXXX",
    ] {
        assert_none(text, "api_token");
    }
}

#[test]
fn iban_grouped_as_printed_and_templates() {
    for text in [
        "IBAN: GB29-NWBK-6016-1331-9268-19",
        "IBAN: GB29/NWBK/6016/1331/9268/19",
        "iban gb29 nwbk 6016 1331 9268 19",
        "IBAN DE89.3704.0044.0532.0130.00",
    ] {
        assert_kind(text, "iban", High);
    }
    // mod-97 fails with one digit changed.
    assert_none("IBAN: GB29-NWBK-6016-1331-9268-18", "iban");
    assert_none("Format: 9XX9-XX9-XX99", "medicare_mbi");
    assert_kind("Medicare MBI 1EG4-TE5-MK73", "medicare_mbi", High);
}

// ---- Issue 9: how far a label reaches, and which value it belongs to (context.rs) ----

#[test]
fn a_label_reaches_across_its_sentence_with_falling_confidence() {
    // Next to the value: high; across a long clause: medium (still reported); across a very
    // long one: low (listed, not acted on); beyond the sentence: nothing.
    assert_kind("SSN: 536228714", "us_ssn", Confidence::High);
    let long = "the employee's social security number, as it appears on the enrolment form we \
                received last week, is 536228714";
    assert_eq!(
        best(long, "us_ssn"),
        Some(Confidence::Medium),
        "{:?}",
        found(long)
    );
    let longer = format!(
        "the social security number {} is 536228714",
        "that the benefits office copied from the paper enrolment form, which the employee \
         filled in by hand and which we scanned and filed in the shared records folder on the \
         third floor"
    );
    assert_eq!(
        best(&longer, "us_ssn"),
        Some(Confidence::Low),
        "{:?}",
        found(&longer)
    );
    assert_none(
        "We filed the social security paperwork for the team last month. Reference 536228714.",
        "us_ssn",
    );
    // "label:" then a line break, the value starting the next line.
    assert_kind(
        "Social Security Number:\n    536228714\n",
        "us_ssn",
        Confidence::High,
    );
}

#[test]
fn a_label_belongs_to_the_value_next_to_it() {
    let t = "Warehouse bin code 412587391\nSSN: 536228714";
    let got = found(t);
    assert_eq!(
        got.iter().filter(|f| f.0 == "us_ssn").count(),
        1,
        "only the labelled number is an SSN: {got:?}"
    );
    assert!(
        got.iter().any(|f| f.0 == "us_ssn" && f.2.ends_with("8714")),
        "{got:?}"
    );
    // Another number between the label and a value takes the label.
    let t = "SSN 536228714, shelf 412587391";
    let got = found(t);
    assert!(
        !got.iter().any(|f| f.0 == "us_ssn" && f.2.ends_with("7391")),
        "{got:?}"
    );
}

#[test]
fn a_near_positive_label_outweighs_a_far_negative_one() {
    let n = card("5425", 16, 3);
    let grouped = group4(&n, " ");
    assert_kind(
        &format!("put the registration fee on the department card {grouped}, invoice to follow"),
        "credit_card",
        Confidence::Medium,
    );
    // The negative word nearer than any label still drops it.
    assert_none(
        &format!("invoice {n} for the registration fee"),
        "credit_card",
    );
}

#[test]
fn placeholder_pins_are_not_passwords() {
    assert_none("PIN: 1234", "password");
    assert_none("PIN: 0000", "password");
    assert_kind("Your PIN is 4821.", "password", Confidence::Medium);
}

#[test]
fn washington_older_licence_format() {
    assert_kind(
        "WA driver's license: DOE**JA482Q7",
        "drivers_license",
        Confidence::Medium,
    );
    assert_kind(
        "Driver's License No. SMITHJB512K7",
        "drivers_license",
        Confidence::Medium,
    );
    assert_none("Order reference SMITHJB512K7", "drivers_license");
}

#[test]
fn short_keywords_open_their_search_only_at_a_word_start() {
    // "tin" as a word (and as a capitalised hump) still opens the ITIN search.
    assert_kind("TIN: 912/70/1234", "us_itin", High);
    assert_kind("Our vendor TIN 912 / 70 / 1234 is on file", "us_itin", High);
    // Inside a word it does not: "meeting" is no ITIN word.
    assert_none("meeting 912/70/1234", "us_itin");
    assert_none("a waiting list 912/70/1234 setting", "us_itin");
    // "pin" in "opinion" labels no password.
    assert_none("my opinion: Xq7#bLm2vR", "password");
    // Where a short keyword starts a word.
    let b = b"meeting TIN empSSN x-pin 7pw";
    let at = |w: &str| {
        b.windows(w.len())
            .position(|x| x == w.as_bytes())
            .unwrap_or(0)
    };
    assert!(inside_word(b, at("ting")));
    assert!(!inside_word(b, at("TIN")));
    assert!(!inside_word(b, at("SSN")));
    assert!(!inside_word(b, at("pin")));
    assert!(inside_word(b, at("pw")));
    assert!(!inside_word(b, 0));
}

//! Validators: the checks that turn a candidate of the right shape into a value of the kind.
//!
//! A pattern file names its validator (`validator = "ssn"`); the names are the serde names of
//! [`Validator`]. A validator sees the whole text and the candidate span, so it can look at what
//! surrounds the value (an amount sign, the label before it), trim the span (trailing
//! punctuation after a password) or expand one hit into several values (the rows of a
//! credential table). Everything here works on bytes and never panics on odd input.

use serde::Deserialize;

/// The named validators a pattern can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validator {
    /// US Social Security number: area not 000/666/900-999, group not 00, serial not 0000, not
    /// a published or advertising number, not one digit repeated.
    Ssn,
    /// US Individual Taxpayer Identification Number: 9xx, group 50-65, 70-88, 90-92, 94-99.
    Itin,
    /// Payment card: 13-19 digits, Luhn, a known issuer prefix with a length it issues, the
    /// same separator between all groups, not a documented test number.
    CreditCard,
    /// ABA routing transit number: 3-7-1 checksum and a Federal Reserve prefix.
    Aba,
    /// IBAN: known country, that country's length, mod-97 check. Trims what follows the IBAN.
    Iban,
    /// National Provider Identifier: 10 digits, Luhn with the 80840 prefix.
    Npi,
    /// DEA registration number: registrant letter, letter or 9, 7 digits with the DEA checksum.
    Dea,
    /// Medicare Beneficiary Identifier character rules (dashes both present or both absent).
    Mbi,
    /// Plain Luhn check over the digits of the value (for custom patterns).
    Luhn,
    /// JSON Web Token: three base64url parts whose header decodes to JSON with "alg".
    Jwt,
    /// A disclosed password after a label: not masked, not a placeholder, not an English word
    /// in prose; trailing punctuation is trimmed.
    Password,
    /// A secret value (connection-string password): not masked, not a placeholder.
    Secret,
    /// A machine-generated token: enough distinct characters, no placeholder runs.
    Random,
    /// A bank account number after its label: not an amount, a year, or the routing number.
    BankAccount,
    /// An identifier (licence, passport, record number): not a date, not one digit repeated,
    /// not a counting sequence.
    Identifier,
    /// Expands a header line with user and password columns into one value per data row.
    CredentialTable,
}

impl Validator {
    /// Check the candidate `text[start..end]` and push the accepted value span(s) to `out`.
    pub fn apply(self, text: &[u8], start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
        let Some(value) = text.get(start..end) else {
            return;
        };
        // A number that is a piece of a longer dashed, dotted or slashed token is not a value
        // (number-trigger candidates are already checked; keyword-trigger ones are here).
        if matches!(self, Validator::Ssn | Validator::Itin) && super::is_fragment(text, start, end)
        {
            return;
        }
        let ok = match self {
            Validator::Ssn => ssn(value),
            Validator::Itin => itin(value),
            Validator::CreditCard => {
                if let Some(len) = credit_card_span(value)
                    && !super::is_fragment(text, start, start + len)
                {
                    out.push((start, start + len));
                }
                return;
            }
            Validator::Aba => aba(value),
            Validator::Iban => {
                if let Some(len) = iban(value) {
                    out.push((start, start + len));
                }
                return;
            }
            Validator::Npi => npi(value),
            Validator::Dea => dea(value),
            Validator::Mbi => mbi(value),
            Validator::Luhn => {
                let d = Digits::of(value);
                d.len() >= 2 && luhn(d.as_slice())
            }
            Validator::Jwt => jwt(value),
            Validator::Password => {
                if let Some(len) = password(text, start, end) {
                    out.push((start, start + len));
                }
                return;
            }
            Validator::Secret => secret(value),
            Validator::Random => random(value),
            Validator::BankAccount => bank_account(text, start, end),
            Validator::Identifier => identifier(value),
            Validator::CredentialTable => {
                credential_table(text, start, end, out);
                return;
            }
        };
        if ok {
            out.push((start, end));
        }
    }
}

/// Up to 32 digits of a value, without allocating.
struct Digits {
    buf: [u8; 32],
    len: usize,
    /// More digits than fit (the value is then never valid for the fixed-length checks).
    overflow: bool,
}

impl Digits {
    fn of(value: &[u8]) -> Digits {
        let mut d = Digits {
            buf: [0; 32],
            len: 0,
            overflow: false,
        };
        for &b in value {
            if b.is_ascii_digit() {
                match d.buf.get_mut(d.len) {
                    Some(slot) => {
                        *slot = b - b'0';
                        d.len += 1;
                    }
                    None => d.overflow = true,
                }
            }
        }
        d
    }

    fn len(&self) -> usize {
        if self.overflow { usize::MAX } else { self.len }
    }

    fn as_slice(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// The number made of digits `from..to` (for short fields only).
    fn num(&self, from: usize, to: usize) -> u32 {
        self.as_slice()
            .get(from..to)
            .unwrap_or(&[])
            .iter()
            .fold(0u32, |acc, &d| {
                acc.saturating_mul(10).saturating_add(u32::from(d))
            })
    }

    fn all_same(&self) -> bool {
        let s = self.as_slice();
        s.first().is_some_and(|f| s.iter().all(|d| d == f))
    }
}

/// Luhn (mod 10) over digit values, rightmost digit being the check digit.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Numbers that appear in print (the Woolworth wallet card, advertising, textbook examples).
const PUBLIC_SSNS: &[u32] = &[78_051_120, 219_099_999, 123_456_789, 457_555_462];

pub fn ssn(value: &[u8]) -> bool {
    let d = Digits::of(value);
    if d.len() != 9 || d.all_same() {
        return false;
    }
    let (area, group, serial) = (d.num(0, 3), d.num(3, 5), d.num(5, 9));
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && !PUBLIC_SSNS.contains(&d.num(0, 9))
}

pub fn itin(value: &[u8]) -> bool {
    let d = Digits::of(value);
    if d.len() != 9 {
        return false;
    }
    let group = d.num(3, 5);
    d.num(0, 1) == 9 && matches!(group, 50..=65 | 70..=88 | 90..=92 | 94..=99) && d.num(5, 9) != 0
}

/// Card numbers published by card networks and payment processors for testing.
const TEST_CARDS: &[&str] = &[
    "4111111111111111",
    "4242424242424242",
    "4012888888881881",
    "4222222222222",
    "4000056655665556",
    "4000000000000002",
    "4000000000009995",
    "5555555555554444",
    "5105105105105100",
    "5200828282828210",
    "2223003122003222",
    "378282246310005",
    "371449635398431",
    "378734493671000",
    "6011111111111117",
    "6011000990139424",
    "3530111333300000",
    "3566002020360505",
    "30569309025904",
    "38520000023237",
    "36227206271667",
    "6200000000000005",
];

/// Issuer of a card number by prefix, if the length is one that issuer uses.
fn card_issuer(d: &[u8]) -> Option<&'static str> {
    let n = d.len();
    let p = |k: usize| -> u32 { d.iter().take(k).fold(0u32, |a, &x| a * 10 + u32::from(x)) };
    let (p1, p2, p3, p4, p6) = (p(1), p(2), p(3), p(4), p(6));
    if p1 == 4 && matches!(n, 13 | 16 | 19) {
        return Some("visa");
    }
    if ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && n == 16 {
        return Some("mastercard");
    }
    if matches!(p2, 34 | 37) && n == 15 {
        return Some("amex");
    }
    if (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622126..=622925).contains(&p6))
        && (16..=19).contains(&n)
    {
        return Some("discover");
    }
    if (3528..=3589).contains(&p4) && (16..=19).contains(&n) {
        return Some("jcb");
    }
    if (((300..=305).contains(&p3) || p4 == 3095 || matches!(p2, 36 | 38 | 39)) && n == 14)
        || (((300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39)) && (16..=19).contains(&n))
    {
        return Some("diners");
    }
    if p2 == 62 && (16..=19).contains(&n) {
        return Some("unionpay");
    }
    None
}

/// Are all separators between the digit groups of `value` the same ("-", " ", ".", a tab,
/// " / ")? Mixed ones ("4111 1111-1111 1111", "536-22 4817") are not how anyone writes a
/// number.
fn one_separator(value: &[u8]) -> bool {
    let Some(a) = value.iter().position(u8::is_ascii_digit) else {
        return true;
    };
    let b = value.iter().rposition(u8::is_ascii_digit).unwrap_or(a);
    let mut first: Option<&[u8]> = None;
    for sep in value
        .get(a..=b)
        .unwrap_or(&[])
        .split(u8::is_ascii_digit)
        .filter(|s| !s.is_empty())
    {
        match first {
            None => first = Some(sep),
            Some(f) if f != sep => return false,
            Some(_) => {}
        }
    }
    true
}

pub fn credit_card(value: &[u8]) -> bool {
    // One kind of separator only: "4111 1111-1111 1111" is not how anyone writes a card.
    if !one_separator(value) {
        return false;
    }
    let d = Digits::of(value);
    if !(13..=19).contains(&d.len()) || d.all_same() {
        return false;
    }
    let digits = d.as_slice();
    if card_issuer(digits).is_none() || !luhn(digits) {
        return false;
    }
    let plain: String = digits.iter().map(|&x| char::from(b'0' + x)).collect();
    !TEST_CARDS.contains(&plain.as_str())
}

/// Length of the card number at the start of `value`: all of it, or, when that is not a card,
/// all but a short last group after a separator ("4539 1488 0343 6467 12/27": the regex takes
/// the month of the expiry date as a 19-digit card's last group).
fn credit_card_span(value: &[u8]) -> Option<usize> {
    if credit_card(value) {
        return Some(value.len());
    }
    let last = value.iter().rposition(|b| !b.is_ascii_digit())?;
    let tail = value.len() - last - 1;
    if !(1..=3).contains(&tail) {
        return None;
    }
    let cut = value
        .get(..=last)?
        .iter()
        .rposition(u8::is_ascii_digit)
        .map(|i| i + 1)?;
    credit_card(value.get(..cut)?).then_some(cut)
}

pub fn aba(value: &[u8]) -> bool {
    let d = Digits::of(value);
    if d.len() != 9 || d.all_same() {
        return false;
    }
    let s = d.as_slice();
    let prefix = d.num(0, 2);
    if !matches!(prefix, 0..=12 | 21..=32 | 61..=72 | 80) {
        return false;
    }
    let w = [3u32, 7, 1, 3, 7, 1, 3, 7, 1];
    let sum: u32 = s.iter().zip(w).map(|(&x, w)| u32::from(x) * w).sum();
    sum.is_multiple_of(10)
}

/// IBAN lengths per country (ISO 13616 registry).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HN", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MN", 20),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
    (b"YE", 30),
];

/// Length in bytes of the valid IBAN at the start of `value` (spaces allowed between groups),
/// or None. The IBAN must end at the end of `value` or before a space.
pub fn iban(value: &[u8]) -> Option<usize> {
    // Lower case too ("gb29 nwbk ..."): a person reads it as the same IBAN.
    let country = value.get(..2)?.to_ascii_uppercase();
    let want = IBAN_LENGTHS
        .iter()
        .find(|(c, _)| c.as_slice() == country.as_slice())
        .map(|&(_, n)| n)?;
    let mut chars = [0u8; 34];
    let mut n = 0;
    let mut end = 0;
    for (i, &b) in value.iter().enumerate() {
        // Groups as printed: spaces, dashes, slashes or dots between them.
        if matches!(b, b' ' | b'-' | b'/' | b'.') {
            continue;
        }
        if !b.is_ascii_alphanumeric() || n == want {
            break;
        }
        *chars.get_mut(n)? = b.to_ascii_uppercase();
        n += 1;
        end = i + 1;
    }
    if n != want {
        return None;
    }
    // The IBAN may not stop inside a word: "DE89...000X" is not this IBAN.
    if value.get(end).is_some_and(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let chars = chars.get(..n)?;
    if !chars.get(2..4)?.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let check = u32::from(chars[2] - b'0') * 10 + u32::from(chars[3] - b'0');
    if !(2..=98).contains(&check) {
        return None;
    }
    let mut rem: u32 = 0;
    for &c in chars.iter().skip(4).chain(chars.iter().take(4)) {
        if c.is_ascii_digit() {
            rem = (rem * 10 + u32::from(c - b'0')) % 97;
        } else if c.is_ascii_uppercase() {
            let v = u32::from(c - b'A') + 10;
            rem = (rem * 100 + v) % 97;
        } else {
            return None;
        }
    }
    (rem == 1).then_some(end)
}

pub fn npi(value: &[u8]) -> bool {
    let d = Digits::of(value);
    if d.len() != 10 || !matches!(d.num(0, 1), 1 | 2) || d.all_same() {
        return false;
    }
    let mut full = [8u8, 0, 8, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    for (slot, &x) in full.iter_mut().skip(5).zip(d.as_slice()) {
        *slot = x;
    }
    luhn(&full)
}

/// First letters of DEA numbers: registrant types.
const DEA_FIRST: &[u8] = b"ABCDEFGHJKLMPRSTUX";

pub fn dea(value: &[u8]) -> bool {
    let [a, b, rest @ ..] = value else {
        return false;
    };
    if !DEA_FIRST.contains(a) || !(b.is_ascii_uppercase() || *b == b'9') || rest.len() != 7 {
        return false;
    }
    if !rest.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let d: Vec<u32> = rest.iter().map(|&x| u32::from(x - b'0')).collect();
    if d.iter().take(6).all(|&x| x == 0) {
        return false;
    }
    let sum = d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5]);
    sum % 10 == d[6]
}

/// Letters an MBI may contain (S, L, O, I, B, Z are never used).
fn mbi_letter(b: u8) -> bool {
    b.is_ascii_uppercase() && !b"SLOIBZ".contains(&b)
}

pub fn mbi(value: &[u8]) -> bool {
    let dashes = value.iter().filter(|&&b| b == b'-').count();
    let chars: Vec<u8> = value.iter().copied().filter(|&b| b != b'-').collect();
    if chars.len() != 11 {
        return false;
    }
    if dashes != 0 && !(dashes == 2 && value.get(4) == Some(&b'-') && value.get(8) == Some(&b'-')) {
        return false;
    }
    let digit = |b: u8| b.is_ascii_digit();
    let alnum = |b: u8| digit(b) || mbi_letter(b);
    let c = &chars;
    (b'1'..=b'9').contains(&c[0])
        && mbi_letter(c[1])
        && alnum(c[2])
        && digit(c[3])
        && mbi_letter(c[4])
        && alnum(c[5])
        && digit(c[6])
        && mbi_letter(c[7])
        && mbi_letter(c[8])
        && digit(c[9])
        && digit(c[10])
        // A format template ("9XX9-XX9-XX99", "1XX1-XX1-XX11") is not an identifier.
        && !c.iter().filter(|b| b.is_ascii_uppercase()).all(|&b| b == b'X')
}

/// Decode unpadded base64url (also accepts the standard alphabet); None if malformed.
pub fn base64url_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in s {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

pub fn jwt(value: &[u8]) -> bool {
    let mut parts = value.split(|&b| b == b'.');
    let (Some(header), Some(payload), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if sig.len() < 16 {
        return false;
    }
    let Some(h) = base64url_decode(header) else {
        return false;
    };
    let Some(p) = base64url_decode(payload) else {
        return false;
    };
    let h = String::from_utf8_lossy(&h);
    let h = h.trim_start();
    h.starts_with('{') && h.contains("\"alg\"") && p.first() == Some(&b'{')
}

/// Words that follow "password" in prose or forms but are not passwords, and documentation
/// placeholders. Compared case-insensitively with the whole value.
const NOT_PASSWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "account",
    "again",
    "all",
    "also",
    "always",
    "an",
    "and",
    "anonymous",
    "any",
    "anything",
    "are",
    "as",
    "asked",
    "at",
    "attached",
    "authentication",
    "available",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "blank",
    "both",
    "but",
    "by",
    "can",
    "cannot",
    "case",
    "change",
    "changed",
    "changeme",
    "changes",
    "characters",
    "chosen",
    "correct",
    "could",
    "created",
    "current",
    "default",
    "did",
    "different",
    "disabled",
    "do",
    "does",
    "doesn't",
    "dummy",
    "each",
    "either",
    "empty",
    "enabled",
    "encrypted",
    "enter",
    "entered",
    "example",
    "expired",
    "expires",
    "false",
    "field",
    "file",
    "for",
    "forgotten",
    "from",
    "given",
    "go",
    "guest",
    "had",
    "has",
    "hash",
    "hashed",
    "have",
    "here",
    "hidden",
    "hint",
    "how",
    "if",
    "in",
    "incorrect",
    "invalid",
    "is",
    "it",
    "its",
    "just",
    "key",
    "known",
    "last",
    "least",
    "like",
    "login",
    "longer",
    "lost",
    "manager",
    "may",
    "mine",
    "missing",
    "more",
    "must",
    "my",
    "mypassword",
    "n/a",
    "na",
    "needed",
    "never",
    "new",
    "no",
    "none",
    "not",
    "nothing",
    "now",
    "null",
    "of",
    "old",
    "on",
    "one",
    "only",
    "optional",
    "or",
    "our",
    "pass",
    "passphrase",
    "passwd",
    "password",
    "passwords",
    "please",
    "policy",
    "private",
    "prompt",
    "protected",
    "provided",
    "pwd",
    "required",
    "requirements",
    "reset",
    "same",
    "saved",
    "secret",
    "secure",
    "see",
    "sent",
    "set",
    "should",
    "shown",
    "so",
    "some",
    "something",
    "still",
    "stored",
    "strong",
    "such",
    "supplied",
    "that",
    "the",
    "their",
    "then",
    "there",
    "these",
    "this",
    "to",
    "too",
    "true",
    "unchanged",
    "undefined",
    "unknown",
    "unless",
    "used",
    "user",
    "username",
    "using",
    "valid",
    "very",
    "was",
    "weak",
    "were",
    "what",
    "when",
    "which",
    "will",
    "with",
    "without",
    "would",
    "wrong",
    "xxx",
    "yes",
    "you",
    "your",
    "yourpassword",
    "your_password",
];

fn is_not_password_word(v: &[u8]) -> bool {
    NOT_PASSWORDS
        .iter()
        .any(|w| w.as_bytes().eq_ignore_ascii_case(v))
}

/// Masked (`********`, `xxxx1234`, `••••`) or a documentation placeholder (`<password>`,
/// `${DB_PASS}`, `{{secret}}`, `%s`).
fn masked_or_placeholder(v: &[u8]) -> bool {
    let Some(&first) = v.first() else {
        return true;
    };
    if matches!(first, b'<' | b'[' | b'{' | b'(' | b'$' | b'%')
        || matches!(v.last(), Some(b'>' | b']' | b'}'))
    {
        return true;
    }
    let text = String::from_utf8_lossy(v);
    let mask_chars = |c: char| matches!(c, '*' | '•' | '●' | '·' | '∙' | '#' | 'x' | 'X');
    if text.chars().all(|c| mask_chars(c) || c == '-' || c == '.') {
        return true;
    }
    // A run of mask characters is a partly masked value ("****1234", "xxxx-xx-1234").
    let mut run = 0;
    for c in text.chars() {
        if mask_chars(c) && c != '#' {
            run += 1;
            if run >= 3 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    is_not_password_word(v)
}

/// The value with trailing sentence punctuation and quotes removed.
fn trim_trailing_punct(v: &[u8]) -> &[u8] {
    let mut v = v;
    while let [rest @ .., last] = v {
        if matches!(last, b'.' | b',' | b';' | b':' | b')' | b'"' | b'\'' | b'`') {
            v = rest;
        } else {
            break;
        }
    }
    v
}

/// Looks like a password someone chose or was given rather than a word: letters and digits,
/// or a symbol inside, or capitals after the first letter.
fn password_like(v: &[u8]) -> bool {
    if v.len() < 6 {
        return false;
    }
    let letters = v.iter().filter(|b| b.is_ascii_alphabetic()).count();
    let digits = v.iter().filter(|b| b.is_ascii_digit()).count();
    let symbols = v.len() - letters - digits;
    let inner_caps = v.iter().skip(1).any(u8::is_ascii_uppercase);
    let lower = v.iter().any(u8::is_ascii_lowercase);
    (letters > 0 && (digits > 0 || symbols > 0)) || (inner_caps && lower)
}

/// Code, paths and URLs that follow `password =` in program text.
fn looks_like_code_or_path(v: &[u8]) -> bool {
    let s = String::from_utf8_lossy(v);
    if s.contains("://") || s.contains('(') || s.starts_with('/') || s.starts_with('~') {
        return true;
    }
    // An expression cut at an opening bracket: `os.environ["DB_PASSWORD"]`, `cfg{`.
    if s.ends_with(['[', '{']) {
        return true;
    }
    if s.starts_with("./") || s.starts_with("\\\\") || s.contains("->") || s.contains("::") {
        return true;
    }
    // Types and references in program text: `*const u16`, `&str`, `Option<&'a [u8]>`.
    if s.starts_with('&') || s.starts_with('*') || s.contains('<') || s.contains('>') {
        return true;
    }
    // CONSTANT_OR_TYPE_NAMES.
    if s.contains('_')
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    {
        return true;
    }
    // An address is where a password is sent, not the password ("...'s password:").
    if let Some((local, domain)) = s.split_once('@')
        && !local.is_empty()
        && domain.contains('.')
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '\'' | '"'))
    {
        return true;
    }
    // Dotted identifiers: `self.password`, `config.db.pass`.
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
}

/// How far validators look around a value: they never scan a whole text per candidate.
const SCAN_LIMIT: usize = 256;

/// Up to SCAN_LIMIT bytes of `text` from `at`.
fn bounded_after(text: &[u8], at: usize) -> &[u8] {
    text.get(at..(at + SCAN_LIMIT).min(text.len()))
        .unwrap_or(&[])
}

/// Accepted length of a password value at `text[start..end]`, or None.
pub fn password(text: &[u8], start: usize, end: usize) -> Option<usize> {
    let raw = text.get(start..end)?;
    let v = trim_trailing_punct(raw);
    if v.len() < 3 || masked_or_placeholder(v) || looks_like_code_or_path(v) {
        return None;
    }
    // A call or a generic right after the value: `password = hash(...)`, `pw: Vec<u8>`.
    if matches!(text.get(start + v.len()), Some(b'(' | b'<' | b'[')) {
        return None;
    }
    // "Password: X" / "pwd=X" is a form; "the password is X" is prose.
    let before = text.get(start.saturating_sub(SCAN_LIMIT)..start)?;
    let sep = before
        .iter()
        .rev()
        .find(|&&b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'\'' | b'`'));
    let structured = matches!(sep, Some(b':' | b'='));
    let all_digits = v.iter().all(u8::is_ascii_digit);
    let ok = if structured {
        if password_like(v) || (all_digits && v.len() >= 4) {
            true
        } else {
            // A plain word counts when it stands alone at the end of its line.
            let rest = bounded_after(text, start + v.len());
            let line_rest = rest.split(|&b| b == b'\n').next().unwrap_or(&[]);
            v.len() >= 4
                && line_rest
                    .iter()
                    .all(|b| b.is_ascii_whitespace() || matches!(b, b'.' | b'"' | b'\''))
        }
    } else {
        // In a sentence, a closing "!" or "?" is punctuation ("Password protected!").
        let core = v
            .strip_suffix(b"!")
            .or_else(|| v.strip_suffix(b"?"))
            .unwrap_or(v);
        password_like(core) && !is_not_password_word(core)
    };
    ok.then_some(v.len())
}

pub fn secret(value: &[u8]) -> bool {
    let v = trim_trailing_punct(value);
    v.len() >= 3 && !masked_or_placeholder(v)
}

/// A machine-generated token: not a placeholder of one repeated character, not a counting run,
/// enough distinct characters for its length.
pub fn random(value: &[u8]) -> bool {
    // The body after a vendor prefix such as `ghp_` or `sk_live_`.
    let body = match value.iter().rposition(|&b| b == b'_') {
        Some(i) if i < 12 => value.get(i + 1..).unwrap_or(&[]),
        _ => value,
    };
    if body.len() < 8 {
        return false;
    }
    let mut seen = [false; 256];
    for &b in body {
        seen[usize::from(b)] = true;
    }
    let distinct = seen.iter().filter(|&&s| s).count();
    if distinct < (body.len() / 4).clamp(4, 12) {
        return false;
    }
    let lower = String::from_utf8_lossy(body).to_ascii_lowercase();
    if [
        "xxxx",
        "0000",
        "your",
        "example",
        "placeholder",
        "redacted",
        "token",
    ]
    .iter()
    .any(|p| lower.contains(p))
    {
        return false;
    }
    // Six ascending characters in a row ("123456", "abcdef") do not happen in real tokens.
    let mut run = 1;
    for w in body.windows(2) {
        if w[1] == w[0].wrapping_add(1) {
            run += 1;
            if run >= 6 {
                return false;
            }
        } else {
            run = 1;
        }
    }
    true
}

/// A calendar date written as 8 digits (YYYYMMDD or MMDDYYYY).
fn looks_like_date(d: &[u8]) -> bool {
    if d.len() != 8 {
        return false;
    }
    let n = |a: usize, b: usize| {
        d.get(a..b)
            .unwrap_or(&[])
            .iter()
            .fold(0u32, |acc, &x| acc * 10 + u32::from(x))
    };
    let ymd = (1900..=2099).contains(&n(0, 4))
        && (1..=12).contains(&n(4, 6))
        && (1..=31).contains(&n(6, 8));
    let mdy = (1..=12).contains(&n(0, 2))
        && (1..=31).contains(&n(2, 4))
        && (1900..=2099).contains(&n(4, 8));
    ymd || mdy
}

/// Consecutive counting digits ("123456789", "987654321").
/// 1234, 98765, 567890: a counting run, the digits people type as a placeholder.
fn counting(d: &[u8]) -> bool {
    d.len() >= 4
        && (d.windows(2).all(|w| w[1] == (w[0] + 1) % 10)
            || d.windows(2).all(|w| (w[1] + 1) % 10 == w[0]))
}

pub fn identifier(value: &[u8]) -> bool {
    let d = Digits::of(value);
    if d.len() < 4 || d.len() == usize::MAX {
        return false;
    }
    !(d.all_same()
        || counting(d.as_slice())
        || (d.len() == value.len() && looks_like_date(d.as_slice())))
}

/// Labels that name a routing number: a value right after one is not the account number.
const ROUTING_LABELS: &[&str] = &["routing", "aba", "rtn", "transit", "swift", "sort code"];
const ACCOUNT_LABELS: &[&str] = &["account", "acct", "a/c", "dda", "checking", "savings"];

pub fn bank_account(text: &[u8], start: usize, end: usize) -> bool {
    let Some(value) = text.get(start..end) else {
        return false;
    };
    let d = Digits::of(value);
    if d.len() < 4 || d.len() > 17 || d.all_same() || counting(d.as_slice()) {
        return false;
    }
    if d.len() == 4 && (1900..=2099).contains(&d.num(0, 4)) {
        return false;
    }
    if d.len() == 8 && looks_like_date(d.as_slice()) {
        return false;
    }
    // Amounts: "$1234", "1234.56", "1,234".
    let before = text
        .get(start.saturating_sub(SCAN_LIMIT)..start)
        .unwrap_or(&[]);
    let prev = before.iter().rev().find(|b| !b.is_ascii_whitespace());
    if matches!(prev, Some(b'$' | b'#' | b'+')) && prev == before.last() {
        return false;
    }
    if matches!(prev, Some(b'$')) {
        return false;
    }
    // "1234.56", "1,234": an amount. A comma before more than 3 digits is the next cell of a
    // CSV row ("58888327713,9223527"), not a thousands separator.
    let after = text.get(end..).unwrap_or(&[]);
    if let [sep @ (b'.' | b','), rest @ ..] = after {
        let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 && (*sep == b'.' || digits <= 3) {
            return false;
        }
    }
    // The nearest label before the value on its line decides what the number is.
    let near_start = start.saturating_sub(48);
    let from = text
        .get(near_start..start)
        .and_then(|b| b.iter().rposition(|&c| c == b'\n'))
        .map_or(near_start, |p| near_start + p + 1);
    let mut head = [0u8; 48];
    let src = text.get(from..start).unwrap_or(&[]);
    let n = src.len().min(head.len());
    for (h, c) in head.iter_mut().zip(src) {
        *h = c.to_ascii_lowercase();
    }
    let head = head.get(..n).unwrap_or(&[]);
    let last = |labels: &[&str]| {
        labels
            .iter()
            .filter_map(|l| memchr::memmem::rfind(head, l.as_bytes()))
            .max()
    };
    match (last(ROUTING_LABELS), last(ACCOUNT_LABELS)) {
        (Some(r), Some(a)) => a > r,
        (Some(_), None) => false,
        _ => true,
    }
}

/// Header cells that name the password column and the user column of a credential table.
fn is_password_header(cell: &[u8]) -> bool {
    let c = String::from_utf8_lossy(cell).to_ascii_lowercase();
    let c = c.trim_matches(|ch: char| !ch.is_ascii_alphanumeric());
    matches!(
        c,
        "password"
            | "passwd"
            | "pwd"
            | "pass"
            | "pw"
            | "passcode"
            | "pin"
            | "initial password"
            | "temp password"
            | "temporary password"
            | "new password"
            | "default password"
    )
}

fn is_user_header(cell: &[u8]) -> bool {
    let c = String::from_utf8_lossy(cell).to_ascii_lowercase();
    let c = c.trim_matches(|ch: char| !ch.is_ascii_alphanumeric());
    matches!(
        c,
        "user"
            | "username"
            | "user name"
            | "userid"
            | "user id"
            | "user_id"
            | "uid"
            | "login"
            | "login id"
            | "logon"
            | "account"
            | "account name"
            | "email"
            | "e-mail"
            | "email address"
            | "sam account"
            | "samaccountname"
            | "id"
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Delim {
    Byte(u8),
    /// Two or more spaces (an aligned plain-text table).
    Spaces,
}

/// Cells of one line as trimmed byte ranges (relative to `base`).
fn split_cells(line: &[u8], base: usize, delim: Delim, out: &mut Vec<(usize, usize)>) {
    out.clear();
    let mut push = |s: usize, e: usize| {
        let cell = line.get(s..e).unwrap_or(&[]);
        let lead = cell.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let trail = cell
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        let (cs, ce) = (s + lead, e.saturating_sub(trail).max(s + lead));
        out.push((base + cs, base + ce));
    };
    match delim {
        Delim::Byte(d) => {
            let mut s = 0;
            for (i, &b) in line.iter().enumerate() {
                if b == d {
                    push(s, i);
                    s = i + 1;
                }
            }
            push(s, line.len());
        }
        Delim::Spaces => {
            let mut s = 0;
            let mut i = 0;
            // Leading indentation is not a cell boundary.
            while line.get(i).is_some_and(|&b| b == b' ' || b == b'\t') {
                i += 1;
                s = i;
            }
            while i < line.len() {
                if line[i] == b'\t' || (line[i] == b' ' && line.get(i + 1) == Some(&b' ')) {
                    let gap_start = i;
                    while line.get(i).is_some_and(|&b| b == b' ' || b == b'\t') {
                        i += 1;
                    }
                    if i < line.len() {
                        push(s, gap_start);
                        s = i;
                    }
                } else {
                    i += 1;
                }
            }
            let end = line
                .iter()
                .rposition(|b| !b.is_ascii_whitespace())
                .map_or(s, |p| p + 1);
            if end > s {
                push(s, end);
            }
        }
    }
}

/// Longest header line and data row of a credential table.
const MAX_HEADER: usize = 400;
const MAX_ROW: usize = 2_000;

/// Largest number of data rows read from one table.
const MAX_TABLE_ROWS: usize = 10_000;

/// Expand a header hit ("password" in `user,password`) into one span per data row, covering
/// the row's user cell through its password cell.
pub fn credential_table(text: &[u8], start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    // The header line, if it is at most MAX_HEADER bytes long.
    let back = start.saturating_sub(MAX_HEADER);
    let ls = match text
        .get(back..start)
        .and_then(|b| b.iter().rposition(|&c| c == b'\n'))
    {
        Some(p) => back + p + 1,
        None if back == 0 => 0,
        None => return,
    };
    let ahead = (ls + MAX_HEADER).min(text.len());
    let le = match text
        .get(end..ahead)
        .and_then(|b| b.iter().position(|&c| c == b'\n'))
    {
        Some(p) => end + p,
        None if ahead == text.len() => text.len(),
        None => return,
    };
    let Some(header) = text.get(ls..le) else {
        return;
    };
    let delim = [b'\t', b'|', b';', b',']
        .into_iter()
        .find(|d| header.contains(d))
        .map(Delim::Byte)
        .unwrap_or(Delim::Spaces);
    let mut cells = Vec::new();
    split_cells(header, ls, delim, &mut cells);
    if !(2..=40).contains(&cells.len()) {
        return;
    }
    let cell = |r: (usize, usize)| text.get(r.0..r.1).unwrap_or(&[]);
    // The hit must be the password header cell itself, not a word in a sentence.
    let Some(pw_col) = cells
        .iter()
        .position(|&c| c.0 <= start && end <= c.1 && is_password_header(cell(c)))
    else {
        return;
    };
    let Some(user_col) = cells.iter().position(|&c| is_user_header(cell(c))) else {
        return;
    };
    let ncols = cells.len();
    let mut pos = le + 1;
    let mut rows = 0;
    let mut row_cells = Vec::new();
    while pos < text.len() && rows < MAX_TABLE_ROWS {
        let ahead = (pos + MAX_ROW).min(text.len());
        let line_end = match text
            .get(pos..ahead)
            .and_then(|b| b.iter().position(|&c| c == b'\n'))
        {
            Some(p) => pos + p,
            None if ahead == text.len() => text.len(),
            // A row this long is not a credential table's.
            None => break,
        };
        let Some(line) = text.get(pos..line_end) else {
            break;
        };
        let next = line_end + 1;
        // Rule lines of text and Markdown tables: "----+----", "|---|---|".
        if !line.is_empty()
            && line
                .iter()
                .all(|b| matches!(b, b'-' | b'=' | b'+' | b'|' | b':' | b' ' | b'\t' | b'\r'))
        {
            pos = next;
            continue;
        }
        split_cells(line, pos, delim, &mut row_cells);
        let fits =
            row_cells.len() == ncols || (delim != Delim::Spaces && row_cells.len() == ncols + 1);
        if !fits {
            break;
        }
        let (Some(&u), Some(&p)) = (row_cells.get(user_col), row_cells.get(pw_col)) else {
            break;
        };
        let (uv, pv) = (cell(u), cell(p));
        // Empty cells end the table; so does another header row (each row is read once).
        if uv.is_empty() || pv.is_empty() || is_password_header(pv) {
            break;
        }
        rows += 1;
        if pv.contains(&b' ') || masked_or_placeholder(pv) {
            pos = next;
            continue;
        }
        out.push((u.0.min(p.0), u.1.max(p.1)));
        pos = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: Validator, s: &str) -> bool {
        let mut out = Vec::new();
        v.apply(s.as_bytes(), 0, s.len(), &mut out);
        !out.is_empty()
    }

    #[test]
    fn luhn_known_values() {
        let d = |s: &str| s.bytes().map(|b| b - b'0').collect::<Vec<_>>();
        assert!(luhn(&d("79927398713")));
        assert!(!luhn(&d("79927398710")));
    }

    #[test]
    fn ssn_ranges() {
        assert!(ssn(b"536-22-1234"));
        assert!(ssn(b"536221234"));
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "999-12-3456",
            "536-00-1234",
            "536-22-0000",
            "078-05-1120",
            "219-09-9999",
            "123-45-6789",
            "111-11-1111",
            "53622123",
        ] {
            assert!(!ssn(bad.as_bytes()), "{bad} must be rejected");
        }
    }

    #[test]
    fn itin_groups() {
        for good in [
            "912-70-1234",
            "912-50-1234",
            "912-65-1234",
            "987-88-1234",
            "900-90-1234",
            "911-94-1234",
            "911-99-1234",
        ] {
            assert!(itin(good.as_bytes()), "{good}");
        }
        for bad in [
            "912-49-1234",
            "912-66-1234",
            "912-69-1234",
            "912-89-1234",
            "912-93-1234",
            "812-70-1234",
            "912-70-0000",
        ] {
            assert!(!itin(bad.as_bytes()), "{bad}");
        }
    }

    /// A Luhn-valid number from a prefix, padded to `len` digits.
    pub(crate) fn make_card(prefix: &str, len: usize) -> String {
        let mut d: Vec<u8> = prefix.bytes().map(|b| b - b'0').collect();
        let mut i = 0u8;
        while d.len() < len - 1 {
            d.push((i * 7 + 3) % 10);
            i += 1;
        }
        for check in 0..10 {
            let mut t = d.clone();
            t.push(check);
            if luhn(&t) {
                return t.iter().map(|&x| char::from(b'0' + x)).collect();
            }
        }
        unreachable!()
    }

    #[test]
    fn card_issuers_and_lengths() {
        for (prefix, len) in [
            ("4", 16),
            ("4", 13),
            ("4", 19),
            ("51", 16),
            ("55", 16),
            ("2221", 16),
            ("2720", 16),
            ("34", 15),
            ("37", 15),
            ("6011", 16),
            ("65", 16),
            ("644", 19),
            ("3528", 16),
            ("3589", 19),
            ("36", 14),
            ("300", 14),
            ("62", 16),
        ] {
            let n = make_card(prefix, len);
            assert!(credit_card(n.as_bytes()), "prefix {prefix} len {len}");
        }
        for (prefix, len) in [
            ("51", 15),
            ("34", 16),
            ("2721", 16),
            ("2220", 16),
            ("1", 16),
            ("9", 16),
            ("7", 16),
            ("4", 15),
        ] {
            let n = make_card(prefix, len);
            assert!(
                !credit_card(n.as_bytes()),
                "prefix {prefix} len {len} must fail"
            );
        }
        // Luhn-invalid
        let n = make_card("4", 16);
        let mut b = n.into_bytes();
        b[15] = b'0' + (b[15] - b'0' + 1) % 10;
        assert!(!credit_card(&b));
        // mixed separators, documented test number
        assert!(!credit_card(b"4539 1488-0343 6467"));
        assert!(credit_card(b"4539 1488 0343 6467"));
        assert!(!credit_card(b"4242 4242 4242 4242"));
    }

    #[test]
    fn aba_checksum_and_prefix() {
        assert!(aba(b"021000021"));
        assert!(aba(b"011000015"));
        assert!(aba(b"122105155"));
        assert!(!aba(b"021000022"));
        // checksum-valid but prefix 13 (not a Federal Reserve district)
        assert!(!aba(b"130000007"));
        assert!(!aba(b"000000000"));
    }

    #[test]
    fn iban_countries_and_check() {
        assert_eq!(iban(b"DE89370400440532013000"), Some(22));
        assert_eq!(iban(b"DE89 3704 0044 0532 0130 00"), Some(27));
        assert_eq!(iban(b"GB29 NWBK 6016 1331 9268 19 next"), Some(27));
        assert!(iban(b"GB82WEST12345698765432").is_some());
        assert!(iban(b"NO9386011117947").is_some());
        assert!(iban(b"DE89370400440532013001").is_none());
        assert!(iban(b"DE8937040044053201300").is_none());
        assert!(iban(b"QQ89370400440532013000").is_none());
        assert!(iban(b"DE89370400440532013000X").is_none());
    }

    #[test]
    fn npi_luhn_80840() {
        assert!(npi(b"1234567893"));
        assert!(!npi(b"1234567890"));
        assert!(!npi(b"3234567893"));
    }

    #[test]
    fn dea_checksum() {
        // 1+3+5 + 2*(2+4+6) = 33 -> check digit 3
        assert!(dea(b"AB1234563"));
        assert!(dea(b"F91234563"));
        assert!(!dea(b"AB1234564"));
        assert!(!dea(b"IB1234563"));
        assert!(!dea(b"AB123456"));
    }

    #[test]
    fn mbi_rules() {
        assert!(mbi(b"1EG4TE5MK73"));
        assert!(mbi(b"1EG4-TE5-MK73"));
        assert!(!mbi(b"1EG4-TE5MK73"));
        assert!(!mbi(b"0EG4TE5MK73"));
        assert!(!mbi(b"1SG4TE5MK73"));
        assert!(!mbi(b"1EG4TE5MKZ3"));
        assert!(!mbi(b"1EGATE5MK73"));
    }

    #[test]
    fn jwt_header_must_have_alg() {
        let good = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl";
        assert!(jwt(good.as_bytes()));
        // header {"typ":"x"}
        let bad = "eyJ0eXAiOiJ4In0.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl";
        assert!(!jwt(bad.as_bytes()));
    }

    #[test]
    fn password_values() {
        let p = |s: &str, at: &str| {
            let start = s.find(at).unwrap();
            password(s.as_bytes(), start, start + at.len())
        };
        assert_eq!(p("Password: Tr0ub4dor&3", "Tr0ub4dor&3"), Some(11));
        assert_eq!(p("Password: sunshine\n", "sunshine"), Some(8));
        assert_eq!(p("your password is Summer2024.", "Summer2024."), Some(10));
        assert_eq!(p("the password is incorrect", "incorrect"), None);
        assert_eq!(p("Password: ********", "********"), None);
        assert_eq!(p("password: <your-password>", "<your-password>"), None);
        assert_eq!(p("password = getpass()", "getpass()"), None);
        assert_eq!(p("password: required for login", "required"), None);
        assert_eq!(p("password: sunshine and more", "sunshine"), None);
        assert_eq!(p("password: changeme", "changeme"), None);
    }

    #[test]
    fn random_tokens() {
        assert!(random(b"ghp_R8x2Lq9ZtVb3Nw7Ke4Hs1Pm6Yc0Ja5Ud2Gf8"));
        assert!(!random(b"ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
        assert!(!random(b"ghp_1234567890abcdefghijklmnopqrstuvwxyz"));
    }

    #[test]
    fn identifiers() {
        assert!(identifier(b"48213907"));
        assert!(!identifier(b"20020822"));
        assert!(!identifier(b"11111111"));
        assert!(!identifier(b"123456789"));
    }

    #[test]
    fn bank_account_label_and_amounts() {
        let t = b"Routing: 021000021 Account: 48213907";
        assert!(bank_account(t, 28, 36));
        assert!(!bank_account(t, 9, 18));
        assert!(!bank_account(b"balance $ 4821.33", 10, 14));
        assert!(!bank_account(b"account 4821.33", 8, 12));
        assert!(!bank_account(b"account 2002", 8, 12));
        assert!(!bank_account(b"account 48213,907", 8, 13));
        // The next cell of a CSV row is not the rest of an amount.
        assert!(bank_account(b"Ann,021000021,48213907,9223527", 14, 22));
    }

    #[test]
    fn credential_table_rows() {
        let t = "user,password,dept\njdoe,Winter2024!,IT\nasmith,Spring#99,HR\n\nbye";
        let hit = t.find("password").unwrap();
        let mut out = Vec::new();
        credential_table(t.as_bytes(), hit, hit + 8, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(&t[out[0].0..out[0].1], "jdoe,Winter2024!");
        // a sentence mentioning a password is no table header
        let t = "Please send the user, password, and the rest\njdoe,x,y\n";
        let hit = t.find("password").unwrap();
        let mut out = Vec::new();
        credential_table(t.as_bytes(), hit, hit + 8, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn validators_never_panic_on_odd_input() {
        let all = [
            Validator::Ssn,
            Validator::Itin,
            Validator::CreditCard,
            Validator::Aba,
            Validator::Iban,
            Validator::Npi,
            Validator::Dea,
            Validator::Mbi,
            Validator::Luhn,
            Validator::Jwt,
            Validator::Password,
            Validator::Secret,
            Validator::Random,
            Validator::BankAccount,
            Validator::Identifier,
            Validator::CredentialTable,
        ];
        let inputs: [&[u8]; 7] = [
            b"",
            b"\xff\xfe",
            b"99999999999999999999999999999999999999999999",
            b"password\n",
            b"..",
            b"\n\n\n",
            "é€password,user\n€,€".as_bytes(),
        ];
        for v in all {
            for i in inputs {
                let mut out = Vec::new();
                for s in 0..=i.len() {
                    for e in s..=i.len() {
                        v.apply(i, s, e, &mut out);
                    }
                }
                v.apply(i, 5, 2, &mut out);
                v.apply(i, 0, 1000, &mut out);
            }
        }
    }

    #[test]
    fn ok_helper_works() {
        assert!(ok(Validator::Ssn, "536-22-1234"));
        assert!(!ok(Validator::Ssn, "666-22-1234"));
    }
}

//! Masking of sensitive values: logs, JSON, notifications and test output only ever carry a
//! masked form.

/// Longest masked prefix shown: a long value (a private key, a token) is shortened to `…`
/// plus this many stars, so a sample stays one short line and does not reveal the length.
const MAX_MASKED_PREFIX: usize = 24;

/// Mask `value` so that at most its last 4 characters are in clear (fewer for short values:
/// never more than half of them). Separators keep their place in short values so a reviewer
/// sees the shape (`***-**-6789`); control characters are dropped.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().filter(|c| !c.is_control()).collect();
    let n = chars.len();
    let clear = 4.min(n / 2);
    let hidden = n - clear;
    let mut out = String::with_capacity(n.min(MAX_MASKED_PREFIX + 8));
    if hidden > MAX_MASKED_PREFIX {
        out.push('…');
        out.extend(std::iter::repeat_n('*', MAX_MASKED_PREFIX));
    } else {
        for c in &chars[..hidden] {
            out.push(if c.is_alphanumeric() { '*' } else { *c });
        }
    }
    out.extend(&chars[hidden..]);
    out
}

/// Kinds whose value is a secret that works in part (a password, a key): no character of them
/// is shown, only stars.
const SECRET_KINDS: &[&str] = &["password", "credential_list", "private_key"];

/// Mask a value of `kind`: [`mask`], or all stars for secrets.
pub fn mask_kind(kind: &str, value: &str) -> String {
    if SECRET_KINDS.contains(&kind) {
        "********".to_string()
    } else {
        mask(value)
    }
}

#[cfg(test)]
mod tests {
    use super::{mask, mask_kind};

    #[test]
    fn secrets_show_nothing() {
        assert_eq!(mask_kind("password", "Winter2024!"), "********");
        assert_eq!(mask_kind("us_ssn", "123-45-6789"), "***-**-6789");
    }

    #[test]
    fn keeps_only_last_four() {
        assert_eq!(mask("123-45-6789"), "***-**-6789");
        assert_eq!(mask("4111 1111 1111 1111"), "**** **** **** 1111");
    }

    #[test]
    fn short_values_reveal_at_most_half() {
        assert_eq!(mask("abc"), "**c");
        assert_eq!(mask("hunter2"), "****er2");
        assert_eq!(mask(""), "");
    }

    #[test]
    fn long_values_are_shortened() {
        let key = "AKIA".to_string() + &"Q".repeat(40) + "WXYZ";
        let m = mask(&key);
        assert_eq!(m, "…************************WXYZ");
        assert!(!m.contains('Q'));
    }
}

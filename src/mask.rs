//! Masking of sensitive values: logs, JSON, notifications and test output only ever carry a
//! masked form.

/// Mask `value` so that at most its last 4 characters are in clear (fewer for short values:
/// never more than half of them). Whitespace inside is folded so a masked key stays one line.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().filter(|c| !c.is_control()).collect();
    let n = chars.len();
    let clear = 4.min(n / 2);
    let mut out = String::with_capacity(n);
    for (i, c) in chars.iter().enumerate() {
        if i + clear >= n {
            out.push(*c);
        } else if c.is_whitespace() {
            out.push(' ');
        } else {
            out.push('*');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn keeps_only_last_four() {
        assert_eq!(mask("123-45-6789"), "*******6789");
        assert_eq!(mask("4111 1111 1111 1111"), "**** **** **** 1111");
    }

    #[test]
    fn short_values_reveal_at_most_half() {
        assert_eq!(mask("abc"), "**c");
        assert_eq!(mask("hunter2"), "****er2");
        assert_eq!(mask(""), "");
    }
}

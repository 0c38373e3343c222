//! RTF to text. Written by hand: the RTF crates on crates.io are either unmaintained or built
//! for rendering; the DLP only needs the visible text, which a small tokenizer gives.

use super::Ctx;

/// Deepest group nesting followed; deeper groups are skipped (as text nobody reads).
const MAX_GROUP_DEPTH: usize = 256;

/// Destinations whose content is not document text.
const SKIP_DESTINATIONS: &[&str] = &[
    "fonttbl",
    "colortbl",
    "stylesheet",
    "info",
    "pict",
    "object",
    "objdata",
    "themedata",
    "colorschememapping",
    "datastore",
    "latentstyles",
    "listtable",
    "listoverridetable",
    "rsidtbl",
    "generator",
    "xmlnstbl",
    "filetbl",
    "revtbl",
];

pub fn extract(ctx: &mut Ctx<'_>, location: &str, data: &[u8]) {
    let text = rtf_to_text(data);
    ctx.emit_text(location, &text);
}

#[derive(Clone, Copy)]
struct Group {
    skip: bool,
    /// Characters to drop after a `\uN` (the ANSI fallback), from `\ucN`.
    uc: usize,
}

/// The visible text of an RTF document (headers, footers and footnotes included). Nesting
/// deeper than [`MAX_GROUP_DEPTH`] is skipped without recursion.
pub fn rtf_to_text(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() / 2);
    let mut stack: Vec<Group> = Vec::new();
    let mut group = Group { skip: false, uc: 1 };
    let mut fallback_to_skip = 0usize;
    let mut i = 0usize;
    let mut pending_star = false;
    let mut group_start = false;
    while i < data.len() {
        let b = data[i];
        match b {
            b'{' => {
                if stack.len() >= MAX_GROUP_DEPTH {
                    // Too deep: skip this group's content by counting braces.
                    let mut depth = 0usize;
                    while i < data.len() {
                        match data[i] {
                            b'{' => depth += 1,
                            b'}' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            b'\\' => i += 1,
                            _ => {}
                        }
                        i += 1;
                    }
                    i += 1;
                    continue;
                }
                stack.push(group);
                group_start = true;
                pending_star = false;
                i += 1;
                continue;
            }
            b'}' => {
                group = stack.pop().unwrap_or(Group { skip: false, uc: 1 });
                group_start = false;
                i += 1;
                continue;
            }
            b'\\' => {
                i += 1;
                let Some(&c) = data.get(i) else { break };
                if c.is_ascii_alphabetic() {
                    let start = i;
                    while i < data.len() && data[i].is_ascii_alphabetic() && i - start < 32 {
                        i += 1;
                    }
                    let word = std::str::from_utf8(&data[start..i]).unwrap_or("");
                    let num_start = i;
                    if i < data.len() && data[i] == b'-' {
                        i += 1;
                    }
                    while i < data.len() && data[i].is_ascii_digit() && i - num_start < 11 {
                        i += 1;
                    }
                    let param: Option<i32> = std::str::from_utf8(&data[num_start..i])
                        .ok()
                        .and_then(|s| s.parse().ok());
                    if i < data.len() && data[i] == b' ' {
                        i += 1;
                    }
                    let first_in_group = group_start;
                    group_start = false;
                    if (first_in_group || pending_star) && SKIP_DESTINATIONS.contains(&word) {
                        group.skip = true;
                    }
                    if pending_star {
                        // An unknown `\*\destination`: ignorable by definition.
                        group.skip = true;
                        pending_star = false;
                    }
                    if group.skip {
                        continue;
                    }
                    match word {
                        "par" | "line" | "row" | "sect" | "page" => out.push('\n'),
                        "tab" | "cell" => out.push('\t'),
                        "emdash" => out.push('—'),
                        "endash" => out.push('–'),
                        "lquote" | "rquote" => out.push('\''),
                        "ldblquote" | "rdblquote" => out.push('"'),
                        "bullet" => out.push('•'),
                        "uc" => group.uc = param.unwrap_or(1).clamp(0, 8) as usize,
                        "u" => {
                            if let Some(n) = param {
                                let code = if n < 0 { n + 65536 } else { n } as u32;
                                out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                                fallback_to_skip = group.uc;
                            }
                        }
                        _ => {}
                    }
                    continue;
                }
                group_start = false;
                match c {
                    b'*' => pending_star = true,
                    b'\'' => {
                        let hex = data
                            .get(i + 1..i + 3)
                            .and_then(|h| std::str::from_utf8(h).ok());
                        if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                            if fallback_to_skip > 0 {
                                fallback_to_skip -= 1;
                            } else if !group.skip {
                                out.push(cp1252(v));
                            }
                            i += 2;
                        }
                    }
                    b'~' if !group.skip => out.push(' '),
                    b'-' | b'_' if !group.skip => {}
                    b'\n' | b'\r' if !group.skip => out.push('\n'),
                    b'\\' | b'{' | b'}' if !group.skip => out.push(c as char),
                    _ => {}
                }
                i += 1;
                continue;
            }
            b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            _ => {
                group_start = false;
                if group.skip {
                    i += 1;
                    continue;
                }
                if fallback_to_skip > 0 {
                    fallback_to_skip -= 1;
                    i += 1;
                    continue;
                }
                // Plain text run up to the next control character (bytes are cp1252/ASCII).
                let start = i;
                while i < data.len() && !matches!(data[i], b'\\' | b'{' | b'}' | b'\r' | b'\n') {
                    i += 1;
                }
                out.extend(data[start..i].iter().map(|&b| cp1252(b)));
                continue;
            }
        }
    }
    out
}

/// A Windows-1252 byte as a character (the common RTF code page; \ansicpg is not followed).
pub(crate) fn cp1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    if (0x80..0xA0).contains(&b) {
        HIGH[(b - 0x80) as usize]
    } else {
        b as char
    }
}

#[cfg(test)]
mod tests {
    use super::rtf_to_text;

    #[test]
    fn text_paragraphs_and_escapes() {
        let rtf = br"{\rtf1\ansi{\fonttbl{\f0 Arial;}}{\colortbl;\red0;}\f0 SSN: 123-45-6780\par Caf\'e9 \u8364?\tab x{\*\generator Foo;}}";
        assert_eq!(rtf_to_text(rtf), "SSN: 123-45-6780\nCafé €\tx");
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let mut rtf = b"{\\rtf1 a".to_vec();
        rtf.extend(std::iter::repeat_n(b'{', 100_000));
        rtf.extend_from_slice(b"deep");
        rtf.extend(std::iter::repeat_n(b'}', 100_000));
        rtf.extend_from_slice(b" b}");
        let text = rtf_to_text(&rtf);
        assert!(text.starts_with('a'));
        assert!(text.ends_with('b'));
    }

    #[test]
    fn truncated_input_is_fine() {
        assert_eq!(rtf_to_text(b"{\\rtf1 abc\\"), "abc");
        assert_eq!(rtf_to_text(b"{\\rtf1 \\'4"), "4");
    }
}

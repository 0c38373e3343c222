//! Plain-text and HTML parts and attachments.

use super::Ctx;

/// Emit text already decoded to a string, and report PGP-armoured encrypted content found in
/// it: a real encrypted message, not an armour line over plain text (which is scanned as the
/// text it is).
pub fn emit_text_checked(ctx: &mut Ctx<'_>, location: &str, text: &str) {
    if text.contains("-----BEGIN PGP MESSAGE-----") && super::crypto::text_has_pgp_message(text) {
        ctx.encrypted(location, "pgp");
    }
    ctx.emit_text(location, text);
    // uuencoded and yEnc files inside the text are decoded as attachments of it.
    if text.starts_with("begin ") || text.contains("\nbegin ") || text.contains("=ybegin ") {
        let max = ctx.limits.max_part_bytes.min(ctx.remaining_budget());
        for (i, (name, data)) in super::legacy::blocks(text, 100, max)
            .into_iter()
            .enumerate()
        {
            let label = if name.is_empty() {
                format!("encoded{}", i + 1)
            } else {
                name.replace('/', "_")
            };
            let at = format!("{location}/{label}");
            ctx.emit_name(&at, &name);
            ctx.attachment(&at, &name, None, &data, 1);
        }
    }
}

/// A text attachment of unknown charset: UTF-16/32 (with or without a BOM), UTF-8, or else
/// Latin-1/Windows-1252. iCalendar and vCard text is unfolded and its encoded values decoded,
/// as a calendar or address book shows them.
pub fn plain(ctx: &mut Ctx<'_>, location: &str, data: &[u8]) {
    text_str(ctx, location, &bytes_to_text(data));
}

/// Text already decoded to a string (a text part, a text attachment).
pub fn text_str(ctx: &mut Ctx<'_>, location: &str, text: &str) {
    let head: String = text
        .trim_start()
        .chars()
        .take(16)
        .collect::<String>()
        .to_ascii_uppercase();
    if head.starts_with("BEGIN:VCALENDAR") || head.starts_with("BEGIN:VCARD") {
        emit_text_checked(ctx, location, &unfold_directory(text));
    } else {
        emit_text_checked(ctx, location, text);
    }
}

/// iCalendar/vCard (RFC 5545, 6350, vCard 2.1): folded lines joined (a line break followed by
/// a space or tab is removed), and `ENCODING=QUOTED-PRINTABLE` / `ENCODING=B|BASE64` values
/// decoded (with vCard 2.1's soft line breaks).
pub fn unfold_directory(text: &str) -> String {
    let mut unfolded = String::with_capacity(text.len());
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .peekable();
    while let Some(line) = lines.next() {
        let mut line = line.to_string();
        // Quoted-printable soft breaks (vCard 2.1): a value line ending in '='.
        let qp = line.to_ascii_uppercase().contains("QUOTED-PRINTABLE");
        while qp && line.ends_with('=') {
            line.pop();
            match lines.next() {
                Some(next) => line.push_str(next),
                None => break,
            }
        }
        while let Some(next) = lines.peek() {
            if next.starts_with([' ', '\t']) {
                line.push_str(&next[1..]);
                lines.next();
            } else {
                break;
            }
        }
        unfolded.push_str(&decode_directory_value(&line));
        unfolded.push('\n');
    }
    unfolded
}

fn decode_directory_value(line: &str) -> String {
    let Some((params, value)) = line.split_once(':') else {
        return line.to_string();
    };
    let upper = params.to_ascii_uppercase();
    let decoded =
        if upper.contains("ENCODING=QUOTED-PRINTABLE") || upper.contains(";QUOTED-PRINTABLE") {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(value.as_bytes())
        } else if upper.contains("ENCODING=B") || upper.contains(";BASE64") {
            super::mime::lenient_base64(value.as_bytes())
        } else {
            None
        };
    match decoded {
        Some(bytes) => format!("{params}:{}", bytes_to_text(&bytes)),
        None => line.to_string(),
    }
}

/// An HTML attachment given as bytes.
pub fn html(ctx: &mut Ctx<'_>, location: &str, data: &[u8]) {
    let text = bytes_to_text(data);
    html_str(ctx, location, &text);
}

/// HTML converted to text, so that a value split by tags or written with entities is found.
/// What a reader also sees is scanned too: `title`, `alt`, `value`, `placeholder`,
/// `aria-label` attributes, and `data:` URIs (decoded as attachments). A value split by `<br>`
/// is looked for with the breaks taken out as well.
pub fn html_str(ctx: &mut Ctx<'_>, location: &str, html: &str) {
    let mut text = html_to_text(html);
    let attrs = visible_attributes(html);
    if !attrs.is_empty() {
        text.push('\n');
        text.push_str(&attrs);
    }
    // Link targets (`href`) that the text does not show: where a link really goes (a
    // file-sharing link behind "the spreadsheet", a value in a mailto: body).
    let targets = link_targets(html);
    if !targets.is_empty() {
        text.push('\n');
        text.push_str(&targets);
    }
    emit_text_checked(ctx, location, &text);
    if let Some(pos) = find_ascii_ci(html, "<br") {
        let joined = remove_br(html, pos);
        ctx.emit_text(location, &html_to_text(&joined));
    }
    for (i, (ctype, data)) in data_uris(html).into_iter().enumerate() {
        let at = format!("{location}/data-uri{}", i + 1);
        ctx.attachment(&at, "", Some(&ctype), &data, 1);
    }
}

fn find_ascii_ci(hay: &str, needle: &str) -> Option<usize> {
    hay.as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// `html` with every `<br ...>` tag removed (from `first`, the position of the first one).
fn remove_br(html: &str, first: usize) -> String {
    let mut out = String::with_capacity(html.len());
    out.push_str(&html[..first]);
    let mut rest = &html[first..];
    while let Some(pos) = find_ascii_ci(rest, "<br") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        match after.find('>') {
            Some(end) => rest = &after[end + 1..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Attribute values a reader sees (tooltips, image descriptions, form values), one per line.
fn visible_attributes(html: &str) -> String {
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let Some(re) = RE
        .get_or_init(|| {
            regex::Regex::new(
                r#"(?i)\s(?:title|alt|value|placeholder|aria-label)\s*=\s*(?:"([^"]*)"|'([^']*)')"#,
            )
            .ok()
        })
        .as_ref()
    else {
        return String::new();
    };
    let mut out = String::new();
    for c in re.captures_iter(html).take(10_000) {
        if let Some(v) = c.get(1).or_else(|| c.get(2)) {
            out.push_str(&html_to_text(v.as_str()));
            out.push('\n');
        }
    }
    out
}

/// `href` values, one per line, except in-page anchors, scripts and `data:` URIs (decoded as
/// attachments). `&amp;` is undone (the only entity common in a link).
fn link_targets(html: &str) -> String {
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let Some(re) = RE
        .get_or_init(|| regex::Regex::new(r"(?i)href\s*=\s*").ok())
        .as_ref()
    else {
        return String::new();
    };
    let mut out = String::new();
    let mut seen = std::collections::HashSet::new();
    // The regex starts with a literal, so it skips to each "href" at memchr speed; the value
    // is read by hand (no capture groups: no backtracking engine per link).
    for m in re.find_iter(html).take(10_000) {
        let rest = &html[m.end()..];
        let value = match rest.as_bytes().first() {
            Some(&q @ (b'"' | b'\'')) => {
                let body = &rest[1..];
                &body[..body.find(char::from(q)).unwrap_or(body.len().min(4096))]
            }
            _ => {
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == '>' || c == '"' || c == '\'')
                    .unwrap_or(rest.len());
                &rest[..end]
            }
        };
        let t = value.trim();
        let lower = t.get(..11).unwrap_or(t).to_ascii_lowercase();
        if t.is_empty()
            || t.len() > 8192
            || t.starts_with('#')
            || lower.starts_with("javascript:")
            || lower.starts_with("data:")
            || !seen.insert(t)
        {
            continue;
        }
        out.push_str(&t.replace("&amp;", "&"));
        out.push('\n');
    }
    out
}

/// An Apple binary property list (`bplist00`: a `.webloc` or `.plist`): its ASCII and UTF-16
/// strings, one per line (the objects are not walked: a string is stored whole, so reading
/// the runs of text finds them, the URL of a `.webloc` included).
pub fn binary_plist(ctx: &mut Ctx<'_>, location: &str, data: &[u8]) {
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 4 {
            out.push_str(run);
            out.push('\n');
        }
        run.clear();
    };
    for &b in data.get(8..).unwrap_or(&[]) {
        if (0x20..0x7f).contains(&b) {
            run.push(char::from(b));
        } else {
            flush(&mut run, &mut out);
        }
    }
    flush(&mut run, &mut out);
    // UTF-16 (big-endian) strings: printable ASCII with a zero byte before each character.
    for pair in data.get(8..).unwrap_or(&[]).chunks_exact(2) {
        if pair[0] == 0 && (0x20..0x7f).contains(&pair[1]) {
            run.push(char::from(pair[1]));
        } else {
            flush(&mut run, &mut out);
        }
    }
    flush(&mut run, &mut out);
    emit_text_checked(ctx, location, &out);
}

/// `data:` URIs in `src`/`href` attributes: (media type, decoded bytes).
fn data_uris(html: &str) -> Vec<(String, Vec<u8>)> {
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let Some(re) = RE
        .get_or_init(|| {
            regex::Regex::new(
                r#"(?i)data:([a-z0-9.+/-]*)((?:;[a-z0-9=.-]+)*?)(;base64)?,([^"'\s)>]*)"#,
            )
            .ok()
        })
        .as_ref()
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in re.captures_iter(html).take(100) {
        let ctype = c
            .get(1)
            .map(|m| m.as_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let payload = c.get(4).map(|m| m.as_str()).unwrap_or("");
        let data = if c.get(3).is_some() {
            super::mime::lenient_base64(payload.as_bytes())
        } else {
            Some(percent_decode(payload))
        };
        if let Some(d) = data.filter(|d| !d.is_empty()) {
            let ctype = if ctype.is_empty() {
                "text/plain".into()
            } else {
                ctype
            };
            out.push((ctype, d));
        }
    }
    out
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Stand-ins for a cell break and a line break. mail-parser's `html_to_text` joins table cells
/// and block elements without a separator; these private-use characters survive it as text
/// and become a tab and a newline afterwards, so tables stay tabular (`user<TAB>password`).
const CELL_MARK: char = '\u{E000}';
const LINE_MARK: char = '\u{E001}';

/// HTML to text: mail-parser's converter (entities, comments, `<script>`/`<style>` dropped),
/// with table cells and block elements kept apart.
pub fn html_to_text(html: &str) -> String {
    let mut marked = String::with_capacity(html.len() + html.len() / 16);
    let mut rest = html;
    // Inside a table cell, paragraphs and line breaks (Outlook writes `<td><p
    // class=MsoNormal>`) do not end the row: their tags are renamed so that the converter
    // ignores them, and a space keeps their words apart.
    let mut in_cell = false;
    while let Some(pos) = rest.find('<') {
        marked.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let closing = after.starts_with('/');
        let name: Vec<u8> = after
            .bytes()
            .skip(usize::from(closing))
            .take_while(|b| b.is_ascii_alphanumeric())
            .take(11)
            .map(|b| b.to_ascii_lowercase())
            .collect();
        let block = matches!(
            name.as_slice(),
            b"div"
                | b"li"
                | b"h1"
                | b"h2"
                | b"h3"
                | b"h4"
                | b"h5"
                | b"h6"
                | b"p"
                | b"pre"
                | b"blockquote"
                | b"dt"
                | b"dd"
                | b"br"
        );
        match (closing, name.as_slice()) {
            (false, b"td" | b"th") => {
                in_cell = true;
                marked.push(CELL_MARK);
            }
            (true, b"td" | b"th") => in_cell = false,
            (_, b"tr" | b"table") => {
                in_cell = false;
                if !closing {
                    marked.push(LINE_MARK);
                }
            }
            (false, n) if block && !in_cell && n != b"br" => marked.push(LINE_MARK),
            _ => {}
        }
        if in_cell && block {
            marked.push_str(" <x-");
        } else {
            marked.push('<');
        }
        rest = after;
    }
    marked.push_str(rest);
    mail_parser::decoders::html::html_to_text(&marked)
        .chars()
        .map(|c| match c {
            CELL_MARK => '\t',
            LINE_MARK => '\n',
            c => c,
        })
        .collect()
}

/// Bytes of unknown encoding to text: BOM-marked UTF-16, UTF-8, else Windows-1252.
pub fn bytes_to_text(data: &[u8]) -> String {
    let utf16 = |rest: &[u8], unit: fn([u8; 2]) -> u16| -> String {
        let units = rest.chunks_exact(2).map(|c| unit([c[0], c[1]]));
        char::decode_utf16(units)
            .map(|r| r.unwrap_or('\u{FFFD}'))
            .collect()
    };
    if let Some(rest) = data.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = data.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, u16::from_be_bytes);
    }
    // Without a BOM: text in UTF-32 or UTF-16 shows its zero bytes in a fixed rhythm.
    match zero_rhythm(data) {
        Some(Wide::Utf32Le) | Some(Wide::Utf32Be) => {
            let le = matches!(zero_rhythm(data), Some(Wide::Utf32Le));
            return data
                .chunks_exact(4)
                .map(|c| {
                    let v = if le {
                        u32::from_le_bytes([c[0], c[1], c[2], c[3]])
                    } else {
                        u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                    };
                    char::from_u32(v).unwrap_or('\u{FFFD}')
                })
                .collect();
        }
        Some(Wide::Utf16Le) => return utf16(data, u16::from_le_bytes),
        Some(Wide::Utf16Be) => return utf16(data, u16::from_be_bytes),
        None => {}
    }
    let data = data.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(data);
    match std::str::from_utf8(data) {
        Ok(s) => s.to_string(),
        Err(_) => data.iter().map(|&b| b as char).collect(),
    }
}

enum Wide {
    Utf16Le,
    Utf16Be,
    Utf32Le,
    Utf32Be,
}

/// Is `data` UTF-16 or UTF-32 text without a BOM?
pub fn is_wide_text(data: &[u8]) -> bool {
    zero_rhythm(data).is_some()
}

/// UTF-16 or UTF-32 without a BOM, told by where the zero bytes of mostly-ASCII text fall
/// in the first 4 KiB.
fn zero_rhythm(data: &[u8]) -> Option<Wide> {
    let head = &data[..data.len().min(4096)];
    if head.len() < 8 {
        return None;
    }
    let mut zeros = [0usize; 4];
    for (i, &b) in head.iter().enumerate() {
        if b == 0 {
            zeros[i % 4] += 1;
        }
    }
    let quarter = head.len() / 4;
    let most = |n: usize| n * 10 >= quarter * 9;
    let few = |n: usize| n * 10 <= quarter;
    if head.len().is_multiple_of(4)
        && few(zeros[0])
        && most(zeros[1])
        && most(zeros[2])
        && most(zeros[3])
    {
        return Some(Wide::Utf32Le);
    }
    if head.len().is_multiple_of(4)
        && most(zeros[0])
        && most(zeros[1])
        && most(zeros[2])
        && few(zeros[3])
    {
        return Some(Wide::Utf32Be);
    }
    if few(zeros[0]) && few(zeros[2]) && most(zeros[1]) && most(zeros[3]) {
        return Some(Wide::Utf16Le);
    }
    if most(zeros[0]) && most(zeros[2]) && few(zeros[1]) && few(zeros[3]) {
        return Some(Wide::Utf16Be);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{bytes_to_text, html_to_text, unfold_directory};

    #[test]
    fn wide_text_without_a_bom() {
        let text = "name,ssn\nPat,536-22-4817\n";
        let le: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let be: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        let le32: Vec<u8> = text
            .chars()
            .flat_map(|c| (c as u32).to_le_bytes())
            .collect();
        let be32: Vec<u8> = text
            .chars()
            .flat_map(|c| (c as u32).to_be_bytes())
            .collect();
        for data in [le, be, le32, be32] {
            assert_eq!(bytes_to_text(&data), text);
        }
        assert_eq!(bytes_to_text(b"plain ascii text"), "plain ascii text");
    }

    #[test]
    fn calendars_and_cards_unfold_and_decode() {
        let ics = "BEGIN:VCALENDAR\r\nDESCRIPTION:Employee SSN 536-22-\r\n 4817 for the form\r\nEND:VCALENDAR\r\n";
        assert!(unfold_directory(ics).contains("SSN 536-22-4817 for"));
        let vcf = "BEGIN:VCARD\nNOTE;ENCODING=QUOTED-PRINTABLE:SSN=20536-22-=\n4817\nEND:VCARD\n";
        assert!(
            unfold_directory(vcf).contains("SSN 536-22-4817"),
            "{}",
            unfold_directory(vcf)
        );
        let b64 = "BEGIN:VCARD\nNOTE;ENCODING=b:U1NOIDUzNi0yMi00ODE3\nEND:VCARD\n";
        assert!(unfold_directory(b64).contains("SSN 536-22-4817"));
    }

    #[test]
    fn attributes_and_data_uris() {
        let html = r#"<img alt="SSN 536-22-4817" src="data:text/plain;base64,U1NOIDUzNi0yMi00ODE3"><a title='x'>y</a>"#;
        assert!(super::visible_attributes(html).contains("SSN 536-22-4817"));
        let uris = super::data_uris(html);
        assert_eq!(uris.len(), 1);
        assert_eq!(uris[0].0, "text/plain");
        assert_eq!(uris[0].1, b"SSN 536-22-4817");
        assert_eq!(
            super::data_uris("data:,SSN%20536")
                .first()
                .map(|u| u.1.clone()),
            Some(b"SSN 536".to_vec())
        );
        assert_eq!(
            html_to_text(&super::remove_br("536-22<br>-4817 <BR/>x", 6)).trim(),
            "536-22-4817 x"
        );
    }

    #[test]
    fn html_tables_stay_tabular_and_split_numbers_join() {
        let t = html_to_text(
            "<table><tr><th>User</th><th>Password</th></tr><tr><td>jdoe</td><td>pw1</td></tr></table>",
        );
        assert!(t.contains("User\tPassword"), "{t:?}");
        assert!(t.contains("jdoe\tpw1"), "{t:?}");
        assert_eq!(html_to_text("<b>123</b>-45-&#54;789").trim(), "123-45-6789");
        assert_eq!(html_to_text("a<div>b</div>").trim(), "a\nb");
        // Outlook's paragraphs inside cells stay in their cell.
        let t = html_to_text(
            "<table><tr><td><p class=MsoNormal>Name</p></td><td><p>SSN</p></td></tr>\n<tr><td><p>Ann<br>Lee</p></td><td><div>536228714</div></td></tr></table><p>end</p>",
        );
        let rows: Vec<Vec<&str>> = t
            .lines()
            .map(|l| l.trim().split('\t').map(str::trim).collect())
            .filter(|r: &Vec<&str>| r != &[""])
            .collect();
        assert_eq!(
            rows,
            [
                vec!["Name", "SSN"],
                vec!["Ann Lee", "536228714"],
                vec!["end"]
            ],
            "{t:?}"
        );
    }

    #[test]
    fn decodes_utf16_with_bom() {
        let mut data = vec![0xFF, 0xFE];
        for u in "SSN 1".encode_utf16() {
            data.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(bytes_to_text(&data), "SSN 1");
    }

    #[test]
    fn falls_back_to_latin1() {
        assert_eq!(bytes_to_text(b"caf\xe9"), "caf\u{e9}");
    }
}

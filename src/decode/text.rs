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
}

/// A text attachment of unknown charset: UTF-16 with a BOM, UTF-8, or else Latin-1/Windows-1252.
pub fn plain(ctx: &mut Ctx<'_>, location: &str, data: &[u8]) {
    let text = bytes_to_text(data);
    emit_text_checked(ctx, location, &text);
}

/// An HTML attachment given as bytes.
pub fn html(ctx: &mut Ctx<'_>, location: &str, data: &[u8]) {
    let text = bytes_to_text(data);
    html_str(ctx, location, &text);
}

/// HTML converted to text, so that a value split by tags or written with entities is found.
pub fn html_str(ctx: &mut Ctx<'_>, location: &str, html: &str) {
    let text = html_to_text(html);
    emit_text_checked(ctx, location, &text);
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
    while let Some(pos) = rest.find('<') {
        marked.push_str(&rest[..pos]);
        let tag = rest[pos + 1..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric())
            .take(8)
            .map(|b| b.to_ascii_lowercase());
        let name: Vec<u8> = tag.collect();
        match name.as_slice() {
            b"td" | b"th" => marked.push(CELL_MARK),
            b"tr" | b"div" | b"li" | b"table" | b"h1" | b"h2" | b"h3" | b"h4" | b"h5" | b"h6"
            | b"p" | b"pre" | b"blockquote" | b"dt" | b"dd" => marked.push(LINE_MARK),
            _ => {}
        }
        marked.push('<');
        rest = &rest[pos + 1..];
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
    let data = data.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(data);
    match std::str::from_utf8(data) {
        Ok(s) => s.to_string(),
        Err(_) => data.iter().map(|&b| b as char).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::{bytes_to_text, html_to_text};

    #[test]
    fn html_tables_stay_tabular_and_split_numbers_join() {
        let t = html_to_text(
            "<table><tr><th>User</th><th>Password</th></tr><tr><td>jdoe</td><td>pw1</td></tr></table>",
        );
        assert!(t.contains("User\tPassword"), "{t:?}");
        assert!(t.contains("jdoe\tpw1"), "{t:?}");
        assert_eq!(html_to_text("<b>123</b>-45-&#54;789").trim(), "123-45-6789");
        assert_eq!(html_to_text("a<div>b</div>").trim(), "a\nb");
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

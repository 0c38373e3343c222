//! Plain-text and HTML parts and attachments.

use super::Ctx;

/// Emit text already decoded to a string, and report PGP-armoured encrypted content found in it.
pub fn emit_text_checked(ctx: &mut Ctx<'_>, location: &str, text: &str) {
    if text.contains("-----BEGIN PGP MESSAGE-----") {
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
    let text = mail_parser::decoders::html::html_to_text(html);
    emit_text_checked(ctx, location, &text);
}

/// Bytes of unknown encoding to text: BOM-marked UTF-16, UTF-8, else Windows-1252.
pub fn bytes_to_text(data: &[u8]) -> String {
    if let Some(rest) = data.strip_prefix(&[0xFF, 0xFE]) {
        let units = rest
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]));
        return char::decode_utf16(units)
            .map(|r| r.unwrap_or('\u{FFFD}'))
            .collect();
    }
    if let Some(rest) = data.strip_prefix(&[0xFE, 0xFF]) {
        let units = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]));
        return char::decode_utf16(units)
            .map(|r| r.unwrap_or('\u{FFFD}'))
            .collect();
    }
    let data = data.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(data);
    match std::str::from_utf8(data) {
        Ok(s) => s.to_string(),
        Err(_) => data.iter().map(|&b| b as char).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::bytes_to_text;

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

//! Office documents: Office Open XML (docx, xlsx, pptx) and OpenDocument (odt, ods, odp),
//! which are zips of XML, and OLE compound files (legacy Office, and encrypted OOXML).
//!
//! Text is taken from the XML with quick-xml: paragraphs and rows become lines, cells are
//! separated by tabs so that tables stay tabular for the detectors. Spreadsheet numbers are
//! written back as plain integers (Excel stores `123456789` or `4.1111111111111E+15`).

use super::Ctx;
use super::archive::{EntryInfo, Zip, read_zip_entry};
use quick_xml::Reader;
use quick_xml::events::Event;

pub fn is_ooxml(entries: &[EntryInfo]) -> bool {
    entries.iter().any(|e| e.name == "[Content_Types].xml")
        && entries.iter().any(|e| {
            e.name == "word/document.xml"
                || e.name == "xl/workbook.xml"
                || e.name == "ppt/presentation.xml"
        })
}

pub fn is_odf(entries: &[EntryInfo]) -> bool {
    entries.iter().any(|e| e.name == "mimetype") && entries.iter().any(|e| e.name == "content.xml")
}

/// The number in a name like `xl/worksheets/sheet12.xml`, for reading parts in order.
fn part_number(name: &str) -> u32 {
    let stem = name.rsplit('/').next().unwrap_or(name);
    let digits: String = stem.chars().filter(|c| c.is_ascii_digit()).collect();
    digits.parse().unwrap_or(0)
}

/// Read the entries selected by `pick`, in part-number order, reporting failures.
fn read_parts(
    ctx: &mut Ctx<'_>,
    location: &str,
    archive: &mut Zip<'_>,
    entries: &[EntryInfo],
    pick: impl Fn(&str) -> bool,
) -> Vec<(String, Vec<u8>)> {
    let mut chosen: Vec<&EntryInfo> = entries
        .iter()
        .filter(|e| !e.is_dir && pick(&e.name))
        .collect();
    chosen.sort_by_key(|e| (part_number(&e.name), e.name.clone()));
    let mut out = Vec::new();
    for entry in chosen {
        if entry.encrypted {
            ctx.encrypted(location, "office");
            continue;
        }
        match read_zip_entry(ctx, &format!("{location}/{}", entry.name), archive, entry) {
            Ok(bytes) => out.push((entry.name.clone(), bytes)),
            Err(stop) => ctx.unscannable(&format!("{location}/{}", entry.name), &stop.reason()),
        }
    }
    out
}

/// Files embedded in an Office document (OLE objects, attached spreadsheets) are decoded too.
fn embedded(
    ctx: &mut Ctx<'_>,
    location: &str,
    archive: &mut Zip<'_>,
    entries: &[EntryInfo],
    depth: usize,
) {
    let parts = read_parts(ctx, location, archive, entries, |n| {
        n.contains("/embeddings/") || n.starts_with("Object ")
    });
    for (name, bytes) in parts {
        let leaf = name.rsplit('/').next().unwrap_or(&name).to_string();
        ctx.emit_name(&format!("{location}/{leaf}"), &leaf);
        ctx.attachment(
            &format!("{location}/{leaf}"),
            &leaf,
            None,
            &bytes,
            depth + 1,
        );
    }
}

/// docx, xlsx or pptx.
pub fn ooxml(
    ctx: &mut Ctx<'_>,
    location: &str,
    archive: &mut Zip<'_>,
    entries: &[EntryInfo],
    depth: usize,
) {
    let mut text = String::new();
    if entries.iter().any(|e| e.name == "xl/workbook.xml") {
        let shared = read_parts(ctx, location, archive, entries, |n| {
            n == "xl/sharedStrings.xml"
        });
        let strings = shared
            .first()
            .map(|(_, b)| shared_strings(b))
            .unwrap_or_default();
        for (_, sheet) in read_parts(ctx, location, archive, entries, |n| {
            n.starts_with("xl/worksheets/") && n.ends_with(".xml")
        }) {
            sheet_text(&sheet, &strings, &mut text);
            text.push('\n');
        }
        for (_, part) in read_parts(ctx, location, archive, entries, |n| {
            n.starts_with("xl/comments") && n.ends_with(".xml")
        }) {
            xml_text(&part, &Markup::OOXML, &mut text);
        }
    } else {
        let is_text_part = |n: &str| {
            n.ends_with(".xml")
                && (n.starts_with("word/")
                    && !n.starts_with("word/theme")
                    && n != "word/styles.xml"
                    && n != "word/fontTable.xml"
                    && n != "word/settings.xml"
                    && n != "word/webSettings.xml"
                    && n != "word/numbering.xml"
                    || n.starts_with("ppt/slides/slide")
                    || n.starts_with("ppt/notesSlides/")
                    || n.starts_with("ppt/comments/"))
        };
        for (_, part) in read_parts(ctx, location, archive, entries, is_text_part) {
            xml_text(&part, &Markup::OOXML, &mut text);
            text.push('\n');
        }
    }
    for (_, part) in read_parts(ctx, location, archive, entries, |n| {
        n == "docProps/core.xml" || n == "docProps/app.xml" || n == "docProps/custom.xml"
    }) {
        xml_text(&part, &Markup::OOXML, &mut text);
        text.push('\n');
    }
    ctx.emit_text(location, &text);
    embedded(ctx, location, archive, entries, depth);
}

/// odt, ods or odp: `content.xml` (and `styles.xml` for headers and footers, `meta.xml`).
pub fn odf(
    ctx: &mut Ctx<'_>,
    location: &str,
    archive: &mut Zip<'_>,
    entries: &[EntryInfo],
    depth: usize,
) {
    let mut text = String::new();
    for (_, part) in read_parts(ctx, location, archive, entries, |n| {
        n == "content.xml" || n == "styles.xml" || n == "meta.xml"
    }) {
        xml_text(&part, &Markup::ODF, &mut text);
        text.push('\n');
    }
    ctx.emit_text(location, &text);
    embedded(ctx, location, archive, entries, depth);
}

/// Which elements end a line or a cell, per format.
struct Markup {
    line: &'static [&'static [u8]],
    cell: &'static [&'static [u8]],
    tab: &'static [&'static [u8]],
    space: &'static [&'static [u8]],
}

impl Markup {
    const OOXML: Markup = Markup {
        line: &[b"p", b"br", b"cr", b"tr"],
        cell: &[b"tc"],
        tab: &[b"tab"],
        space: &[],
    };
    const ODF: Markup = Markup {
        line: &[b"p", b"h", b"line-break", b"table-row", b"list-item"],
        cell: &[b"table-cell"],
        tab: &[b"tab"],
        space: &[b"s"],
    };
}

/// All character data of an XML part, with line and cell breaks where the markup has them.
fn xml_text(xml: &[u8], markup: &Markup, out: &mut String) {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Text(t)) => {
                if let Ok(s) = t.decode() {
                    push_unescaped(out, &s);
                }
            }
            Ok(Event::CData(t)) => out.push_str(&String::from_utf8_lossy(&t)),
            Ok(Event::GeneralRef(r)) => push_entity(out, &r),
            Ok(Event::Empty(e)) => {
                let local = e.local_name();
                let name = local.as_ref();
                if markup.tab.contains(&name) || markup.cell.contains(&name) {
                    out.push('\t');
                } else if markup.line.contains(&name) {
                    out.push('\n');
                } else if markup.space.contains(&name) {
                    out.push(' ');
                }
            }
            Ok(Event::End(e)) => {
                let local = e.local_name();
                let name = local.as_ref();
                if markup.line.contains(&name) {
                    out.push('\n');
                } else if markup.cell.contains(&name) {
                    out.push('\t');
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
}

fn push_unescaped(out: &mut String, s: &str) {
    match quick_xml::escape::unescape(s) {
        Ok(u) => out.push_str(&u),
        Err(_) => out.push_str(s),
    }
}

/// An entity reference (`&amp;`, `&#49;`) as its character.
fn push_entity(out: &mut String, r: &[u8]) {
    let name = String::from_utf8_lossy(r);
    let resolved = match name.as_ref() {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        n => n
            .strip_prefix("#x")
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .or_else(|| n.strip_prefix('#').and_then(|d| d.parse().ok()))
            .and_then(char::from_u32),
    };
    if let Some(c) = resolved {
        out.push(c);
    }
}

/// The shared-string table of a workbook: one string per `<si>`.
fn shared_strings(xml: &[u8]) -> Vec<String> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut strings = Vec::new();
    let mut current = String::new();
    let mut in_si = false;
    // Phonetic runs (`rPh`) repeat the text in another script: skip them.
    let mut in_phonetic = false;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => match e.local_name().as_ref() {
                b"si" => {
                    in_si = true;
                    current.clear();
                }
                b"rPh" => in_phonetic = true,
                _ => {}
            },
            Ok(Event::End(e)) => match e.local_name().as_ref() {
                b"si" => {
                    in_si = false;
                    strings.push(std::mem::take(&mut current));
                }
                b"rPh" => in_phonetic = false,
                _ => {}
            },
            Ok(Event::Empty(e)) if e.local_name().as_ref() == b"si" => strings.push(String::new()),
            Ok(Event::Text(t)) if in_si && !in_phonetic => {
                if let Ok(s) = t.decode() {
                    push_unescaped(&mut current, &s);
                }
            }
            Ok(Event::GeneralRef(r)) if in_si && !in_phonetic => push_entity(&mut current, &r),
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    strings
}

/// One worksheet as text: a line per row, cells separated by tabs.
fn sheet_text(xml: &[u8], strings: &[String], out: &mut String) {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut cell_type: Vec<u8> = Vec::new();
    let mut in_value = false;
    let mut in_inline = false;
    let mut value = String::new();
    let mut first_cell = true;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => match e.local_name().as_ref() {
                b"row" => first_cell = true,
                b"c" => {
                    cell_type = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.local_name().as_ref() == b"t")
                        .map(|a| a.value.to_vec())
                        .unwrap_or_default();
                    value.clear();
                }
                b"v" => in_value = true,
                b"is" => in_inline = true,
                _ => {}
            },
            Ok(Event::Text(t)) if in_value || in_inline => {
                if let Ok(s) = t.decode() {
                    push_unescaped(&mut value, &s);
                }
            }
            Ok(Event::GeneralRef(r)) if in_value || in_inline => push_entity(&mut value, &r),
            Ok(Event::End(e)) => match e.local_name().as_ref() {
                b"v" => in_value = false,
                b"is" => in_inline = false,
                b"c" => {
                    if !first_cell {
                        out.push('\t');
                    }
                    first_cell = false;
                    let text = match cell_type.as_slice() {
                        b"s" => value
                            .trim()
                            .parse::<usize>()
                            .ok()
                            .and_then(|i| strings.get(i))
                            .cloned()
                            .unwrap_or_default(),
                        b"" | b"n" => plain_number(value.trim()),
                        _ => value.clone(),
                    };
                    out.push_str(&text);
                }
                b"row" => out.push('\n'),
                _ => {}
            },
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
}

/// `4.1111111111111E+15` → `4111111111111100`; other numbers unchanged. Spreadsheets keep
/// identifiers typed as numbers in this form.
fn plain_number(v: &str) -> String {
    if let Some((mantissa, exp)) = v.split_once(['E', 'e'])
        && let Ok(exp) = exp.trim_start_matches('+').parse::<i32>()
        && (0..=25).contains(&exp)
        && !mantissa.starts_with('-')
    {
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.chars().all(|c| c.is_ascii_digit()) && frac.chars().all(|c| c.is_ascii_digit()) {
            let exp = exp as usize;
            let mut digits = format!("{int}{frac}");
            if frac.len() <= exp {
                digits.extend(std::iter::repeat_n('0', exp - frac.len()));
                return digits.trim_start_matches('0').to_string();
            }
        }
    }
    if let Some(int) = v.strip_suffix(".0") {
        return int.to_string();
    }
    v.to_string()
}

/// An OLE compound file. Encrypted OOXML packages keep their content in an `EncryptedPackage`
/// stream; legacy Word marks encryption in its FIB and Excel with a FILEPASS record. Legacy
/// formats are not parsed: their text is taken best-effort as runs of printable ASCII and
/// UTF-16LE characters, which is enough for the detectors to find numbers and labels in them.
pub fn ole(ctx: &mut Ctx<'_>, location: &str, data: &[u8]) {
    let mut file = match cfb::CompoundFile::open(std::io::Cursor::new(data)) {
        Ok(f) => f,
        Err(e) => {
            ctx.unscannable(location, &format!("corrupt OLE compound file: {e}"));
            return;
        }
    };
    let streams: Vec<String> = file
        .walk()
        .filter(|e| e.is_stream())
        .map(|e| e.path().to_string_lossy().into_owned())
        .collect();
    let has = |name: &str| streams.iter().any(|s| s.trim_start_matches('/') == name);
    if has("EncryptedPackage") || has("EncryptedSummary") {
        ctx.encrypted(location, "office");
        return;
    }
    let mut text = String::new();
    for path in &streams {
        let Ok(mut stream) = file.open_stream(path) else {
            continue;
        };
        let mut bytes = Vec::new();
        let cap = ctx.limits.max_part_bytes.min(ctx.remaining_budget()) as u64;
        if std::io::Read::read_to_end(&mut std::io::Read::take(&mut stream, cap), &mut bytes)
            .is_err()
        {
            continue;
        }
        let name = path.trim_start_matches('/');
        if name == "WordDocument" && word_encrypted(&bytes)
            || name == "Workbook" && xls_encrypted(&bytes)
        {
            ctx.encrypted(location, "office");
            return;
        }
        printable_runs(&bytes, &mut text);
    }
    ctx.emit_text(location, &text);
}

/// Word 97-2003: FIB flag fEncrypted (bit 8 of the 16-bit word at offset 0x0A).
fn word_encrypted(stream: &[u8]) -> bool {
    stream
        .get(0x0A..0x0C)
        .map(|b| u16::from_le_bytes([b[0], b[1]]) & 0x0100 != 0)
        .unwrap_or(false)
}

/// Excel 97-2003: a FILEPASS record (type 0x002F) among the first records of the workbook.
fn xls_encrypted(stream: &[u8]) -> bool {
    let mut pos = 0usize;
    for _ in 0..64 {
        let Some(head) = stream.get(pos..pos + 4) else {
            return false;
        };
        let kind = u16::from_le_bytes([head[0], head[1]]);
        let len = u16::from_le_bytes([head[2], head[3]]) as usize;
        if kind == 0x002F {
            return true;
        }
        pos += 4 + len;
    }
    false
}

/// Runs of at least 4 printable characters, as ASCII/Latin-1 bytes or as UTF-16LE.
fn printable_runs(bytes: &[u8], out: &mut String) {
    let printable = |b: u8| (0x20..0x7f).contains(&b) || b == b'\t';
    // Single-byte runs, then UTF-16LE runs (ASCII range) at both alignments.
    collect_runs(bytes.iter().map(|&b| printable(b).then_some(b)), out);
    for offset in 0..2 {
        let units = bytes.get(offset..).unwrap_or(&[]).chunks_exact(2);
        collect_runs(
            units.map(|p| (p[1] == 0 && printable(p[0])).then_some(p[0])),
            out,
        );
    }
}

/// Append every run of at least 4 consecutive `Some` characters as a line.
fn collect_runs(chars: impl Iterator<Item = Option<u8>>, out: &mut String) {
    const MIN: usize = 4;
    let mut run = String::new();
    let mut flush = |run: &mut String| {
        if run.len() >= MIN {
            out.push_str(run);
            out.push('\n');
        }
        run.clear();
    };
    for c in chars {
        match c {
            Some(b) => run.push(b as char),
            None => flush(&mut run),
        }
    }
    flush(&mut run);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreadsheet_numbers_become_plain_integers() {
        assert_eq!(plain_number("4.1111111111111E+15"), "4111111111111100");
        assert_eq!(plain_number("123456789"), "123456789");
        assert_eq!(plain_number("1.5"), "1.5");
        assert_eq!(plain_number("42.0"), "42");
        assert_eq!(plain_number("1E+400"), "1E+400");
    }

    #[test]
    fn sheet_rows_are_lines_and_cells_tabs() {
        let strings = vec!["name".to_string(), "ssn".to_string()];
        let xml = br#"<worksheet><sheetData><row><c t="s"><v>0</v></c><c t="s"><v>1</v></c></row><row><c t="inlineStr"><is><t>Jane</t></is></c><c><v>123456780</v></c></row></sheetData></worksheet>"#;
        let mut out = String::new();
        sheet_text(xml, &strings, &mut out);
        assert_eq!(out, "name\tssn\nJane\t123456780\n");
    }

    #[test]
    fn docx_paragraphs_are_lines_and_entities_resolved() {
        let xml = br#"<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>SSN &#49;23</w:t></w:r><w:r><w:tab/><w:t>-45-6780</w:t></w:r></w:p><w:p><w:r><w:t>next &amp; last</w:t></w:r></w:p></w:body></w:document>"#;
        let mut out = String::new();
        xml_text(xml, &Markup::OOXML, &mut out);
        assert_eq!(out, "SSN 123\t-45-6780\nnext & last\n");
    }

    #[test]
    fn legacy_runs_find_ascii_and_utf16() {
        let mut bytes = vec![0u8, 1, 2];
        bytes.extend_from_slice(b"acct 12345678");
        bytes.extend_from_slice(&[0, 0, 0]);
        for c in "SSN 123-45-6780".encode_utf16() {
            bytes.extend_from_slice(&c.to_le_bytes());
        }
        let mut out = String::new();
        printable_runs(&bytes, &mut out);
        assert!(out.contains("acct 12345678"));
        assert!(out.contains("SSN 123-45-6780"));
    }

    #[test]
    fn xls_filepass_is_found() {
        // BOF record then FILEPASS.
        let stream = [0x09, 0x08, 0x02, 0x00, 0x00, 0x06, 0x2F, 0x00, 0x00, 0x00];
        assert!(xls_encrypted(&stream));
        assert!(!xls_encrypted(&[0x09, 0x08, 0x00, 0x00]));
    }
}

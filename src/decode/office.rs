//! Office documents: Office Open XML (docx, xlsx, pptx) and OpenDocument (odt, ods, odp),
//! which are zips of XML, their single-file XML forms (flat ODF, flat OPC, Word and Excel 2003
//! XML: [`is_flat_xml`], [`flat_xml`]), and OLE compound files (legacy Office, and encrypted
//! OOXML).
//!
//! Text is taken from the XML with quick-xml: paragraphs and rows become lines, cells are
//! separated by tabs so that tables stay tabular for the detectors. Spreadsheet numbers are
//! written back as plain integers (Excel stores `123456789` or `4.1111111111111E+15`).

use super::Ctx;
use super::unpack::{EntryInfo, Zip, read_zip_entry};
use quick_xml::Reader;
use quick_xml::events::Event;

/// An Open Packaging Conventions package (docx, xlsx, pptx, and their macro and template
/// variants): a content-types part and either a package relationship part or one of the
/// usual main parts (the main part may have any name; the relationships say which).
pub fn is_ooxml(entries: &[EntryInfo]) -> bool {
    entries.iter().any(|e| e.name == "[Content_Types].xml")
        && entries.iter().any(|e| {
            e.name == "_rels/.rels"
                || e.name == "word/document.xml"
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

/// Files embedded in an OpenDocument file (OLE objects, attached spreadsheets) are decoded too.
fn embedded(
    ctx: &mut Ctx<'_>,
    location: &str,
    archive: &mut Zip<'_>,
    entries: &[EntryInfo],
    depth: usize,
) {
    let parts = read_parts(ctx, location, archive, entries, |n| {
        (n.contains("/embeddings/") || n.starts_with("Object ")) && !n.ends_with(".xml")
    });
    for (name, bytes) in parts {
        as_attachment(ctx, location, &name, &bytes, depth);
    }
}

/// A part that is a file of its own (an embedded object, an altChunk), decoded like an
/// attachment at `LOCATION/leaf`.
fn as_attachment(ctx: &mut Ctx<'_>, location: &str, name: &str, bytes: &[u8], depth: usize) {
    let leaf = name.rsplit('/').next().unwrap_or(name).to_string();
    ctx.emit_name(&format!("{location}/{leaf}"), &leaf);
    ctx.attachment(&format!("{location}/{leaf}"), &leaf, None, bytes, depth + 1);
}

/// OOXML parts without text a person reads (formatting, themes, fonts, settings, the calc
/// chain), skipped by name.
fn ooxml_skipped_xml(name: &str) -> bool {
    let leaf = name.rsplit('/').next().unwrap_or(name);
    name == "[Content_Types].xml"
        || name.ends_with(".rels")
        || name.contains("/theme/")
        || name.contains("/printerSettings/")
        || matches!(
            leaf,
            "styles.xml"
                | "stylesWithEffects.xml"
                | "fontTable.xml"
                | "settings.xml"
                | "webSettings.xml"
                | "numbering.xml"
                | "calcChain.xml"
                | "presProps.xml"
                | "viewProps.xml"
                | "tableStyles.xml"
        )
}

/// Parts that are media, fonts or printer data: not text, and not scanned anywhere (an image
/// in a document is like an image attached to the message).
fn ooxml_media(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    lower.contains("/media/")
        || lower.contains("/fonts/")
        || lower.contains("printersettings")
        || lower.ends_with("vbaproject.bin")
        || lower.starts_with("docprops/thumbnail")
        || matches!(
            ext,
            "png"
                | "jpg"
                | "jpeg"
                | "gif"
                | "bmp"
                | "tif"
                | "tiff"
                | "emf"
                | "wmf"
                | "wdp"
                | "jxr"
                | "ico"
                | "svg"
                | "odttf"
                | "ttf"
                | "otf"
                | "fntdata"
                | "mp3"
                | "mp4"
                | "m4a"
                | "wav"
                | "wma"
                | "wmv"
                | "avi"
                | "mov"
        )
}

/// Names of formats [`super::crypto::media_kind`] recognises by their bytes.
fn raster_or_media_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    matches!(
        ext,
        "png" | "jpg" | "jpeg" | "gif" | "bmp" | "tif" | "tiff" | "mp3" | "mp4" | "m4a" | "wav"
    )
}

/// Does this part's content look like XML (whatever its name)?
fn looks_like_xml(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    start.is_some_and(|i| {
        bytes[i..].starts_with(b"<?xml")
            || bytes[i] == b'<' && bytes.get(i + 1).is_some_and(|b| b.is_ascii_alphabetic())
                // An XML root names a namespace; an HTML or MHT part does not look like this.
                && memchr::memmem::find(&bytes[i..bytes.len().min(i + 4096)], b"xmlns").is_some()
    })
}

/// The local name of the root element of an XML part (`worksheet`, `sst`, `document`...).
fn root_element(xml: &[u8]) -> Vec<u8> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    for _ in 0..64 {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => return e.local_name().as_ref().to_vec(),
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    Vec::new()
}

/// Every relationship of a `.rels` part: its type (the last segment of the type URI,
/// `sharedStrings`, `aFChunk`...), its target (an internal one resolved to a zip entry name,
/// an external one as written), and whether it is external (a hyperlink, a linked file).
fn relationships_all(rels_name: &str, xml: &[u8]) -> Vec<(String, String, bool)> {
    // `word/_rels/document.xml.rels` describes `word/document.xml`: targets are relative to
    // `word/`; `_rels/.rels` describes the package: relative to the root.
    let base = rels_name
        .strip_suffix(".rels")
        .and_then(|s| s.rsplit_once("_rels/"))
        .map(|(dir, _)| dir.to_string())
        .unwrap_or_default();
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) | Ok(Event::Empty(e))
                if e.local_name().as_ref() == b"Relationship" =>
            {
                let mut kind = String::new();
                let mut target = String::new();
                let mut external = false;
                for a in e.attributes().flatten() {
                    let value = a
                        .unescape_value()
                        .map(|v| v.into_owned())
                        .unwrap_or_default();
                    match a.key.local_name().as_ref() {
                        b"Type" => kind = value.rsplit('/').next().unwrap_or("").to_string(),
                        b"Target" => target = value,
                        b"TargetMode" => external = value.eq_ignore_ascii_case("External"),
                        _ => {}
                    }
                }
                if external {
                    out.push((kind, target, true));
                } else if !target.is_empty() {
                    out.push((kind, resolve_target(&base, &target), false));
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    out
}

/// `target` relative to the directory `base` (`word/`), as a zip entry name: `..` and `.`
/// segments applied, an absolute target (`/xl/x.xml`) taken from the root, `%20` decoded.
fn resolve_target(base: &str, target: &str) -> String {
    let target = target
        .split('#')
        .next()
        .unwrap_or(target)
        .replace("%20", " ");
    let mut segments: Vec<&str> = Vec::new();
    let joined;
    let path = if let Some(abs) = target.strip_prefix('/') {
        abs
    } else {
        joined = format!("{base}{target}");
        &joined
    };
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    segments.join("/")
}

/// `%XX` escapes of an address decoded (as UTF-8, lossily): the value a reader sees.
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Relationship types whose targets are media or binary data that is not scanned.
fn media_relationship(kind: &str) -> bool {
    matches!(
        kind,
        "image"
            | "audio"
            | "video"
            | "media"
            | "hdphoto"
            | "font"
            | "printerSettings"
            | "vbaProject"
            | "thumbnail"
            | "metadata/thumbnail"
    )
}

/// docx, xlsx or pptx (or any OPC package). Every part is read: XML parts for their text
/// (worksheets with their shared strings and formulas), whatever their name; parts that are
/// files of their own (embedded objects, altChunk HTML/RTF/text, unknown non-XML parts) as
/// attachments. Which part is what comes from the content and the package's relationships,
/// not from fixed names. Only media, fonts and formatting parts are skipped.
pub fn ooxml(
    ctx: &mut Ctx<'_>,
    location: &str,
    archive: &mut Zip<'_>,
    entries: &[EntryInfo],
    depth: usize,
) {
    // Relationships: which parts are media (skipped) and which are files of their own.
    let mut media_targets = std::collections::HashSet::new();
    let mut file_targets = std::collections::HashSet::new();
    let mut shared_target: Option<String> = None;
    // Hyperlink and linked-file addresses are read like the text: a reader sees them.
    let mut external_links = String::new();
    for (name, rels) in read_parts(ctx, location, archive, entries, |n| n.ends_with(".rels")) {
        for (kind, target, external) in relationships_all(&name, &rels) {
            if external {
                external_links.push_str(&percent_decoded(&target));
                external_links.push('\n');
            } else if media_relationship(&kind) {
                media_targets.insert(target);
            } else if matches!(kind.as_str(), "aFChunk" | "package" | "oleObject") {
                file_targets.insert(target);
            } else if kind == "sharedStrings" {
                shared_target = Some(target);
            }
        }
    }
    let skip = |n: &str| {
        n.ends_with(".rels")
            || n == "[Content_Types].xml"
            || (media_targets.contains(n) || ooxml_media(n)) && !file_targets.contains(n)
    };
    // A part named like an image or a recording whose bytes are text is read (like a CSV
    // labelled image/png in a message): a look at its first bytes decides.
    let disguised: std::collections::HashSet<String> = entries
        .iter()
        .filter(|e| !e.is_dir && !e.encrypted && skip(&e.name) && raster_or_media_name(&e.name))
        .filter(|e| {
            let mut head = Vec::new();
            archive.by_index(e.index).is_ok_and(|f| {
                std::io::Read::read_to_end(&mut std::io::Read::take(f, 64), &mut head).is_ok()
            }) && !head.is_empty()
                && super::crypto::media_kind(&head).is_none()
                && super::looks_like_text(&head)
        })
        .map(|e| e.name.clone())
        .collect();
    let parts = read_parts(ctx, location, archive, entries, |n| {
        !skip(n) || disguised.contains(n)
    });
    // Spreadsheet cells refer to the shared-string table: read it first. The one the
    // workbook's relationships name, else any part whose root is `sst`.
    let mut xml_parts = Vec::new();
    let mut files = Vec::new();
    for (name, bytes) in parts {
        let is_file = file_targets.contains(&name)
            || name.contains("/embeddings/")
            || disguised.contains(&name);
        if !is_file && (name.ends_with(".xml") || name.ends_with(".vml") || looks_like_xml(&bytes))
        {
            let root = root_element(&bytes);
            xml_parts.push((name, root, bytes));
        } else {
            files.push((name, bytes));
        }
    }
    let shared = xml_parts
        .iter()
        .find(|(n, _, _)| Some(n) == shared_target.as_ref())
        .or_else(|| xml_parts.iter().find(|(_, root, _)| root == b"sst"))
        .map(|(_, _, b)| shared_strings(b))
        .unwrap_or_default();
    let mut text = String::new();
    text.push_str(&external_links);
    for (name, root, bytes) in &xml_parts {
        let whole = match root.as_slice() {
            // The table in use is read through the cells that refer to it; another one is
            // read as text.
            b"sst" if shared_target.as_ref().is_none_or(|t| t == name) => continue,
            b"worksheet" | b"dialogsheet" => sheet_text(bytes, &shared, &mut text),
            _ if ooxml_skipped_xml(name) => continue,
            // Custom XML data: every element is a field of its own.
            _ if name.starts_with("customXml/") => xml_text(bytes, &Markup::DATA, &mut text),
            _ => xml_text(bytes, &Markup::OOXML, &mut text),
        };
        if !whole {
            ctx.unscannable(
                &format!("{location}/{name}"),
                "corrupt XML (the rest of the part was not read)",
            );
        }
        text.push('\n');
    }
    ctx.emit_text(location, &text);
    for (name, bytes) in files {
        as_attachment(ctx, location, &name, &bytes, depth);
    }
}

/// odt, ods or odp: every XML part (`content.xml`, `styles.xml` for headers and footers,
/// `meta.xml`, and the `content.xml` of embedded objects such as charts), except the manifest
/// and the settings; embedded files are decoded as attachments.
pub fn odf(
    ctx: &mut Ctx<'_>,
    location: &str,
    archive: &mut Zip<'_>,
    entries: &[EntryInfo],
    depth: usize,
) {
    let mut text = String::new();
    for (name, part) in read_parts(ctx, location, archive, entries, |n| {
        n.ends_with(".xml") && !n.ends_with("settings.xml") && !n.ends_with("manifest.xml")
    }) {
        if !xml_text(&part, &Markup::ODF, &mut text) {
            ctx.unscannable(
                &format!("{location}/{name}"),
                "corrupt XML (the rest of the part was not read)",
            );
        }
        text.push('\n');
    }
    ctx.emit_text(location, &text);
    embedded(ctx, location, archive, entries, depth);
}

/// Single-file Office XML: flat ODF (`.fodt`, `.fods`, `.fodp`: an `office:document`
/// root), flat OPC (Word and PowerPoint "XML document": a `pkg:package` of parts), Word 2003
/// XML (`w:wordDocument`) and Excel 2003 XML (`Workbook` in the spreadsheet namespace).
/// Recognised by their root element and namespace, whatever the file is called.
pub fn is_flat_xml(data: &[u8]) -> bool {
    flat_kind(data).is_some()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flat {
    Odf,
    Opc,
    Word2003,
    Excel2003,
}

fn flat_kind(data: &[u8]) -> Option<Flat> {
    let head = &data[..data.len().min(64 * 1024)];
    let root = root_element(head);
    let has = |ns: &[u8]| memchr::memmem::find(head, ns).is_some();
    match root.as_slice() {
        b"document" if has(b"urn:oasis:names:tc:opendocument:xmlns:office:1.0") => Some(Flat::Odf),
        b"package" if has(b"schemas.microsoft.com/office/2006/xmlPackage") => Some(Flat::Opc),
        b"wordDocument" if has(b"schemas.microsoft.com/office/word/2003/wordml") => {
            Some(Flat::Word2003)
        }
        b"Workbook" if has(b"urn:schemas-microsoft-com:office:spreadsheet") => {
            Some(Flat::Excel2003)
        }
        _ => None,
    }
}

/// The text of a single-file Office XML document (see [`is_flat_xml`]), emitted at
/// `location`. Parts stored in it as base64 (embedded objects, altChunk parts, and in flat
/// OPC any part that is not XML) are decoded as attachments at `LOCATION/name`; images and
/// fonts are skipped like in a package.
pub fn flat_xml(ctx: &mut Ctx<'_>, location: &str, data: &[u8], depth: usize) {
    let Some(kind) = flat_kind(data) else {
        ctx.unscannable(location, "unknown XML office format");
        return;
    };
    let markup = match kind {
        Flat::Odf => &Markup::ODF,
        Flat::Excel2003 => &Markup::SPREADSHEET_2003,
        Flat::Opc | Flat::Word2003 => &Markup::OOXML,
    };
    let mut text = String::new();
    let mut binaries = Vec::new();
    let max_base64 = ctx.limits.max_part_bytes.saturating_mul(4) / 3;
    let (complete, well_formed) =
        xml_text_parts(data, markup, &mut text, &mut binaries, max_base64);
    ctx.emit_text(location, &text);
    if !well_formed {
        ctx.unscannable(location, "corrupt XML (the rest of the file was not read)");
    }
    if !complete {
        ctx.unscannable(
            location,
            "part size limit reached (embedded data not all read)",
        );
    }
    for (i, (name, base64)) in binaries.into_iter().enumerate() {
        let name = name.trim_start_matches("wordml://").trim_start_matches('/');
        let name = if name.is_empty() {
            format!("object-{}", i + 1)
        } else {
            name.to_string()
        };
        if ooxml_media(&name) || name.ends_with(".rels") {
            continue;
        }
        match mail_parser::decoders::base64::base64_decode(base64.as_bytes()) {
            Some(bytes) => as_attachment(ctx, location, &name, &bytes, depth),
            None => {
                let leaf = name.rsplit('/').next().unwrap_or(&name);
                ctx.unscannable(&format!("{location}/{leaf}"), "corrupt base64 data")
            }
        }
    }
}

/// Which elements end a line or a cell, per format.
struct Markup {
    line: &'static [&'static [u8]],
    cell: &'static [&'static [u8]],
    tab: &'static [&'static [u8]],
    space: &'static [&'static [u8]],
    /// Every element ends a line (data XML, where each element is a field).
    every_element: bool,
    /// Which attribute values are text a person sees ([`visible_attributes`],
    /// [`odf_visible_attributes`]).
    attributes: Attributes,
    /// Table rows whose `cell`s are laid out as one line of tab-separated cells, paragraphs
    /// inside a cell joined by spaces, so that a header stays above its column (see
    /// [`Row`]). Empty: `cell` just ends with a tab.
    row: &'static [&'static [u8]],
}

#[derive(PartialEq, Eq)]
enum Attributes {
    None,
    Ooxml,
    Odf,
}

impl Markup {
    const OOXML: Markup = Markup {
        // `pt`: chart data points; `definedName`, `comment`, `threadedComment`: one each.
        line: &[
            b"p",
            b"br",
            b"cr",
            b"tr",
            b"pt",
            b"definedName",
            b"comment",
            b"threadedComment",
            b"si",
            b"property",
        ],
        cell: &[b"tc"],
        tab: &[b"tab"],
        space: &[],
        every_element: false,
        attributes: Attributes::Ooxml,
        row: &[b"tr"],
    };
    /// Excel 2003 XML: `Row`, `Cell`; comments and named ranges on lines of their own.
    const SPREADSHEET_2003: Markup = Markup {
        line: &[b"Row", b"Comment", b"NamedRange", b"P", b"Br"],
        cell: &[b"Cell"],
        tab: &[],
        space: &[],
        every_element: false,
        attributes: Attributes::None,
        row: &[],
    };
    const DATA: Markup = Markup {
        line: &[],
        cell: &[],
        tab: &[],
        space: &[],
        every_element: true,
        attributes: Attributes::None,
        row: &[],
    };
    const ODF: Markup = Markup {
        line: &[b"p", b"h", b"line-break", b"table-row", b"list-item"],
        cell: &[b"table-cell", b"covered-table-cell"],
        tab: &[b"tab"],
        space: &[b"s"],
        every_element: false,
        attributes: Attributes::Odf,
        row: &[b"table-row"],
    };
}

/// Columns counted in one table row: bounds the tabs written for repeated empty cells.
const MAX_ROW_COLUMNS: usize = 1_024;

/// Where the text of a table row stands: cells seen (empty ones included) and tabs written.
/// A cell with content gets the tabs of the empty cells before it, so trailing empty cells
/// (a sheet's unused columns, `number-columns-repeated="1017"`) write nothing.
#[derive(Default)]
struct Row {
    /// Open cell elements (a cell holds paragraphs, which then do not end the line).
    depth: usize,
    column: usize,
    tabs: usize,
}

impl Row {
    fn start(&mut self) {
        *self = Row::default();
    }

    /// A cell with content starts: the tabs up to its column.
    fn cell(&mut self, out: &mut String, repeated: usize) {
        for _ in self.tabs..self.column {
            out.push('\t');
        }
        self.tabs = self.tabs.max(self.column);
        self.column = (self.column + repeated.max(1)).min(MAX_ROW_COLUMNS);
        self.depth += 1;
    }

    /// Empty cells (`<table:table-cell table:number-columns-repeated="3"/>`): columns only.
    fn empty(&mut self, repeated: usize) {
        self.column = (self.column + repeated.max(1)).min(MAX_ROW_COLUMNS);
    }
}

/// `number-columns-repeated` of an ODF cell (1 when absent).
fn repeated(e: &quick_xml::events::BytesStart<'_>) -> usize {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == b"number-columns-repeated")
        .and_then(|a| std::str::from_utf8(&a.value).ok()?.trim().parse().ok())
        .unwrap_or(1)
}

/// All character data of an XML part, with line and cell breaks where the markup has them.
/// Base64 data elements (images, embedded objects of flat files) are left out.
/// `false` when the XML is malformed and the rest of it was not read.
fn xml_text(xml: &[u8], markup: &Markup, out: &mut String) -> bool {
    xml_text_parts(xml, markup, out, &mut Vec::new(), usize::MAX).1
}

/// Elements holding base64 data in single-file formats: flat OPC `pkg:binaryData` (the part
/// named by the enclosing `pkg:part`), Word 2003 `w:binData`, flat ODF `office:binary-data`.
const BINARY_ELEMENTS: &[&[u8]] = &[b"binaryData", b"binData", b"binary-data"];

/// [`xml_text`], also collecting base64 data elements as `(name, base64 text)` in `binaries`
/// (at most `max_base64` characters in all). Returns whether all base64 data was kept, and
/// whether the XML was read to its end (`false`: malformed).
fn xml_text_parts(
    xml: &[u8],
    markup: &Markup,
    out: &mut String,
    binaries: &mut Vec<(String, String)>,
    max_base64: usize,
) -> (bool, bool) {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut well_formed = true;
    let mut part_name = String::new();
    let mut in_binary = false;
    let mut base64_total = 0usize;
    let mut complete = true;
    let mut row = Row::default();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let local = e.local_name();
                let name = local.as_ref();
                if markup.row.contains(&name) {
                    row.start();
                } else if !markup.row.is_empty() && markup.cell.contains(&name) {
                    row.cell(out, repeated(&e));
                }
                match markup.attributes {
                    Attributes::Ooxml => visible_attributes(name, &e, out),
                    Attributes::Odf => odf_visible_attributes(&e, out),
                    Attributes::None => {}
                }
                let attr = |key: &[u8]| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.local_name().as_ref() == key)
                        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
                };
                if name == b"part" {
                    part_name = attr(b"name").unwrap_or_default();
                } else if BINARY_ELEMENTS.contains(&name) {
                    in_binary = true;
                    let label = attr(b"name").unwrap_or_else(|| part_name.clone());
                    binaries.push((label, String::new()));
                }
            }
            Ok(Event::Text(t)) if in_binary => {
                if let Some((_, data)) = binaries.last_mut() {
                    let chunk = String::from_utf8_lossy(&t);
                    let chunk: String = chunk.chars().filter(|c| !c.is_whitespace()).collect();
                    base64_total += chunk.len();
                    if base64_total > max_base64 {
                        complete = false;
                    } else {
                        data.push_str(&chunk);
                    }
                }
            }
            Ok(Event::Text(t)) => {
                if let Ok(s) = t.decode() {
                    push_unescaped(out, &s);
                }
            }
            Ok(Event::CData(t)) if !in_binary => out.push_str(&String::from_utf8_lossy(&t)),
            Ok(Event::GeneralRef(r)) if !in_binary => push_entity(out, &r),
            Ok(Event::Empty(e)) => {
                let local = e.local_name();
                let name = local.as_ref();
                match markup.attributes {
                    Attributes::Ooxml => visible_attributes(name, &e, out),
                    Attributes::Odf => odf_visible_attributes(&e, out),
                    Attributes::None => {}
                }
                if !markup.row.is_empty() && markup.cell.contains(&name) {
                    row.empty(repeated(&e));
                } else if markup.row.contains(&name) {
                    out.push('\n');
                } else if markup.tab.contains(&name) || markup.cell.contains(&name) {
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
                if BINARY_ELEMENTS.contains(&name) {
                    in_binary = false;
                } else if !markup.row.is_empty() && markup.cell.contains(&name) {
                    row.depth = row.depth.saturating_sub(1);
                } else if markup.line.contains(&name) && row.depth > 0 {
                    // A paragraph inside a table cell: the cell goes on.
                    out.push(' ');
                } else if markup.line.contains(&name)
                    || markup.row.contains(&name)
                    || markup.every_element
                {
                    out.push('\n');
                } else if markup.cell.contains(&name) {
                    out.push('\t');
                }
            }
            Ok(Event::Eof) => break,
            Err(_) => {
                well_formed = false;
                break;
            }
            _ => {}
        }
        buf.clear();
    }
    (complete, well_formed)
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

/// One worksheet as text: a line per row, cells separated by tabs; a formula built from
/// constant pieces is followed by the text it shows ([`formula::evaluate`]). After the cells,
/// what else a person sees on the sheet: the entries of drop-down lists and the messages of
/// data validations, hyperlink tooltips, and the page headers and footers. `false` when the XML
/// is malformed and the rest of the sheet was not read.
fn sheet_text(xml: &[u8], strings: &[String], out: &mut String) -> bool {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut cell_type: Vec<u8> = Vec::new();
    let mut in_value = false;
    let mut in_inline = false;
    let mut in_formula = false;
    let mut value = String::new();
    let mut formula = String::new();
    // Cells written so far in the row, and the column of the cell being read (from its `r`
    // reference): Excel leaves empty cells out, so a cell is placed at its column and the
    // cells of a row stay under their header.
    let mut cells_in_row = 0usize;
    let mut cell_col: Option<usize> = None;
    // Outside the cells: a data validation's list (`formula1`), a header or footer.
    let mut in_extra = false;
    let mut extra = String::new();
    let mut extras = String::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => match e.local_name().as_ref() {
                b"row" => cells_in_row = 0,
                b"c" => {
                    cell_type.clear();
                    cell_col = None;
                    for a in e.attributes().flatten() {
                        match a.key.local_name().as_ref() {
                            b"t" => cell_type = a.value.to_vec(),
                            b"r" => cell_col = column_of(&a.value),
                            _ => {}
                        }
                    }
                    value.clear();
                    formula.clear();
                }
                b"v" => in_value = true,
                b"f" if !in_extra => in_formula = true,
                b"is" => in_inline = true,
                name if SHEET_EXTRA_TEXT.contains(&name) => {
                    in_extra = true;
                    extra.clear();
                }
                name => visible_attributes(name, &e, &mut extras),
            },
            Ok(Event::Empty(e)) => visible_attributes(e.local_name().as_ref(), &e, &mut extras),
            Ok(Event::Text(t)) if in_extra => {
                if let Ok(s) = t.decode() {
                    push_unescaped(&mut extra, &s);
                }
            }
            Ok(Event::GeneralRef(r)) if in_extra => push_entity(&mut extra, &r),
            Ok(Event::Text(t)) if in_value || in_inline => {
                if let Ok(s) = t.decode() {
                    push_unescaped(&mut value, &s);
                }
            }
            Ok(Event::GeneralRef(r)) if in_value || in_inline => push_entity(&mut value, &r),
            // Formula text is scanned too: a formula without a cached value (or with a false
            // one) shows its result only when the file is opened.
            Ok(Event::Text(t)) if in_formula => {
                if let Ok(s) = t.decode() {
                    push_unescaped(&mut formula, &s);
                }
            }
            Ok(Event::GeneralRef(r)) if in_formula => push_entity(&mut formula, &r),
            Ok(Event::End(e)) => match e.local_name().as_ref() {
                b"v" => in_value = false,
                b"f" if !in_extra => in_formula = false,
                b"is" => in_inline = false,
                b"c" => {
                    // One tab between cells, and one more per column left out before this one
                    // (a wide jump is not a table row anyway: one tab then).
                    let skipped = cell_col
                        .and_then(|c| c.checked_sub(cells_in_row))
                        .filter(|&n| n <= MAX_SKIPPED_COLUMNS)
                        .unwrap_or(0);
                    let tabs = usize::from(cells_in_row > 0) + skipped;
                    out.extend(std::iter::repeat_n('\t', tabs));
                    cells_in_row += skipped + 1;
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
                    let formula = formula.trim();
                    if !formula.is_empty() {
                        if !text.is_empty() {
                            out.push(' ');
                        }
                        out.push_str(formula);
                        if let Some(shown) = super::formula::evaluate(formula) {
                            out.push(' ');
                            out.push_str(&shown);
                        }
                    }
                }
                b"row" => out.push('\n'),
                name if SHEET_EXTRA_TEXT.contains(&name) => {
                    in_extra = false;
                    if name.starts_with(b"formula") {
                        list_entries(&extra, &mut extras);
                    } else {
                        extras.push_str(&header_footer_text(&extra));
                        extras.push('\n');
                    }
                }
                _ => {}
            },
            Ok(Event::Eof) => break,
            Err(_) => {
                out.push_str(&extras);
                return false;
            }
            _ => {}
        }
        buf.clear();
    }
    out.push_str(&extras);
    true
}

/// Empty columns filled in before a cell placed by its reference; a wider jump gets one tab.
const MAX_SKIPPED_COLUMNS: usize = 64;

/// The zero-based column of a cell reference such as `C7` or `AB12` (at most three letters,
/// as in Excel's last column XFD).
fn column_of(r: &[u8]) -> Option<usize> {
    let letters = r.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    if letters == 0 || letters > 3 {
        return None;
    }
    r.get(..letters)?
        .iter()
        .try_fold(0usize, |n, &c| {
            Some(n * 26 + usize::from(c.to_ascii_uppercase() - b'A') + 1)
        })
        .and_then(|n| n.checked_sub(1))
}

/// Worksheet elements outside the cells whose text a person sees: a data validation's list
/// or bound (`formula1`, `formula2`; in the x14 extension, a `xm:f` inside them), and the
/// page headers and footers.
const SHEET_EXTRA_TEXT: &[&[u8]] = &[
    b"formula1",
    b"formula2",
    b"oddHeader",
    b"oddFooter",
    b"evenHeader",
    b"evenFooter",
    b"firstHeader",
    b"firstFooter",
];

/// A data validation's list (`"536-22-4817,pending"`: the entries of the cell's drop-down,
/// one per line), else the formula as it is, and what it shows if it is built of constants.
fn list_entries(formula: &str, out: &mut String) {
    let f = formula.trim();
    if let Some(list) = f.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        for entry in list.split(',') {
            out.push_str(entry.trim());
            out.push('\n');
        }
        return;
    }
    out.push_str(f);
    out.push('\n');
    if let Some(shown) = super::formula::evaluate(f) {
        out.push_str(&shown);
        out.push('\n');
    }
}

/// A header or footer as printed: the section and field codes (`&L`, `&P`, `&"Arial,Bold"`,
/// `&12`) removed, `&&` made `&`.
fn header_footer_text(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '&' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('&') => out.push('&'),
            Some('"') => {
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                }
            }
            Some(d) if d.is_ascii_digit() => {
                while chars.peek().is_some_and(|c| c.is_ascii_digit()) {
                    chars.next();
                }
            }
            // A section (&L, &C, &R) starts a new stretch of text.
            Some('L' | 'C' | 'R') => out.push(' '),
            _ => {}
        }
    }
    out
}

/// Attribute values of OpenDocument elements that a person sees, each on a line of its own:
/// what a formula of constant pieces shows (`table:formula`, `text:formula`), link and object
/// titles (`xlink:title`, `office:title`), and form controls' labels and values (`form:label`,
/// `form:value`, `form:current-value`).
fn odf_visible_attributes(e: &quick_xml::events::BytesStart<'_>, out: &mut String) {
    for a in e.attributes().flatten() {
        let key = a.key.local_name();
        let key = key.as_ref();
        let form = a.key.prefix().is_some_and(|p| p.as_ref() == b"form");
        if !(matches!(key, b"formula" | b"title" | b"label" | b"current-value")
            || key == b"value" && form)
        {
            continue;
        }
        let Ok(v) = a.unescape_value() else {
            continue;
        };
        let shown = if key == b"formula" {
            match super::formula::evaluate(&v) {
                Some(shown) => shown,
                None => continue,
            }
        } else {
            v.trim().to_string()
        };
        if shown.is_empty() {
            continue;
        }
        if out.chars().next_back().is_some_and(|c| !c.is_whitespace()) {
            out.push('\n');
        }
        out.push_str(&shown);
        out.push('\n');
    }
}

/// Attribute values of OOXML elements that a person sees, each on a line of its own (appended
/// to `out`): picture and shape alt text (`descr`, `title` of `wp:docPr`, `p:cNvPr`, `xdr:cNvPr`;
/// VML `alt`, `title`), hyperlink tooltips (`w:tooltip`, `tooltip`), a data validation's
/// messages (`prompt`, `promptTitle`, `error`, `errorTitle`), drop-down entries
/// (`w:listItem w:displayText`), a legacy form field's default, entries and help
/// (`w:default`, `w:listEntry`, `w:helpText`, `w:statusText`: `w:val`), a content control's
/// title (`w:alias w:val`), a custom document property's name (`property name`) and a sheet's
/// name (the tab a person sees).
fn visible_attributes(element: &[u8], e: &quick_xml::events::BytesStart<'_>, out: &mut String) {
    const ANY_ELEMENT: &[&[u8]] = &[
        b"descr",
        b"title",
        b"alt",
        b"tooltip",
        b"prompt",
        b"promptTitle",
        b"error",
        b"errorTitle",
        b"displayText",
    ];
    const VAL_ELEMENTS: &[&[u8]] = &[
        b"default",
        b"listEntry",
        b"helpText",
        b"statusText",
        b"alias",
    ];
    for a in e.attributes().flatten() {
        let key = a.key.local_name();
        let key = key.as_ref();
        let shown = ANY_ELEMENT.contains(&key)
            || key == b"val" && VAL_ELEMENTS.contains(&element)
            || key == b"name" && matches!(element, b"property" | b"sheet");
        if !shown {
            continue;
        }
        let Ok(v) = a.unescape_value() else {
            continue;
        };
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        if out.chars().next_back().is_some_and(|c| !c.is_whitespace()) {
            out.push('\n');
        }
        out.push_str(v);
        // A custom property's name is the label of the value that follows it.
        out.push_str(if element == b"property" { ": " } else { "\n" });
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
    fn sheet_cells_stay_in_their_columns() {
        // Excel leaves empty cells out (or writes them empty): each cell goes to its column.
        let xml = br#"<worksheet><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Name</t></is></c><c r="B1" t="inlineStr"><is><t>Note</t></is></c><c r="C1" t="inlineStr"><is><t>SSN</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>Ann</t></is></c><c r="B2" s="1"/><c r="C2"><v>536228714</v></c></row><row r="3"><c r="C3"><v>536228715</v></c></row><row r="4"><c r="A4"><v>1</v></c><c r="ZZ4"><v>2</v></c></row></sheetData></worksheet>"#;
        let mut out = String::new();
        sheet_text(xml, &[], &mut out);
        assert_eq!(
            out,
            "Name\tNote\tSSN\nAnn\t\t536228714\n\t\t536228715\n1\t2\n"
        );
        assert_eq!(column_of(b"A1"), Some(0));
        assert_eq!(column_of(b"z9"), Some(25));
        assert_eq!(column_of(b"AB12"), Some(27));
        assert_eq!(column_of(b"XFD1048576"), Some(16383));
        assert_eq!(column_of(b"ABCD1"), None);
        assert_eq!(column_of(b"12"), None);
    }

    #[test]
    fn docx_paragraphs_are_lines_and_entities_resolved() {
        let xml = br#"<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>SSN &#49;23</w:t></w:r><w:r><w:tab/><w:t>-45-6780</w:t></w:r></w:p><w:p><w:r><w:t>next &amp; last</w:t></w:r></w:p></w:body></w:document>"#;
        let mut out = String::new();
        xml_text(xml, &Markup::OOXML, &mut out);
        assert_eq!(out, "SSN 123\t-45-6780\nnext & last\n");
    }

    #[test]
    fn odf_and_docx_table_rows_are_lines_and_cells_tabs() {
        // A paragraph per cell, an empty cell inside the row, the unused columns repeated.
        let xml = br#"<office:document-content xmlns:office="o" xmlns:table="t" xmlns:text="x"><office:body><office:spreadsheet><table:table><table:table-row><table:table-cell><text:p>Name</text:p></table:table-cell><table:table-cell/><table:table-cell><text:p>SSN</text:p><text:p>(no dashes)</text:p></table:table-cell><table:table-cell table:number-columns-repeated="1021"/></table:table-row><table:table-row><table:table-cell><text:p>Ann</text:p></table:table-cell><table:table-cell table:number-columns-repeated="1"/><table:table-cell><text:p>536228714</text:p></table:table-cell></table:table-row><table:table-row table:number-rows-repeated="1048574"><table:table-cell table:number-columns-repeated="1024"/></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#;
        let mut out = String::new();
        xml_text(xml, &Markup::ODF, &mut out);
        let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
        assert_eq!(
            lines,
            ["Name \t\tSSN (no dashes)", "Ann \t\t536228714", ""],
            "{out:?}"
        );
        let xml = br#"<w:document xmlns:w="x"><w:body><w:tbl><w:tr><w:tc><w:p><w:r><w:t>Name</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>SSN</w:t></w:r></w:p></w:tc></w:tr><w:tr><w:tc><w:p><w:r><w:t>Ann</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>536228714</w:t></w:r></w:p></w:tc></w:tr></w:tbl><w:p><w:r><w:t>end</w:t></w:r></w:p></w:body></w:document>"#;
        let mut out = String::new();
        xml_text(xml, &Markup::OOXML, &mut out);
        let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
        assert_eq!(lines, ["Name \tSSN", "Ann \t536228714", "end"], "{out:?}");
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
    fn formulas_are_scanned_with_their_cells() {
        let xml = br#"<worksheet><sheetData><row><c t="inlineStr"><is><t>SSN:</t></is></c><c t="str"><f>"536-22-4817"</f></c><c><f t="shared" si="0"/><v>3</v></c></row></sheetData></worksheet>"#;
        let mut out = String::new();
        sheet_text(xml, &[], &mut out);
        assert_eq!(out, "SSN:\t\"536-22-4817\"\t3\n");
    }

    #[test]
    fn sheet_extras_are_read() {
        let xml = br#"<worksheet><sheetData><row><c t="str"><f>"536"&amp;"-22-"&amp;"4817"</f></c></row></sheetData><dataValidations><dataValidation type="list" prompt="Pick one"><formula1>"a,b"</formula1></dataValidation></dataValidations><hyperlinks><hyperlink ref="A1" tooltip="tip"/></hyperlinks><headerFooter><oddHeader>&amp;LSSN&amp;&amp;&amp;14x</oddHeader></headerFooter></worksheet>"#;
        let mut out = String::new();
        assert!(sheet_text(xml, &[], &mut out));
        assert_eq!(
            out,
            "\"536\"&\"-22-\"&\"4817\" 536-22-4817\nPick one\na\nb\ntip\n SSN&x\n"
        );
    }

    #[test]
    fn visible_attributes_are_read() {
        let xml = br#"<w:document xmlns:w="w" xmlns:wp="p"><w:p><w:r><w:t>See</w:t></w:r><wp:docPr id="1" name="Picture 1" descr="alt text"/><w:hyperlink w:tooltip="tip"><w:r><w:t>here</w:t></w:r></w:hyperlink></w:p><w:default w:val="dflt"/><w:tag w:val="hidden"/></w:document>"#;
        let mut out = String::new();
        xml_text(xml, &Markup::OOXML, &mut out);
        assert_eq!(out, "See\nalt text\ntip\nhere\ndflt\n");
        let mut out = String::new();
        let odf = br#"<t:table-cell xmlns:t="t" t:formula="of:=&quot;5&quot;&amp;&quot;3&quot;"/>"#;
        xml_text(odf, &Markup::ODF, &mut out);
        // An empty cell of a table row writes no tab of its own (tables keep their columns).
        assert_eq!(out, "53\n");
    }

    #[test]
    fn relationship_targets_resolve_to_entry_names() {
        assert_eq!(resolve_target("word/", "media/a.png"), "word/media/a.png");
        assert_eq!(
            resolve_target("xl/worksheets/", "../strs.xml"),
            "xl/strs.xml"
        );
        assert_eq!(
            resolve_target("word/", "/custom/x%20y.xml"),
            "custom/x y.xml"
        );
        let rels = br#"<Relationships><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/aFChunk" Target="chunk.htm"/><Relationship Id="rId2" Type="http://x/hyperlink" Target="https://example.com/" TargetMode="External"/></Relationships>"#;
        assert_eq!(
            relationships_all("word/_rels/document.xml.rels", rels),
            vec![
                ("aFChunk".to_string(), "word/chunk.htm".to_string(), false),
                (
                    "hyperlink".to_string(),
                    "https://example.com/".to_string(),
                    true
                )
            ]
        );
        assert_eq!(
            relationships_all("_rels/.rels", br#"<Relationships><Relationship Type="a/officeDocument" Target="doc/main.xml"/></Relationships>"#),
            vec![("officeDocument".to_string(), "doc/main.xml".to_string(), false)]
        );
    }

    #[test]
    fn addresses_are_percent_decoded() {
        assert_eq!(percent_decoded("a?SSN%3A%20536%2"), "a?SSN: 536%2");
        assert_eq!(percent_decoded("%C3%A9%zz"), "é%zz");
    }

    #[test]
    fn data_xml_elements_are_separate_fields() {
        let mut out = String::new();
        xml_text(b"<e><a>536</a><b>22</b></e>", &Markup::DATA, &mut out);
        assert_eq!(out, "536\n22\n\n");
        assert_eq!(
            root_element(b"<?xml version=\"1.0\"?><!-- c --><x:sst xmlns:x=\"u\"/>"),
            b"sst"
        );
        assert!(looks_like_xml(b"\xEF\xBB\xBF <root xmlns=\"u\"/>"));
        assert!(!looks_like_xml(b"<html><body>hi</body></html>"));
    }

    #[derive(Default)]
    struct Seen {
        text: Vec<(String, String)>,
        unscannable: Vec<(String, String)>,
    }

    impl crate::decode::Sink for Seen {
        fn text(&mut self, location: &str, text: &str) {
            self.text.push((location.to_string(), text.to_string()));
        }
        fn encrypted(&mut self, _: &str, _: &str) {}
        fn unscannable(&mut self, location: &str, reason: &str) {
            self.unscannable
                .push((location.to_string(), reason.to_string()));
        }
    }

    fn flat(data: &str) -> Seen {
        let limits = crate::limits::Limits::default();
        let mut seen = Seen::default();
        let mut ctx = Ctx::new(&limits, &mut seen);
        assert!(is_flat_xml(data.as_bytes()));
        flat_xml(&mut ctx, "attachment:f", data.as_bytes(), 0);
        seen
    }

    fn text_at(seen: &Seen, location: &str) -> String {
        seen.text
            .iter()
            .filter(|(l, _)| l == location)
            .map(|(_, t)| t.as_str())
            .collect()
    }

    #[test]
    fn flat_odf_runs_are_joined() {
        let seen = flat(
            r#"<?xml version="1.0"?><office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text><text:p>SSN: 536-<text:span>22</text:span>-4817</text:p><draw:image xmlns:draw="d"><office:binary-data>iVBORw0KGgo=</office:binary-data></draw:image></office:text></office:body></office:document>"#,
        );
        let text = text_at(&seen, "attachment:f");
        assert!(text.contains("SSN: 536-22-4817"), "{text}");
        assert!(!text.contains("iVBOR"));
    }

    #[test]
    fn flat_opc_parts_and_binary_parts_are_read() {
        // "<p>SSN: 536-22-4817</p>" in base64.
        let seen = flat(
            r#"<?xml version="1.0"?><?mso-application progid="Word.Document"?><pkg:package xmlns:pkg="http://schemas.microsoft.com/office/2006/xmlPackage"><pkg:part pkg:name="/word/document.xml"><pkg:xmlData><w:document xmlns:w="w"><w:body><w:p><w:r><w:t>Dear </w:t></w:r><w:r><w:t>Sam</w:t></w:r></w:p></w:body></w:document></pkg:xmlData></pkg:part><pkg:part pkg:name="/word/afchunk.htm"><pkg:binaryData>PHA+U1NOOiA1MzYt
MjItNDgxNzwvcD4=</pkg:binaryData></pkg:part><pkg:part pkg:name="/word/media/image1.png"><pkg:binaryData>iVBORw0KGgo=</pkg:binaryData></pkg:part></pkg:package>"#,
        );
        assert!(text_at(&seen, "attachment:f").contains("Dear Sam"));
        assert!(text_at(&seen, "attachment:f/afchunk.htm").contains("SSN: 536-22-4817"));
        assert!(seen.text.iter().all(|(l, _)| !l.contains("image1")));
    }

    #[test]
    fn word_and_excel_2003_xml() {
        let seen = flat(
            r#"<w:wordDocument xmlns:w="http://schemas.microsoft.com/office/word/2003/wordml"><w:body><w:p><w:r><w:t>SSN: 536-</w:t></w:r><w:r><w:t>22-4817</w:t></w:r></w:p></w:body></w:wordDocument>"#,
        );
        assert!(text_at(&seen, "attachment:f").contains("SSN: 536-22-4817"));
        let seen = flat(
            r#"<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet ss:Name="S"><Table><Row><Cell><Data ss:Type="String">SSN</Data></Cell><Cell><Data ss:Type="String">536-22-4817</Data></Cell></Row></Table></Worksheet></Workbook>"#,
        );
        assert!(text_at(&seen, "attachment:f").contains("SSN\t536-22-4817\t\n"));
        assert!(!is_flat_xml(b"<document><x>1</x></document>"));
    }

    #[test]
    fn xls_filepass_is_found() {
        // BOF record then FILEPASS.
        let stream = [0x09, 0x08, 0x02, 0x00, 0x00, 0x06, 0x2F, 0x00, 0x00, 0x00];
        assert!(xls_encrypted(&stream));
        assert!(!xls_encrypted(&[0x09, 0x08, 0x00, 0x00]));
    }
}

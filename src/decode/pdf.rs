//! PDF text.
//!
//! A small PDF reader of our own, bounded by construction, rather than lopdf: lopdf's parser
//! recurses without limit on nested arrays and dictionaries, so a 400 KB file of `[[[[...`
//! overflows the stack and aborts the whole process (measured: even on a 64 MiB thread stack,
//! and `catch_unwind` cannot catch that), and it inflates streams and expands ToUnicode ranges
//! without bounds. Here every nesting is depth-limited, every stream is decoded through
//! [`super::bounded`] with the part cap and the expansion ratio, and the whole extraction is
//! additionally wrapped in `catch_unwind`.
//!
//! What is read:
//! - objects found by scanning for `N G obj` (so a broken or missing xref table does not
//!   matter), object streams, and the trailer / cross-reference stream dictionaries;
//! - `/Encrypt` in a trailer → reported encrypted (`pdf`), never decrypted;
//! - each page's content streams (and form XObjects they draw, a few levels deep): text shown
//!   by `Tj`, `TJ`, `'` and `"`, decoded through the font's ToUnicode CMap, else its simple
//!   encoding (WinAnsi, MacRoman, Standard, `/Differences` glyph names). Word gaps and line
//!   breaks come from text positions and glyph widths;
//! - annotation contents (comments) and interactive form field values (`/T: /V`), since
//!   filled-in forms keep their values there rather than in the page content;
//! - bookmarks (outline titles) and link addresses (URI actions);
//! - the document information dictionary (`/Title`, `/Subject`, `/Keywords`, `/Author` and
//!   any custom entry) and XMP metadata streams (`/Type /Metadata`: element text and attribute
//!   values);
//! - embedded files (`/EF` in file specifications, from the `/EmbeddedFiles` name tree or
//!   file attachment annotations, and any `/Type /EmbeddedFile` stream), decoded like
//!   attachments at `LOCATION/name`.
//!
//! Not supported: text in images (no OCR; a PDF with pages but no text is reported so),
//! fonts without any Unicode mapping (e.g. Identity-H without ToUnicode; reported), Type3 font
//! metrics, LZW with early change off, PNG/TIFF predictors on content streams, and reading order
//! beyond the order text is drawn in.

use super::Ctx;
use super::bounded::{Counted, ReadStop, read_bounded};
use super::rtf::cp1252;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Instant;

/// Deepest nesting of arrays and dictionaries parsed in one object.
const MAX_OBJECT_DEPTH: usize = 64;
/// Most objects read from one file (each is small, but a file of millions would be slow).
const MAX_OBJECTS: usize = 200_000;
/// Most values (numbers, names, strings, arrays...) parsed from one file's objects: bounds the
/// memory of the object tree (a 32 MiB array of `0 0 0 ...` would otherwise become gigabytes).
const MAX_DOCUMENT_ITEMS: usize = 1_000_000;
/// Most values in one object, or in one operand of a content stream.
const MAX_OBJECT_ITEMS: usize = 200_000;
/// Operators interpreted between two checks of the time limit.
const TIME_CHECK_EVERY: usize = 4096;
/// Most pages read.
const MAX_PAGES: usize = 10_000;
/// How deep form XObjects drawing other forms are followed.
const MAX_FORM_DEPTH: usize = 4;
/// Most saved graphics states (`q`) kept.
const MAX_GSTATE_STACK: usize = 64;
/// Most operands kept for one operator, and items in one array operand.
const MAX_OPERANDS: usize = 64;
/// Most mappings read from one ToUnicode CMap.
const MAX_CMAP_ENTRIES: usize = 100_000;
/// Most form fields and annotations read.
const MAX_FIELDS: usize = 10_000;
/// Most XMP metadata streams read.
const MAX_METADATA_STREAMS: usize = 64;
/// Most embedded files read.
const MAX_EMBEDDED_FILES: usize = 64;

/// Extract the text of a PDF and emit it at `location`; its embedded files are decoded as
/// attachments. The container depth is not known here: it is taken as the number of `/` in
/// the location (each level of nesting adds at least one, so this never undercounts, and a
/// PDF embedded in itself stops at the depth limit).
pub fn extract(ctx: &mut Ctx<'_>, location: &str, data: &[u8]) {
    let depth = location.matches('/').count().min(ctx.limits.max_depth);
    extract_at(ctx, location, data, depth);
}

/// [`extract`] for a PDF at a known container depth.
pub fn extract_at(ctx: &mut Ctx<'_>, location: &str, data: &[u8], depth: usize) {
    let cap = ctx.limits.max_part_bytes.min(ctx.remaining_budget());
    let mut budget = Budget {
        cap,
        cap_is_budget: cap < ctx.limits.max_part_bytes,
        ratio: ctx.limits.max_expansion_ratio,
        used: 0,
        deadline: Instant::now() + ctx.time_left(),
    };
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_pdf(data, &mut budget)));
    let result = match outcome {
        Ok(result) => result,
        Err(_) => {
            ctx.unscannable(location, "corrupt PDF");
            return;
        }
    };
    // The inflated streams were capped by the budget; the text taken out of them is charged
    // when it is emitted (once).
    if let Err(stop) = ctx.check_time() {
        ctx.unscannable(location, stop.reason());
        return;
    }
    match result {
        Ok(PdfText::Encrypted) => ctx.encrypted(location, "pdf"),
        Ok(PdfText::Text { text, notes, files }) => {
            for note in notes {
                ctx.unscannable(location, &note);
            }
            ctx.emit_text(location, text.trim());
            for (name, bytes) in files {
                let at = format!("{location}/{name}");
                ctx.emit_name(&at, &name);
                ctx.attachment(&at, &name, None, &bytes, depth + 1);
            }
        }
        Err(PdfError::Corrupt(why)) => ctx.unscannable(location, &format!("corrupt PDF: {why}")),
        Err(PdfError::Limit(reason)) => ctx.unscannable(location, reason),
    }
}

/// Bounds for one PDF: decoded stream bytes (all streams together), ratio, time.
struct Budget {
    cap: usize,
    /// The cap is what is left of the message budget (so hitting it is a budget stop).
    cap_is_budget: bool,
    ratio: u64,
    used: usize,
    deadline: Instant,
}

impl Budget {
    fn size_reason(&self) -> &'static str {
        if self.cap_is_budget {
            super::Stop::Budget.reason()
        } else {
            "part size limit reached"
        }
    }

    fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

enum PdfError {
    Corrupt(String),
    Limit(&'static str),
}

enum PdfText {
    Encrypted,
    /// The text, and reasons why some of it may be missing (reported unscannable).
    Text {
        text: String,
        notes: Vec<String>,
        /// Embedded files: name and decoded content.
        files: Vec<(String, Vec<u8>)>,
    },
}

fn read_pdf(data: &[u8], budget: &mut Budget) -> Result<PdfText, PdfError> {
    let doc = Pdf::parse(data, budget)?;
    if doc.encrypted {
        return Ok(PdfText::Encrypted);
    }
    let mut extractor = Extractor {
        doc: &doc,
        budget,
        fonts: HashMap::new(),
        notes: Vec::new(),
        too_deep: doc.too_deep,
        too_many: doc.too_many,
        forms: HashMap::new(),
        unmapped: 0,
        shown: 0,
    };
    let mut text = extractor.all_text();
    let has_page_text = !text.trim().is_empty();
    let files = extractor.metadata_and_files(&mut text);
    let mut notes = std::mem::take(&mut extractor.notes);
    notes.extend(doc.notes.iter().map(|n| n.to_string()));
    if extractor.too_deep {
        notes.push("PDF nesting depth limit reached (some objects not read)".to_string());
    }
    if extractor.too_many {
        notes.push("PDF object size limit reached (some objects not read)".to_string());
    }
    if extractor.unmapped > 0 && extractor.unmapped * 10 >= extractor.shown {
        notes.push("PDF text in fonts without a Unicode mapping is not scanned".to_string());
    }
    if !has_page_text && !doc.pages.is_empty() {
        notes.push("PDF has no text layer (image-only pages are not scanned: no OCR)".to_string());
    }
    if !has_page_text && doc.pages.is_empty() {
        // Nothing readable at all: say so rather than pass the file as clean.
        notes.push("corrupt PDF: no page could be read".to_string());
    }
    notes.dedup();
    Ok(PdfText::Text { text, notes, files })
}

// ---------------------------------------------------------------------------------------------
// Objects and lexing
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Obj {
    Null,
    Bool(bool),
    Int(i64),
    Real(f64),
    Name(Vec<u8>),
    Str(Vec<u8>),
    Array(Vec<Obj>),
    /// Boxed, like the stream dictionary, to keep every value small (see [`MAX_DOCUMENT_ITEMS`]).
    Dict(Box<Dict>),
    Ref(u32, u16),
    /// A stream: its dictionary and its raw (still encoded) data.
    Stream(Box<Dict>, Rc<[u8]>),
}

type Dict = HashMap<Vec<u8>, Obj>;

impl Obj {
    fn as_f64(&self) -> Option<f64> {
        match self {
            Obj::Int(i) => Some(*i as f64),
            Obj::Real(r) => Some(*r),
            _ => None,
        }
    }

    fn as_name(&self) -> Option<&[u8]> {
        match self {
            Obj::Name(n) => Some(n),
            _ => None,
        }
    }

    fn dict(&self) -> Option<&Dict> {
        match self {
            Obj::Dict(d) | Obj::Stream(d, _) => Some(d),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok<'a> {
    Num(f64, bool),
    Name(Vec<u8>),
    Str(Vec<u8>),
    ArrOpen,
    ArrClose,
    DictOpen,
    DictClose,
    /// A keyword or operator (`obj`, `R`, `Tj`...), or a stray delimiter.
    Word(&'a [u8]),
}

fn is_ws(b: u8) -> bool {
    matches!(b, 0 | 9 | 10 | 12 | 13 | 32)
}

fn is_delim(b: u8) -> bool {
    b"()<>[]{}/%".contains(&b)
}

/// A PDF tokenizer over a byte slice: no recursion, no allocation beyond the token.
struct Lexer<'a> {
    data: &'a [u8],
    pos: usize,
    /// Values the object parser may still create from this lexer.
    items: usize,
}

impl<'a> Lexer<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Lexer {
            data,
            pos,
            items: MAX_OBJECT_ITEMS,
        }
    }

    fn skip_ws(&mut self) {
        while let Some(&b) = self.data.get(self.pos) {
            if is_ws(b) {
                self.pos += 1;
            } else if b == b'%' {
                while self
                    .data
                    .get(self.pos)
                    .is_some_and(|&b| b != b'\n' && b != b'\r')
                {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    fn next(&mut self) -> Option<Tok<'a>> {
        self.skip_ws();
        let data = self.data;
        let b = *data.get(self.pos)?;
        let next = data.get(self.pos + 1).copied();
        let tok = match b {
            b'[' => {
                self.pos += 1;
                Tok::ArrOpen
            }
            b']' => {
                self.pos += 1;
                Tok::ArrClose
            }
            b'<' if next == Some(b'<') => {
                self.pos += 2;
                Tok::DictOpen
            }
            b'>' if next == Some(b'>') => {
                self.pos += 2;
                Tok::DictClose
            }
            b'<' => Tok::Str(self.hex_string()),
            b'(' => Tok::Str(self.literal_string()),
            b'/' => {
                self.pos += 1;
                let start = self.pos;
                while data
                    .get(self.pos)
                    .is_some_and(|&b| !is_ws(b) && !is_delim(b))
                {
                    self.pos += 1;
                }
                Tok::Name(decode_name(&data[start..self.pos]))
            }
            b'{' | b'}' | b')' | b'>' => {
                self.pos += 1;
                Tok::Word(&data[self.pos - 1..self.pos])
            }
            _ => {
                let start = self.pos;
                while data
                    .get(self.pos)
                    .is_some_and(|&b| !is_ws(b) && !is_delim(b))
                {
                    self.pos += 1;
                }
                let word = &data[start..self.pos];
                match parse_number(word) {
                    Some((v, int)) => Tok::Num(v, int),
                    None => Tok::Word(word),
                }
            }
        };
        Some(tok)
    }

    fn literal_string(&mut self) -> Vec<u8> {
        let data = self.data;
        self.pos += 1;
        let mut out = Vec::new();
        let mut depth = 1usize;
        while let Some(&b) = data.get(self.pos) {
            self.pos += 1;
            match b {
                b'\\' => {
                    let Some(&e) = data.get(self.pos) else { break };
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'\r' => {
                            if data.get(self.pos) == Some(&b'\n') {
                                self.pos += 1;
                            }
                        }
                        b'\n' => {}
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match data.get(self.pos) {
                                    Some(&d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push((v & 0xFF) as u8);
                        }
                        other => out.push(other),
                    }
                }
                b'(' => {
                    depth += 1;
                    out.push(b);
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                    out.push(b);
                }
                _ => out.push(b),
            }
        }
        out
    }

    fn hex_string(&mut self) -> Vec<u8> {
        let rest = self.data.get(self.pos + 1..).unwrap_or(&[]);
        let end = memchr::memchr(b'>', rest).map_or(rest.len(), |e| e + 1);
        self.pos += 1 + end;
        ascii_hex(&rest[..end])
    }
}

fn parse_number(word: &[u8]) -> Option<(f64, bool)> {
    let first = *word.first()?;
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return None;
    }
    let s = std::str::from_utf8(word).ok()?;
    let int = !s.contains('.');
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Some((v, int)),
        // Tolerate malformed numbers such as `--5` or `1.2.3` as zero, like readers do.
        _ if word
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.')) =>
        {
            Some((0.0, int))
        }
        _ => None,
    }
}

/// Names may escape bytes as `#hh`.
fn decode_name(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'#'
            && let Some(h) = raw.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(h).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Why an object could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParseError {
    /// Nested deeper than [`MAX_OBJECT_DEPTH`].
    Depth,
    /// More values than the lexer's item budget.
    TooMany,
    /// The data ended.
    End,
}

/// Parse one object at the lexer's position. Nesting deeper than [`MAX_OBJECT_DEPTH`] is an
/// error (the object is dropped), so hostile nesting costs neither stack nor much time.
fn parse_obj(lex: &mut Lexer<'_>, depth: usize) -> Result<Obj, ParseError> {
    let tok = lex.next().ok_or(ParseError::End)?;
    parse_from(lex, tok, depth)
}

fn parse_from(lex: &mut Lexer<'_>, tok: Tok<'_>, depth: usize) -> Result<Obj, ParseError> {
    if lex.items == 0 {
        return Err(ParseError::TooMany);
    }
    lex.items -= 1;
    Ok(match tok {
        Tok::Num(v, true) => {
            // `num gen R` is a reference.
            let save = lex.pos;
            if let Some(Tok::Num(g, true)) = lex.next()
                && let Some(Tok::Word(b"R")) = lex.next()
                && v >= 0.0
                && v <= f64::from(u32::MAX)
                && (0.0..=65535.0).contains(&g)
            {
                return Ok(Obj::Ref(v as u32, g as u16));
            }
            lex.pos = save;
            Obj::Int(v as i64)
        }
        Tok::Num(v, false) => Obj::Real(v),
        Tok::Name(n) => Obj::Name(n),
        Tok::Str(s) => Obj::Str(s),
        Tok::ArrOpen => {
            if depth >= MAX_OBJECT_DEPTH {
                return Err(ParseError::Depth);
            }
            let mut items = Vec::new();
            loop {
                match lex.next() {
                    None | Some(Tok::ArrClose) => break,
                    Some(Tok::DictClose) => {}
                    Some(Tok::Word(w)) if is_structural_keyword(w) => {
                        // A broken array: do not swallow the rest of the file.
                        lex.pos -= w.len();
                        break;
                    }
                    Some(tok) => items.push(parse_from(lex, tok, depth + 1)?),
                }
            }
            Obj::Array(items)
        }
        Tok::DictOpen => {
            if depth >= MAX_OBJECT_DEPTH {
                return Err(ParseError::Depth);
            }
            let mut dict = Dict::new();
            loop {
                match lex.next() {
                    None | Some(Tok::DictClose) => break,
                    Some(Tok::Name(key)) => {
                        let save = lex.pos;
                        match lex.next() {
                            None => break,
                            Some(Tok::DictClose) => break,
                            Some(Tok::Word(w)) if is_structural_keyword(w) => {
                                lex.pos = save;
                                break;
                            }
                            Some(tok) => {
                                let value = parse_from(lex, tok, depth + 1)?;
                                dict.insert(key, value);
                            }
                        }
                    }
                    Some(Tok::Word(w)) if is_structural_keyword(w) => {
                        lex.pos -= w.len();
                        break;
                    }
                    Some(_) => {}
                }
            }
            Obj::Dict(Box::new(dict))
        }
        Tok::Word(b"true") => Obj::Bool(true),
        Tok::Word(b"false") => Obj::Bool(false),
        _ => Obj::Null,
    })
}

fn is_structural_keyword(w: &[u8]) -> bool {
    matches!(
        w,
        b"endobj" | b"stream" | b"endstream" | b"obj" | b"trailer" | b"xref" | b"startxref"
    )
}

// ---------------------------------------------------------------------------------------------
// The document
// ---------------------------------------------------------------------------------------------

struct Pdf {
    /// Object number → (file offset of the definition, generation, object). Later definitions
    /// (incremental updates) replace earlier ones.
    objects: HashMap<u32, (usize, u16, Obj)>,
    /// Trailer dictionaries and cross-reference stream dictionaries, in file order.
    trailers: Vec<Dict>,
    encrypted: bool,
    /// Some object was nested too deeply and was not read.
    too_deep: bool,
    /// The item budget ran out: later objects were not read.
    too_many: bool,
    /// Values left of [`MAX_DOCUMENT_ITEMS`].
    items_left: usize,
    /// Why some objects were not read (reported unscannable, the rest is still read).
    notes: Vec<&'static str>,
    /// Pages in order, each with its inherited resources.
    pages: Vec<(Dict, Option<Obj>)>,
}

impl Pdf {
    fn parse(data: &[u8], budget: &mut Budget) -> Result<Pdf, PdfError> {
        let mut pdf = Pdf {
            objects: HashMap::new(),
            trailers: Vec::new(),
            encrypted: false,
            too_deep: false,
            too_many: false,
            items_left: MAX_DOCUMENT_ITEMS,
            notes: Vec::new(),
            pages: Vec::new(),
        };
        pdf.scan_objects(data)?;
        pdf.trailers.extend(trailer_dicts(data));
        pdf.encrypted = pdf.trailers.iter().any(|t| t.contains_key(&b"Encrypt"[..]));
        if pdf.encrypted {
            return Ok(pdf);
        }
        pdf.read_object_streams(budget);
        if pdf.objects.is_empty() {
            return Err(PdfError::Corrupt("no objects".to_string()));
        }
        pdf.pages = pdf.collect_pages();
        Ok(pdf)
    }

    /// Find every `N G obj` in the file and parse the object after it.
    fn scan_objects(&mut self, data: &[u8]) -> Result<(), PdfError> {
        let finder = memchr::memmem::Finder::new(b"obj");
        let mut pos = 0;
        while let Some(found) = finder.find(&data[pos..]) {
            let at = pos + found;
            pos = at + 3;
            if data.get(at + 3).is_some_and(|&b| !is_ws(b) && !is_delim(b)) {
                continue;
            }
            let Some((num, generation)) = object_header(data, at) else {
                continue;
            };
            let mut lex = Lexer::new(data, at + 3);
            let obj = match self.parse_counted(&mut lex) {
                Ok(obj) => obj,
                Err(ParseError::TooMany) => break,
                Err(_) => continue,
            };
            let obj = match obj {
                Obj::Dict(dict) => {
                    let save = lex.pos;
                    match lex.next() {
                        Some(Tok::Word(b"stream")) => {
                            let (content, end) = stream_data(data, lex.pos, &dict);
                            if dict.get(&b"Type"[..]).and_then(Obj::as_name) == Some(b"XRef") {
                                self.trailers.push(Dict::clone(&dict));
                            }
                            pos = end;
                            Obj::Stream(dict, content.into())
                        }
                        _ => {
                            lex.pos = save;
                            pos = pos.max(lex.pos);
                            Obj::Dict(dict)
                        }
                    }
                }
                other => {
                    pos = pos.max(lex.pos);
                    other
                }
            };
            if self.objects.len() >= MAX_OBJECTS {
                return Err(PdfError::Limit("PDF object count limit reached"));
            }
            self.objects.insert(num, (at, generation, obj));
        }
        Ok(())
    }

    /// Objects stored in object streams (`/Type /ObjStm`), decoded within the budget.
    fn read_object_streams(&mut self, budget: &mut Budget) {
        let streams: Vec<(usize, Dict, Rc<[u8]>)> = self
            .objects
            .values()
            .filter_map(|(offset, _, obj)| match obj {
                Obj::Stream(dict, data)
                    if dict.get(&b"Type"[..]).and_then(Obj::as_name) == Some(b"ObjStm") =>
                {
                    Some((*offset, Dict::clone(dict), data.clone()))
                }
                _ => None,
            })
            .collect();
        for (offset, dict, raw) in streams {
            let content = match decode_stream(self, &dict, &raw, budget) {
                Ok(content) => content,
                Err(DecodeError::Limit(reason)) => {
                    if !self.notes.contains(&reason) {
                        self.notes.push(reason);
                    }
                    continue;
                }
                Err(DecodeError::Unsupported) => continue,
            };
            let n = self
                .int(dict.get(&b"N"[..]))
                .unwrap_or(0)
                .clamp(0, 1_000_000) as usize;
            let first = self.int(dict.get(&b"First"[..])).unwrap_or(0).max(0) as usize;
            let mut header = Lexer::new(&content, 0);
            for _ in 0..n {
                let (Some(Tok::Num(num, true)), Some(Tok::Num(rel, true))) =
                    (header.next(), header.next())
                else {
                    break;
                };
                let start = first.saturating_add(rel.max(0.0) as usize);
                if start >= content.len() || num < 0.0 || num > f64::from(u32::MAX) {
                    continue;
                }
                let mut lex = Lexer::new(&content, start);
                let obj = match self.parse_counted(&mut lex) {
                    Ok(obj) => obj,
                    Err(ParseError::TooMany) => return,
                    Err(_) => continue,
                };
                let num = num as u32;
                let newer = self
                    .objects
                    .get(&num)
                    .is_none_or(|(existing, _, _)| *existing < offset);
                if newer {
                    if self.objects.len() >= MAX_OBJECTS {
                        self.too_many = true;
                        return;
                    }
                    self.objects.insert(num, (offset, 0, obj));
                }
            }
        }
    }

    /// Parse an object within the document's item budget, recording why one was dropped.
    fn parse_counted(&mut self, lex: &mut Lexer<'_>) -> Result<Obj, ParseError> {
        lex.items = self.items_left.min(MAX_OBJECT_ITEMS);
        let before = lex.items;
        let result = parse_obj(lex, 0);
        self.items_left -= before - lex.items;
        match result {
            Err(ParseError::Depth) => self.too_deep = true,
            Err(ParseError::TooMany) => {
                self.too_many = true;
                if self.items_left > 0 {
                    // One oversized object: skip it, keep reading the others.
                    return Err(ParseError::End);
                }
            }
            _ => {}
        }
        result
    }

    fn get(&self, num: u32) -> &Obj {
        self.objects.get(&num).map_or(&Obj::Null, |(_, _, o)| o)
    }

    /// Follow references (a few hops at most).
    fn resolve<'a>(&'a self, mut obj: &'a Obj) -> &'a Obj {
        for _ in 0..8 {
            match obj {
                Obj::Ref(num, _) => obj = self.get(*num),
                _ => return obj,
            }
        }
        &Obj::Null
    }

    fn int(&self, obj: Option<&Obj>) -> Option<i64> {
        match self.resolve(obj?) {
            Obj::Int(i) => Some(*i),
            Obj::Real(r) => Some(*r as i64),
            _ => None,
        }
    }

    fn dict_of<'a>(&'a self, obj: Option<&'a Obj>) -> Option<&'a Dict> {
        self.resolve(obj?).dict()
    }

    fn array_of<'a>(&'a self, obj: Option<&'a Obj>) -> &'a [Obj] {
        match obj.map(|o| self.resolve(o)) {
            Some(Obj::Array(items)) => items,
            _ => &[],
        }
    }

    /// The document catalog: from the last trailer with a `/Root`, else any `/Type /Catalog`.
    fn catalog(&self) -> Option<&Dict> {
        let from_trailer = self
            .trailers
            .iter()
            .rev()
            .find_map(|t| self.dict_of(t.get(&b"Root"[..])));
        from_trailer.or_else(|| {
            self.objects.values().find_map(|(_, _, o)| {
                o.dict()
                    .filter(|d| d.get(&b"Type"[..]).and_then(Obj::as_name) == Some(b"Catalog"))
            })
        })
    }

    /// Pages in document order with their inherited `/Resources`. If the page tree is missing
    /// or broken, every `/Type /Page` object is taken, in object-number order.
    fn collect_pages(&self) -> Vec<(Dict, Option<Obj>)> {
        let mut pages = Vec::new();
        let mut seen = HashSet::new();
        if let Some(root) = self.catalog().and_then(|c| c.get(&b"Pages"[..])) {
            // Iterative walk: (node, inherited resources).
            let mut stack: Vec<(&Obj, Option<Obj>)> = vec![(root, None)];
            while let Some((node, inherited)) = stack.pop() {
                if pages.len() >= MAX_PAGES {
                    break;
                }
                if let Obj::Ref(num, _) = node
                    && !seen.insert(*num)
                {
                    continue;
                }
                let Some(dict) = self.dict_of(Some(node)) else {
                    continue;
                };
                let resources = dict.get(&b"Resources"[..]).cloned().or(inherited);
                match dict.get(&b"Kids"[..]) {
                    Some(kids)
                        if dict.get(&b"Type"[..]).and_then(Obj::as_name) != Some(b"Page") =>
                    {
                        for kid in self.array_of(Some(kids)).iter().rev() {
                            stack.push((kid, resources.clone()));
                        }
                    }
                    _ => pages.push((dict.clone(), resources)),
                }
            }
        }
        if pages.is_empty() {
            let mut numbers: Vec<&u32> = self.objects.keys().collect();
            numbers.sort();
            for num in numbers {
                let Some(dict) = self.get(*num).dict() else {
                    continue;
                };
                if dict.get(&b"Type"[..]).and_then(Obj::as_name) == Some(b"Page") {
                    let resources = self.inherited(dict, b"Resources");
                    pages.push((dict.clone(), resources));
                    if pages.len() >= MAX_PAGES {
                        break;
                    }
                }
            }
        }
        pages
    }

    /// A page attribute, looked up through `/Parent` links if the page does not have it.
    fn inherited(&self, dict: &Dict, key: &[u8]) -> Option<Obj> {
        let mut node = dict;
        for _ in 0..32 {
            if let Some(v) = node.get(key) {
                return Some(v.clone());
            }
            node = self.dict_of(node.get(&b"Parent"[..]))?;
        }
        None
    }
}

/// `N G obj` ending at `at` (the position of `obj`): the object number and generation.
fn object_header(data: &[u8], at: usize) -> Option<(u32, u16)> {
    let mut i = at;
    let skip_ws_back = |i: &mut usize| {
        while *i > 0 && is_ws(data[*i - 1]) {
            *i -= 1;
        }
    };
    let digits_back = |i: &mut usize| -> Option<u64> {
        let end = *i;
        while *i > 0 && data[*i - 1].is_ascii_digit() && end - *i < 10 {
            *i -= 1;
        }
        std::str::from_utf8(&data[*i..end]).ok()?.parse().ok()
    };
    let ws_end = i;
    skip_ws_back(&mut i);
    if i == ws_end {
        return None;
    }
    let generation = digits_back(&mut i)?;
    let ws_end = i;
    skip_ws_back(&mut i);
    if i == ws_end {
        return None;
    }
    let num = digits_back(&mut i)?;
    if i > 0 && !is_ws(data[i - 1]) && !is_delim(data[i - 1]) {
        return None;
    }
    Some((u32::try_from(num).ok()?, u16::try_from(generation).ok()?))
}

/// The raw data of a stream whose `stream` keyword ends at `pos`, and where scanning resumes.
/// A direct `/Length` is used when `endstream` follows it; otherwise the data runs to the next
/// `endstream` (an indirect or wrong length is common in damaged files).
fn stream_data<'a>(data: &'a [u8], mut pos: usize, dict: &Dict) -> (&'a [u8], usize) {
    if data.get(pos) == Some(&b'\r') {
        pos += 1;
    }
    if data.get(pos) == Some(&b'\n') {
        pos += 1;
    }
    let start = pos.min(data.len());
    if let Some(Obj::Int(len)) = dict.get(&b"Length"[..])
        && let Ok(len) = usize::try_from(*len)
        && let Some(end) = start.checked_add(len)
        && end <= data.len()
    {
        let mut after = Lexer::new(data, end);
        after.skip_ws();
        if data[after.pos..].starts_with(b"endstream") {
            return (&data[start..end], after.pos + 9);
        }
    }
    match memchr::memmem::find(&data[start..], b"endstream") {
        Some(off) => {
            let mut end = start + off;
            if end > start && data[end - 1] == b'\n' {
                end -= 1;
            }
            if end > start && data[end - 1] == b'\r' {
                end -= 1;
            }
            (&data[start..end], start + off + 9)
        }
        None => (&data[start..], data.len()),
    }
}

/// Every `trailer << ... >>` dictionary in the file.
fn trailer_dicts(data: &[u8]) -> Vec<Dict> {
    memchr::memmem::find_iter(data, b"trailer")
        .filter_map(|at| {
            let mut lex = Lexer::new(data, at + 7);
            match parse_obj(&mut lex, 0) {
                Ok(Obj::Dict(d)) => Some(*d),
                _ => None,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Stream filters
// ---------------------------------------------------------------------------------------------

enum DecodeError {
    /// A filter we do not decode (images, encryption): the stream is skipped.
    Unsupported,
    /// A limit was reached: the reason.
    Limit(&'static str),
}

/// Decode a stream through its filters, charging the output to the budget. Each stage is
/// bounded by what is left of the budget, and inflation by the expansion ratio too.
fn decode_stream(
    doc: &Pdf,
    dict: &Dict,
    raw: &[u8],
    budget: &mut Budget,
) -> Result<Vec<u8>, DecodeError> {
    let filters: Vec<Vec<u8>> = match dict.get(&b"Filter"[..]).map(|f| doc.resolve(f)) {
        None | Some(Obj::Null) => Vec::new(),
        Some(Obj::Name(n)) => vec![n.clone()],
        Some(Obj::Array(items)) => items
            .iter()
            .filter_map(|i| doc.resolve(i).as_name().map(<[u8]>::to_vec))
            .collect(),
        Some(_) => return Err(DecodeError::Unsupported),
    };
    if filters.len() > 4 {
        return Err(DecodeError::Unsupported);
    }
    let mut data: Vec<u8> = Vec::new();
    let mut input: &[u8] = raw;
    let left = budget.cap.saturating_sub(budget.used);
    for filter in &filters {
        let output = match filter.as_slice() {
            b"FlateDecode" | b"Fl" => inflate(input, left, budget.ratio)?,
            b"LZWDecode" | b"LZW" => lzw(input, left, budget.ratio)?,
            b"ASCIIHexDecode" | b"AHx" => ascii_hex(input),
            b"ASCII85Decode" | b"A85" => ascii85(input),
            b"RunLengthDecode" | b"RL" => run_length(input, left)?,
            _ => return Err(DecodeError::Unsupported),
        };
        if output.len() > left {
            return Err(DecodeError::Limit(budget.size_reason()));
        }
        data = output;
        input = &data;
    }
    if filters.is_empty() {
        if raw.len() > left {
            return Err(DecodeError::Limit(budget.size_reason()));
        }
        data = raw.to_vec();
    }
    budget.used += data.len();
    Ok(data)
}

/// zlib (or, for damaged files, raw deflate) with the cap and ratio. A stream damaged near its
/// end keeps what was decoded before the damage.
fn inflate(input: &[u8], cap: usize, ratio: u64) -> Result<Vec<u8>, DecodeError> {
    let zlib_header = input.len() >= 2
        && input[0] & 0x0F == 8
        && (u16::from(input[0]) << 8 | u16::from(input[1])) % 31 == 0;
    let result = if zlib_header {
        let mut dec = flate2::read::ZlibDecoder::new(Counted::new(input));
        let consumed = |d: &flate2::read::ZlibDecoder<Counted<&[u8]>>| d.get_ref().count();
        read_bounded(&mut dec, cap, Some((ratio, &consumed)))
    } else {
        let mut dec = flate2::read::DeflateDecoder::new(Counted::new(input));
        let consumed = |d: &flate2::read::DeflateDecoder<Counted<&[u8]>>| d.get_ref().count();
        read_bounded(&mut dec, cap, Some((ratio, &consumed)))
    };
    match result {
        Ok(out) => Ok(out),
        Err(ReadStop::Io(_, partial)) => Ok(partial),
        Err(ReadStop::Size) => Err(DecodeError::Limit("part size limit reached")),
        Err(ReadStop::Ratio) => Err(DecodeError::Limit("expansion ratio limit reached")),
    }
}

/// LZW (early change, as PDF writers use), bounded like [`inflate`].
fn lzw(input: &[u8], cap: usize, ratio: u64) -> Result<Vec<u8>, DecodeError> {
    let mut decoder = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut consumed = 0usize;
    loop {
        let rest = input.get(consumed..).unwrap_or(&[]);
        let result = decoder.decode_bytes(rest, &mut chunk);
        consumed += result.consumed_in;
        let produced = chunk.get(..result.consumed_out).unwrap_or(&[]);
        if out.len() + produced.len() > cap {
            return Err(DecodeError::Limit("part size limit reached"));
        }
        out.extend_from_slice(produced);
        if out.len() > super::bounded::RATIO_FLOOR
            && out.len() as u64 > (consumed as u64).saturating_mul(ratio)
        {
            return Err(DecodeError::Limit("expansion ratio limit reached"));
        }
        match result.status {
            Ok(weezl::LzwStatus::Ok) if result.consumed_in + result.consumed_out > 0 => {}
            _ => return Ok(out),
        }
    }
}

/// ASCIIHexDecode: hex digit pairs up to `>`, white space ignored, an odd last digit padded.
fn ascii_hex(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 2);
    let mut high: Option<u8> = None;
    for &b in input {
        if b == b'>' {
            break;
        }
        let Some(v) = (b as char).to_digit(16) else {
            continue;
        };
        match high.take() {
            Some(h) => out.push(h << 4 | v as u8),
            None => high = Some(v as u8),
        }
    }
    if let Some(h) = high {
        out.push(h << 4);
    }
    out
}

fn ascii85(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 4 / 5);
    let mut group = [0u8; 5];
    let mut n = 0;
    let data = input.strip_prefix(b"<~").unwrap_or(input);
    for &b in data {
        match b {
            b'~' => break,
            b'z' if n == 0 => out.extend_from_slice(&[0; 4]),
            b'!'..=b'u' => {
                group[n] = b - b'!';
                n += 1;
                if n == 5 {
                    let v = group.iter().fold(0u64, |v, &d| v * 85 + u64::from(d));
                    out.extend_from_slice(&(v as u32).to_be_bytes());
                    n = 0;
                }
            }
            _ => {}
        }
    }
    if n > 1 {
        for slot in group.iter_mut().skip(n) {
            *slot = 84;
        }
        let v = group.iter().fold(0u64, |v, &d| v * 85 + u64::from(d));
        out.extend_from_slice(&(v as u32).to_be_bytes()[..n - 1]);
    }
    out
}

fn run_length(input: &[u8], cap: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&len) = input.get(i) {
        i += 1;
        match len {
            128 => break,
            0..=127 => {
                let n = usize::from(len) + 1;
                out.extend_from_slice(input.get(i..i + n).unwrap_or(&input[i.min(input.len())..]));
                i += n;
            }
            _ => {
                let Some(&b) = input.get(i) else { break };
                i += 1;
                out.extend(std::iter::repeat_n(b, 257 - usize::from(len)));
            }
        }
        if out.len() > cap {
            return Err(DecodeError::Limit("part size limit reached"));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Fonts
// ---------------------------------------------------------------------------------------------

/// What is needed to turn a font's character codes into text and advances.
struct Font {
    to_unicode: Option<CMap>,
    /// Simple fonts: code → character from the encoding and `/Differences`.
    simple: Option<Box<[Option<char>; 256]>>,
    /// Composite (Type0) fonts use multi-byte codes.
    composite: bool,
    widths: Widths,
    /// Whether the font gave glyph widths (else advances are estimates, and word gaps are
    /// only assumed for larger jumps).
    widths_known: bool,
}

enum Widths {
    Simple {
        first: u32,
        widths: Vec<f64>,
        missing: f64,
    },
    Cid {
        default: f64,
        ranges: Vec<(u32, u32, CidWidth)>,
    },
}

enum CidWidth {
    Same(f64),
    Each(Vec<f64>),
}

impl Widths {
    /// Advance of `code` in thousandths of the font size.
    fn of(&self, code: u32) -> f64 {
        match self {
            Widths::Simple {
                first,
                widths,
                missing,
            } => code
                .checked_sub(*first)
                .and_then(|i| widths.get(i as usize))
                .copied()
                .unwrap_or(*missing),
            Widths::Cid { default, ranges } => ranges
                .get(
                    ranges
                        .partition_point(|(lo, _, _)| *lo <= code)
                        .wrapping_sub(1),
                )
                .filter(|(lo, hi, _)| (*lo..=*hi).contains(&code))
                .map(|(lo, _, w)| match w {
                    CidWidth::Same(w) => *w,
                    CidWidth::Each(ws) => ws.get((code - lo) as usize).copied().unwrap_or(*default),
                })
                .unwrap_or(*default),
        }
    }
}

/// A ToUnicode CMap: single mappings and ranges, never expanded (a range may span millions
/// of codes).
#[derive(Default)]
struct CMap {
    /// Code space ranges: byte length, low and high bytes.
    codespace: Vec<(usize, Vec<u8>, Vec<u8>)>,
    chars: HashMap<(usize, u32), String>,
    ranges: Vec<(usize, u32, u32, RangeTarget)>,
    /// Longest source code seen in mappings (when there is no code space).
    max_len: usize,
}

enum RangeTarget {
    /// UTF-16 units of the first code; the last unit is incremented along the range.
    Start(Vec<u16>),
    Each(Vec<String>),
}

impl CMap {
    fn parse(data: &[u8]) -> CMap {
        let mut cmap = CMap::default();
        let mut lex = Lexer::new(data, 0);
        let mut entries = 0usize;
        let code = |s: &[u8]| s.iter().take(4).fold(0u32, |v, &b| v << 8 | u32::from(b));
        while let Some(tok) = lex.next() {
            if entries > MAX_CMAP_ENTRIES {
                break;
            }
            match tok {
                Tok::Word(b"begincodespacerange") => {
                    while let (Some(Tok::Str(lo)), Some(Tok::Str(hi))) = (lex.next(), lex.next()) {
                        if !lo.is_empty() && lo.len() <= 4 && lo.len() == hi.len() {
                            cmap.codespace.push((lo.len(), lo, hi));
                        }
                        entries += 1;
                    }
                }
                Tok::Word(b"beginbfchar") => {
                    while let Some(Tok::Str(src)) = lex.next() {
                        let dst = match lex.next() {
                            Some(Tok::Str(d)) => utf16be(&d),
                            Some(Tok::Name(n)) => {
                                glyph_char(&n).map(String::from).unwrap_or_default()
                            }
                            _ => break,
                        };
                        if !src.is_empty() && src.len() <= 4 {
                            cmap.max_len = cmap.max_len.max(src.len());
                            cmap.chars.insert((src.len(), code(&src)), dst);
                        }
                        entries += 1;
                    }
                }
                Tok::Word(b"beginbfrange") => {
                    while let Some(Tok::Str(lo)) = lex.next() {
                        let Some(Tok::Str(hi)) = lex.next() else {
                            break;
                        };
                        let target = match lex.next() {
                            Some(Tok::Str(d)) => RangeTarget::Start(
                                d.chunks(2)
                                    .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                                    .collect(),
                            ),
                            Some(Tok::ArrOpen) => {
                                let mut items = Vec::new();
                                while let Some(Tok::Str(d)) = lex.next() {
                                    if items.len() < 65_536 {
                                        items.push(utf16be(&d));
                                    }
                                }
                                RangeTarget::Each(items)
                            }
                            _ => break,
                        };
                        if !lo.is_empty() && lo.len() <= 4 && code(&lo) <= code(&hi) {
                            cmap.max_len = cmap.max_len.max(lo.len());
                            cmap.ranges.push((lo.len(), code(&lo), code(&hi), target));
                        }
                        entries += 1;
                    }
                }
                _ => {}
            }
        }
        cmap.ranges.sort_by_key(|(l, lo, _, _)| (*l, *lo));
        cmap
    }

    fn lookup(&self, len: usize, code: u32) -> Option<String> {
        if let Some(s) = self.chars.get(&(len, code)) {
            return Some(s.clone());
        }
        // Ranges are sorted by (length, low code): the candidate is the last one starting at
        // or before `code` (overlapping ranges, which CMaps should not have, may be missed).
        let at = self
            .ranges
            .partition_point(|(l, lo, _, _)| (*l, *lo) <= (len, code));
        let candidate = at.checked_sub(1).and_then(|i| self.ranges.get(i));
        candidate.and_then(|(l, lo, hi, target)| {
            if *l != len || !(*lo..=*hi).contains(&code) {
                return None;
            }
            let offset = code - lo;
            match target {
                RangeTarget::Start(units) => {
                    let mut units = units.clone();
                    let last = units.last_mut()?;
                    *last = last.wrapping_add(offset as u16);
                    Some(
                        char::decode_utf16(units)
                            .map(|r| r.unwrap_or('\u{FFFD}'))
                            .collect(),
                    )
                }
                RangeTarget::Each(items) => items.get(offset as usize).cloned(),
            }
        })
    }

    /// Length of the code starting at `bytes[0]`, from the code space ranges.
    fn code_len(&self, bytes: &[u8]) -> Option<usize> {
        (1..=4).find(|&len| {
            self.codespace.iter().any(|(l, lo, hi)| {
                *l == len
                    && bytes.len() >= len
                    && (0..len).all(|k| (lo[k]..=hi[k]).contains(&bytes[k]))
            })
        })
    }
}

fn utf16be(bytes: &[u8]) -> String {
    let units = bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    char::decode_utf16(units)
        .map(|r| r.unwrap_or('\u{FFFD}'))
        .collect()
}

impl Font {
    fn load(doc: &Pdf, dict: &Dict, budget: &mut Budget) -> Font {
        let subtype = dict.get(&b"Subtype"[..]).and_then(Obj::as_name);
        let composite = subtype == Some(b"Type0");
        let to_unicode = match dict.get(&b"ToUnicode"[..]).map(|o| doc.resolve(o)) {
            Some(Obj::Stream(d, raw)) => decode_stream(doc, d, raw, budget)
                .ok()
                .map(|b| CMap::parse(&b)),
            _ => None,
        };
        let simple = (!composite).then(|| simple_encoding(doc, dict));
        let widths = if composite {
            let descendant = doc
                .array_of(dict.get(&b"DescendantFonts"[..]))
                .first()
                .and_then(|d| doc.dict_of(Some(d)));
            cid_widths(doc, descendant)
        } else {
            let missing = doc
                .dict_of(dict.get(&b"FontDescriptor"[..]))
                .and_then(|fd| doc.int(fd.get(&b"MissingWidth"[..])))
                .filter(|w| *w > 0)
                .map_or(500.0, |w| w as f64);
            Widths::Simple {
                first: doc
                    .int(dict.get(&b"FirstChar"[..]))
                    .unwrap_or(0)
                    .clamp(0, 255) as u32,
                widths: doc
                    .array_of(dict.get(&b"Widths"[..]))
                    .iter()
                    .take(256)
                    .map(|w| doc.resolve(w).as_f64().unwrap_or(missing))
                    .collect(),
                missing,
            }
        };
        let widths_known = match &widths {
            Widths::Simple { widths, .. } => !widths.is_empty(),
            Widths::Cid { .. } => true,
        };
        Font {
            to_unicode,
            simple: simple.map(Box::new),
            composite,
            widths,
            widths_known,
        }
    }

    /// A font for text shown without a usable font: bytes as Latin-1, average widths.
    fn fallback() -> Font {
        let mut table = [None; 256];
        for (i, slot) in table.iter_mut().enumerate() {
            *slot = Some(char::from(i as u8));
        }
        Font {
            to_unicode: None,
            simple: Some(Box::new(table)),
            composite: false,
            widths: Widths::Simple {
                first: 0,
                widths: Vec::new(),
                missing: 500.0,
            },
            widths_known: false,
        }
    }

    /// Split `bytes` into codes: (code, byte length).
    fn codes(&self, bytes: &[u8]) -> Vec<(u32, usize)> {
        let mut codes = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let rest = &bytes[i..];
            let len = self
                .to_unicode
                .as_ref()
                .and_then(|c| {
                    c.code_len(rest)
                        .or_else(|| (c.codespace.is_empty() && c.max_len > 0).then_some(c.max_len))
                })
                .unwrap_or(if self.composite { 2 } else { 1 })
                .min(rest.len());
            let code = rest[..len].iter().fold(0u32, |v, &b| v << 8 | u32::from(b));
            codes.push((code, len));
            i += len;
        }
        codes
    }

    fn text_of(&self, code: u32, len: usize) -> Option<String> {
        if let Some(s) = self.to_unicode.as_ref().and_then(|c| c.lookup(len, code)) {
            return Some(s);
        }
        if len == 1 {
            return self
                .simple
                .as_ref()
                .and_then(|t| t[(code & 0xFF) as usize])
                .map(String::from);
        }
        None
    }
}

fn cid_widths(doc: &Pdf, descendant: Option<&Dict>) -> Widths {
    let Some(d) = descendant else {
        return Widths::Cid {
            default: 1000.0,
            ranges: Vec::new(),
        };
    };
    let default = doc.int(d.get(&b"DW"[..])).map_or(1000.0, |w| w as f64);
    let items = doc.array_of(d.get(&b"W"[..]));
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < items.len() && ranges.len() < 65_536 {
        let num = |k: usize| items.get(k).and_then(|o| doc.resolve(o).as_f64());
        let Some(first) = num(i) else { break };
        let first = first.max(0.0) as u32;
        match items.get(i + 1).map(|o| doc.resolve(o)) {
            Some(Obj::Array(ws)) => {
                let ws: Vec<f64> = ws
                    .iter()
                    .take(65_536)
                    .map(|w| doc.resolve(w).as_f64().unwrap_or(default))
                    .collect();
                let last = first.saturating_add(ws.len().saturating_sub(1) as u32);
                ranges.push((first, last, CidWidth::Each(ws)));
                i += 2;
            }
            Some(_) => {
                let (Some(last), Some(w)) = (num(i + 1), num(i + 2)) else {
                    break;
                };
                ranges.push((first, (last.max(0.0) as u32).max(first), CidWidth::Same(w)));
                i += 3;
            }
            None => break,
        }
    }
    ranges.sort_by_key(|(lo, _, _)| *lo);
    Widths::Cid { default, ranges }
}

/// The code → character table of a simple font: base encoding, then `/Differences`.
fn simple_encoding(doc: &Pdf, font: &Dict) -> [Option<char>; 256] {
    let encoding = font.get(&b"Encoding"[..]).map(|e| doc.resolve(e));
    let (base, differences) = match encoding {
        Some(Obj::Name(n)) => (n.as_slice(), &[][..]),
        Some(Obj::Dict(d)) => (
            d.get(&b"BaseEncoding"[..])
                .and_then(Obj::as_name)
                .unwrap_or(b"StandardEncoding"),
            doc.array_of(d.get(&b"Differences"[..])),
        ),
        _ => (&b"StandardEncoding"[..], &[][..]),
    };
    let mut table = [None; 256];
    for (code, slot) in table.iter_mut().enumerate() {
        *slot = base_char(base, code as u8);
    }
    let mut code = 0usize;
    for item in differences {
        match doc.resolve(item) {
            Obj::Int(i) => code = (*i).clamp(0, 256) as usize,
            Obj::Name(name) => {
                if let Some(slot) = table.get_mut(code) {
                    *slot = glyph_char(name);
                }
                code += 1;
            }
            _ => {}
        }
    }
    table
}

/// A byte in one of the standard simple-font encodings.
fn base_char(encoding: &[u8], b: u8) -> Option<char> {
    match encoding {
        b"WinAnsiEncoding" => Some(cp1252(b)),
        b"MacRomanEncoding" => {
            if b < 0x80 {
                Some(char::from(b))
            } else {
                let bytes = [b];
                let (text, _, _) = encoding_rs::MACINTOSH.decode(&bytes);
                text.chars().next()
            }
        }
        // StandardEncoding (the default) and PDFDocEncoding agree with ASCII for letters,
        // digits and most punctuation; their upper halves are rare in practice.
        _ => match b {
            b'\'' if encoding == b"StandardEncoding" => Some('\u{2019}'),
            b'`' if encoding == b"StandardEncoding" => Some('\u{2018}'),
            0x20..=0x7E => Some(char::from(b)),
            0xA0..=0xFF => Some(char::from(b)),
            _ => None,
        },
    }
}

/// The character of a glyph name (Adobe Glyph List names for ASCII and common punctuation,
/// `uniXXXX`, `uXXXX`). Unknown names (`g12`, `cid34`) have none.
fn glyph_char(name: &[u8]) -> Option<char> {
    let name = std::str::from_utf8(name).ok()?;
    let name = name.split('.').next().unwrap_or(name);
    if name.len() == 1 && name.as_bytes()[0].is_ascii_alphabetic() {
        return name.chars().next();
    }
    if let Some(hex) = name.strip_prefix("uni").filter(|h| h.len() >= 4)
        && let Ok(v) = u32::from_str_radix(&hex[..4], 16)
    {
        return char::from_u32(v);
    }
    if let Some(hex) = name
        .strip_prefix('u')
        .filter(|h| (4..=6).contains(&h.len()))
        && let Ok(v) = u32::from_str_radix(hex, 16)
    {
        return char::from_u32(v);
    }
    const DIGITS: [&str; 10] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    if let Some(d) = DIGITS.iter().position(|d| *d == name) {
        return char::from_digit(d as u32, 10);
    }
    let c = match name {
        "space" | "nbspace" | "nonbreakingspace" => ' ',
        "exclam" => '!',
        "quotedbl" => '"',
        "numbersign" => '#',
        "dollar" => '$',
        "percent" => '%',
        "ampersand" => '&',
        "quotesingle" => '\'',
        "parenleft" => '(',
        "parenright" => ')',
        "asterisk" => '*',
        "plus" => '+',
        "comma" => ',',
        "hyphen" | "minus" | "sfthyphen" => '-',
        "period" => '.',
        "slash" => '/',
        "colon" => ':',
        "semicolon" => ';',
        "less" => '<',
        "equal" => '=',
        "greater" => '>',
        "question" => '?',
        "at" => '@',
        "bracketleft" => '[',
        "backslash" => '\\',
        "bracketright" => ']',
        "asciicircum" => '^',
        "underscore" => '_',
        "grave" => '`',
        "braceleft" => '{',
        "bar" => '|',
        "braceright" => '}',
        "asciitilde" => '~',
        "quoteleft" => '\u{2018}',
        "quoteright" => '\u{2019}',
        "quotedblleft" => '\u{201C}',
        "quotedblright" => '\u{201D}',
        "endash" => '\u{2013}',
        "emdash" => '\u{2014}',
        "bullet" => '\u{2022}',
        "ellipsis" => '\u{2026}',
        "section" => '\u{A7}',
        "copyright" => '\u{A9}',
        "registered" => '\u{AE}',
        "degree" => '\u{B0}',
        "Euro" => '\u{20AC}',
        "sterling" => '\u{A3}',
        _ => return None,
    };
    Some(c)
}

// ---------------------------------------------------------------------------------------------
// Content streams
// ---------------------------------------------------------------------------------------------

type Matrix = [f64; 6];
const IDENTITY: Matrix = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];

fn mul(m1: &Matrix, m2: &Matrix) -> Matrix {
    [
        m1[0] * m2[0] + m1[1] * m2[2],
        m1[0] * m2[1] + m1[1] * m2[3],
        m1[2] * m2[0] + m1[3] * m2[2],
        m1[2] * m2[1] + m1[3] * m2[3],
        m1[4] * m2[0] + m1[5] * m2[2] + m2[4],
        m1[4] * m2[1] + m1[5] * m2[3] + m2[5],
    ]
}

fn translate(tx: f64, ty: f64) -> Matrix {
    [1.0, 0.0, 0.0, 1.0, tx, ty]
}

#[derive(Clone)]
struct GState {
    ctm: Matrix,
    font: Option<Rc<Font>>,
    size: f64,
    char_spacing: f64,
    word_spacing: f64,
    h_scale: f64,
    leading: f64,
}

struct Extractor<'d, 'b> {
    doc: &'d Pdf,
    budget: &'b mut Budget,
    /// Fonts by object number, loaded once per document.
    fonts: HashMap<u32, Rc<Font>>,
    notes: Vec<String>,
    /// An object or content operand was nested too deeply / was too large, and was dropped.
    too_deep: bool,
    too_many: bool,
    /// Decoded form XObjects by object number: a form drawn on every page is decoded once.
    forms: HashMap<u32, Rc<Vec<u8>>>,
    /// Codes shown that no mapping could turn into text, and all codes shown.
    unmapped: usize,
    shown: usize,
}

/// The text of the page being read, and what is needed to lay it out.
#[derive(Default)]
struct PageText {
    out: String,
    /// Where the last shown text ended.
    pen: Option<Pen>,
    /// Form XObjects already drawn on this page (a cycle guard).
    forms_seen: HashSet<u32>,
}

/// Where the last shown text ended, to decide between nothing, a space and a new line.
struct Pen {
    x: f64,
    y: f64,
    size: f64,
}

impl Extractor<'_, '_> {
    fn all_text(&mut self) -> String {
        let doc = self.doc;
        let mut out = String::new();
        for (page, resources) in &doc.pages {
            if self.budget.out_of_time() {
                self.note(super::Stop::Time.reason());
                break;
            }
            let mut content = Vec::new();
            let streams: Vec<&Obj> = match page.get(&b"Contents"[..]).map(|c| doc.resolve(c)) {
                Some(Obj::Array(items)) => items.iter().collect(),
                Some(other) => vec![other],
                None => Vec::new(),
            };
            let mut stopped = false;
            for stream in streams {
                if let Obj::Stream(dict, raw) = doc.resolve(stream) {
                    match decode_stream(doc, dict, raw, self.budget) {
                        Ok(bytes) => {
                            content.extend_from_slice(&bytes);
                            content.push(b'\n');
                        }
                        Err(DecodeError::Unsupported) => {}
                        Err(DecodeError::Limit(reason)) => {
                            self.note(reason);
                            stopped = true;
                            break;
                        }
                    }
                }
            }
            let mut page_text = PageText::default();
            let mut state = GState {
                ctm: IDENTITY,
                font: None,
                size: 12.0,
                char_spacing: 0.0,
                word_spacing: 0.0,
                h_scale: 1.0,
                leading: 0.0,
            };
            self.run(&content, resources.as_ref(), &mut state, &mut page_text, 0);
            let mut page_text = page_text.out;
            self.annotations(page, &mut page_text);
            if !page_text.trim().is_empty() {
                out.push_str(page_text.trim_end());
                out.push_str("\n\n");
            }
            if stopped {
                break;
            }
        }
        self.form_fields(&mut out);
        out
    }

    /// Interpret one content stream (a page's or a form's).
    fn run(
        &mut self,
        content: &[u8],
        resources: Option<&Obj>,
        state: &mut GState,
        page: &mut PageText,
        depth: usize,
    ) {
        let doc = self.doc;
        let resources = resources.and_then(|r| doc.dict_of(Some(r)));
        let mut lex = Lexer::new(content, 0);
        let mut operands: Vec<Obj> = Vec::new();
        let mut saved: Vec<GState> = Vec::new();
        let mut tm = IDENTITY;
        let mut tlm = IDENTITY;
        let mut operators = 0usize;
        while let Some(tok) = lex.next() {
            let op = match tok {
                Tok::Word(op) => op,
                Tok::ArrClose | Tok::DictClose => continue,
                other => {
                    lex.items = MAX_OBJECT_ITEMS;
                    match parse_from(&mut lex, other, 0) {
                        Ok(obj) if operands.len() < MAX_OPERANDS => operands.push(obj),
                        Ok(_) => {}
                        Err(e) => {
                            self.too_deep |= e == ParseError::Depth;
                            self.too_many |= e == ParseError::TooMany;
                            operands.clear();
                        }
                    }
                    continue;
                }
            };
            operators += 1;
            if operators.is_multiple_of(TIME_CHECK_EVERY) && self.budget.out_of_time() {
                self.note(super::Stop::Time.reason());
                return;
            }
            let num = |k: usize| operands.get(k).and_then(Obj::as_f64).unwrap_or(0.0);
            match op {
                b"q" if saved.len() < MAX_GSTATE_STACK => saved.push(state.clone()),
                b"Q" => {
                    if let Some(s) = saved.pop() {
                        *state = s;
                    }
                }
                b"cm" if operands.len() >= 6 => {
                    let m = [num(0), num(1), num(2), num(3), num(4), num(5)];
                    state.ctm = mul(&m, &state.ctm);
                }
                b"BT" => {
                    tm = IDENTITY;
                    tlm = IDENTITY;
                }
                b"Tf" => {
                    state.font = operands
                        .first()
                        .and_then(Obj::as_name)
                        .and_then(|name| self.font(resources, name));
                    state.size = num(1);
                }
                b"Tc" => state.char_spacing = num(0),
                b"Tw" => state.word_spacing = num(0),
                b"Tz" => state.h_scale = num(0) / 100.0,
                b"TL" => state.leading = num(0),
                b"Td" => {
                    tlm = mul(&translate(num(0), num(1)), &tlm);
                    tm = tlm;
                }
                b"TD" => {
                    state.leading = -num(1);
                    tlm = mul(&translate(num(0), num(1)), &tlm);
                    tm = tlm;
                }
                b"Tm" if operands.len() >= 6 => {
                    tlm = [num(0), num(1), num(2), num(3), num(4), num(5)];
                    tm = tlm;
                }
                b"T*" => {
                    tlm = mul(&translate(0.0, -state.leading), &tlm);
                    tm = tlm;
                }
                b"Tj" | b"'" | b"\"" => {
                    if op != b"Tj" {
                        if op == b"\"" {
                            state.word_spacing = num(0);
                            state.char_spacing = num(1);
                        }
                        tlm = mul(&translate(0.0, -state.leading), &tlm);
                        tm = tlm;
                    }
                    if let Some(Obj::Str(s)) = operands.last() {
                        self.show(s, state, &mut tm, page);
                    }
                }
                b"TJ" => {
                    if let Some(Obj::Array(items)) = operands.first() {
                        for item in items {
                            match item {
                                Obj::Str(s) => self.show(s, state, &mut tm, page),
                                other => {
                                    let n = other.as_f64().unwrap_or(0.0);
                                    let tx = -n / 1000.0 * state.size * state.h_scale;
                                    tm = mul(&translate(tx, 0.0), &tm);
                                }
                            }
                        }
                    }
                }
                b"Do" => {
                    if let Some(name) = operands.first().and_then(Obj::as_name) {
                        self.form(name, resources, state, page, depth);
                    }
                }
                b"ID" => skip_inline_image(&mut lex),
                _ => {}
            }
            operands.clear();
        }
    }

    /// Draw a form XObject (text in forms: stamps, headers some writers factor out).
    fn form(
        &mut self,
        name: &[u8],
        resources: Option<&Dict>,
        state: &mut GState,
        page: &mut PageText,
        depth: usize,
    ) {
        let doc = self.doc;
        if depth >= MAX_FORM_DEPTH || self.budget.out_of_time() {
            return;
        }
        let Some(reference) = resources
            .and_then(|r| doc.dict_of(r.get(&b"XObject"[..])))
            .and_then(|x| x.get(name))
        else {
            return;
        };
        if let Obj::Ref(num, _) = reference
            && !page.forms_seen.insert(*num)
        {
            return;
        }
        let Obj::Stream(dict, raw) = doc.resolve(reference) else {
            return;
        };
        if dict.get(&b"Subtype"[..]).and_then(Obj::as_name) != Some(b"Form") {
            return;
        }
        let cached = match reference {
            Obj::Ref(num, _) => self.forms.get(num).cloned(),
            _ => None,
        };
        let content = match cached {
            Some(content) => content,
            None => match decode_stream(doc, dict, raw, self.budget) {
                Ok(content) => {
                    let content = Rc::new(content);
                    if let Obj::Ref(num, _) = reference {
                        self.forms.insert(*num, content.clone());
                    }
                    content
                }
                Err(DecodeError::Unsupported) => return,
                Err(DecodeError::Limit(reason)) => {
                    self.note(reason);
                    return;
                }
            },
        };
        let mut inner = state.clone();
        let matrix: Vec<f64> = doc
            .array_of(dict.get(&b"Matrix"[..]))
            .iter()
            .filter_map(|v| doc.resolve(v).as_f64())
            .collect();
        if let [a, b, c, d, e, f] = matrix[..] {
            inner.ctm = mul(&[a, b, c, d, e, f], &inner.ctm);
        }
        let form_resources = dict
            .get(&b"Resources"[..])
            .cloned()
            .or_else(|| resources.map(|r| Obj::Dict(Box::new(r.clone()))));
        self.run(
            &content,
            form_resources.as_ref(),
            &mut inner,
            page,
            depth + 1,
        );
    }

    /// Record why some text may be missing (once per reason).
    fn note(&mut self, reason: &str) {
        if !self.notes.iter().any(|n| n == reason) {
            self.notes.push(reason.to_string());
        }
    }

    fn font(&mut self, resources: Option<&Dict>, name: &[u8]) -> Option<Rc<Font>> {
        let doc = self.doc;
        let reference = resources
            .and_then(|r| doc.dict_of(r.get(&b"Font"[..])))
            .and_then(|f| f.get(name))?;
        if let Obj::Ref(num, _) = reference
            && let Some(font) = self.fonts.get(num)
        {
            return Some(font.clone());
        }
        let dict = doc.dict_of(Some(reference))?;
        let font = Rc::new(Font::load(doc, dict, self.budget));
        if let Obj::Ref(num, _) = reference {
            self.fonts.insert(*num, font.clone());
        }
        Some(font)
    }

    /// Show a string: append its text, preceded by a space or new line when the text position
    /// moved since the last text, and advance the text matrix by the glyph widths.
    fn show(&mut self, bytes: &[u8], state: &GState, tm: &mut Matrix, page: &mut PageText) {
        let out = &mut page.out;
        let fallback;
        let font: &Font = match &state.font {
            Some(f) => f,
            None => {
                fallback = Font::fallback();
                &fallback
            }
        };
        let m = mul(tm, &state.ctm);
        let scale = (m[0] * m[3] - m[1] * m[2]).abs().sqrt();
        let size = (state.size.abs() * scale).max(0.1);
        if let Some(last) = page.pen.as_ref() {
            let (dx, dy) = (m[4] - last.x, m[5] - last.y);
            let norm = (m[0] * m[0] + m[1] * m[1]).sqrt().max(1e-9);
            let (ux, uy) = (m[0] / norm, m[1] / norm);
            let along = dx * ux + dy * uy;
            let across = -dx * uy + dy * ux;
            let reference = size.max(last.size);
            let gap = if font.widths_known { 0.15 } else { 0.3 };
            if across.abs() > 0.5 * reference {
                if !out.ends_with('\n') {
                    out.push('\n');
                }
            } else if (along > gap * reference || along < -0.5 * reference)
                && !out.ends_with([' ', '\n', '\t'])
            {
                out.push(' ');
            }
        }
        for (code, len) in font.codes(bytes) {
            self.shown += 1;
            match font.text_of(code, len) {
                Some(text) => out.push_str(&text),
                None => self.unmapped += 1,
            }
            let mut advance = font.widths.of(code) / 1000.0 * state.size + state.char_spacing;
            if len == 1 && code == 32 {
                advance += state.word_spacing;
            }
            *tm = mul(&translate(advance * state.h_scale, 0.0), tm);
        }
        let end = mul(tm, &state.ctm);
        page.pen = Some(Pen {
            x: end[4],
            y: end[5],
            size,
        });
    }

    /// Comments and other annotation contents of a page.
    fn annotations(&mut self, page: &Dict, out: &mut String) {
        let doc = self.doc;
        for annot in doc
            .array_of(page.get(&b"Annots"[..]))
            .iter()
            .take(MAX_FIELDS)
        {
            let Some(dict) = doc.dict_of(Some(annot)) else {
                continue;
            };
            if let Some(Obj::Str(s)) = dict.get(&b"Contents"[..]).map(|c| doc.resolve(c)) {
                let text = text_string(s);
                if !text.trim().is_empty() {
                    out.push('\n');
                    out.push_str(&text);
                }
            }
        }
    }

    /// Interactive form fields: `name: value` per filled field.
    /// The document information dictionary and XMP metadata (appended to `out`), and the
    /// embedded files.
    fn metadata_and_files(&mut self, out: &mut String) -> Vec<(String, Vec<u8>)> {
        let doc = self.doc;
        // Info: every text entry but the dates (custom entries may be anything).
        if let Some(info) = doc
            .trailers
            .iter()
            .rev()
            .find_map(|t| doc.dict_of(t.get(&b"Info"[..])))
        {
            let mut keys: Vec<&Vec<u8>> = info.keys().collect();
            keys.sort();
            for key in keys.into_iter().take(MAX_FIELDS) {
                if matches!(key.as_slice(), b"CreationDate" | b"ModDate" | b"Trapped") {
                    continue;
                }
                if let Obj::Str(s) = doc.resolve(&info[key]) {
                    let value = text_string(s);
                    if !value.trim().is_empty() {
                        out.push_str(&String::from_utf8_lossy(key));
                        out.push_str(": ");
                        out.push_str(&value);
                        out.push('\n');
                    }
                }
            }
        }
        // Bookmarks (the outline a reader shows beside the pages), depth first.
        if let Some(outlines) = doc
            .catalog()
            .and_then(|c| doc.dict_of(c.get(&b"Outlines"[..])))
        {
            let mut stack: Vec<&Obj> = outlines.get(&b"First"[..]).into_iter().collect();
            let mut seen = HashSet::new();
            let mut count = 0;
            while let Some(node) = stack.pop() {
                count += 1;
                if count > MAX_FIELDS {
                    break;
                }
                if let Obj::Ref(num, _) = node
                    && !seen.insert(*num)
                {
                    continue;
                }
                let Some(item) = doc.dict_of(Some(node)) else {
                    continue;
                };
                if let Some(Obj::Str(title)) = item.get(&b"Title"[..]).map(|t| doc.resolve(t)) {
                    out.push_str(&text_string(title));
                    out.push('\n');
                }
                stack.extend(item.get(&b"Next"[..]));
                stack.extend(item.get(&b"First"[..]));
            }
        }
        let mut numbers: Vec<u32> = doc.objects.keys().copied().collect();
        numbers.sort_unstable();
        // Link addresses (URI actions, in an object of their own or in an annotation).
        let mut uris = 0;
        for num in &numbers {
            let Some(dict) = doc.get(*num).dict() else {
                continue;
            };
            let action = match dict.get(&b"A"[..]) {
                Some(Obj::Dict(a)) => Some(&**a),
                _ => None,
            };
            for d in std::iter::once(dict).chain(action) {
                if let Some(Obj::Str(uri)) = d.get(&b"URI"[..]).map(|u| doc.resolve(u)) {
                    uris += 1;
                    if uris <= MAX_FIELDS {
                        out.push_str(&String::from_utf8_lossy(uri));
                        out.push('\n');
                    }
                }
            }
        }
        // XMP metadata streams.
        let mut metadata = 0;
        for num in &numbers {
            let Obj::Stream(dict, raw) = doc.get(*num) else {
                continue;
            };
            if dict.get(&b"Type"[..]).and_then(Obj::as_name) != Some(b"Metadata") {
                continue;
            }
            metadata += 1;
            if metadata > MAX_METADATA_STREAMS || self.budget.out_of_time() {
                break;
            }
            match decode_stream(doc, dict, raw, self.budget) {
                Ok(bytes) => xmp_text(&bytes, out),
                Err(DecodeError::Limit(reason)) => {
                    self.note(reason);
                    break;
                }
                Err(DecodeError::Unsupported) => {
                    self.note("PDF metadata stream with an unsupported filter is not scanned")
                }
            }
        }
        // Embedded files: through file specifications (named), then any stream typed as one.
        let mut specs: Vec<(String, u32)> = Vec::new();
        let add_spec = |spec: &Dict, specs: &mut Vec<(String, u32)>| {
            let Some(ef) = doc.dict_of(spec.get(&b"EF"[..])) else {
                return;
            };
            let stream = [&b"UF"[..], b"F", b"DOS", b"Mac", b"Unix"]
                .iter()
                .find_map(|k| match ef.get(*k) {
                    Some(Obj::Ref(n, _)) => Some(*n),
                    _ => None,
                });
            let Some(stream) = stream else {
                return;
            };
            let name = [&b"UF"[..], b"F"]
                .iter()
                .find_map(|k| match spec.get(*k).map(|v| doc.resolve(v)) {
                    Some(Obj::Str(s)) => Some(text_string(s)),
                    _ => None,
                })
                .unwrap_or_default();
            if !specs.iter().any(|(_, n)| *n == stream) {
                specs.push((name, stream));
            }
        };
        for num in &numbers {
            let Some(dict) = doc.get(*num).dict() else {
                continue;
            };
            add_spec(dict, &mut specs);
            // A file specification written directly in an annotation (`/FS << ... >>`).
            if let Some(Obj::Dict(fs)) = dict.get(&b"FS"[..]) {
                add_spec(fs, &mut specs);
            }
        }
        for num in &numbers {
            if let Obj::Stream(dict, _) = doc.get(*num)
                && dict.get(&b"Type"[..]).and_then(Obj::as_name) == Some(b"EmbeddedFile")
                && !specs.iter().any(|(_, n)| n == num)
            {
                specs.push((String::new(), *num));
            }
        }
        let mut files = Vec::new();
        for (i, (name, num)) in specs.into_iter().enumerate() {
            if i >= MAX_EMBEDDED_FILES {
                self.note("PDF embedded file count limit reached (the rest were not read)");
                break;
            }
            if self.budget.out_of_time() {
                self.note(super::Stop::Time.reason());
                break;
            }
            let Obj::Stream(dict, raw) = doc.get(num) else {
                continue;
            };
            let leaf = name
                .rsplit(['/', '\\'])
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            let leaf = if leaf.is_empty() {
                format!("embedded-{}", i + 1)
            } else {
                leaf
            };
            match decode_stream(doc, dict, raw, self.budget) {
                Ok(bytes) => files.push((leaf, bytes)),
                Err(DecodeError::Limit(reason)) => {
                    self.note(reason);
                    break;
                }
                Err(DecodeError::Unsupported) => {
                    self.note("PDF embedded file with an unsupported filter is not scanned")
                }
            }
        }
        files
    }

    fn form_fields(&mut self, out: &mut String) {
        let doc = self.doc;
        let Some(form) = doc
            .catalog()
            .and_then(|c| doc.dict_of(c.get(&b"AcroForm"[..])))
        else {
            return;
        };
        let mut stack: Vec<(&Obj, usize)> = doc
            .array_of(form.get(&b"Fields"[..]))
            .iter()
            .rev()
            .map(|f| (f, 0))
            .collect();
        let mut seen = HashSet::new();
        let mut count = 0;
        let mut lines = String::new();
        while let Some((field, depth)) = stack.pop() {
            count += 1;
            if count > MAX_FIELDS || depth > 32 {
                break;
            }
            if let Obj::Ref(num, _) = field
                && !seen.insert(*num)
            {
                continue;
            }
            let Some(dict) = doc.dict_of(Some(field)) else {
                continue;
            };
            let value = match dict.get(&b"V"[..]).map(|v| doc.resolve(v)) {
                Some(Obj::Str(s)) => text_string(s),
                Some(Obj::Name(n)) if n != b"Off" => String::from_utf8_lossy(n).into_owned(),
                Some(Obj::Array(items)) => items
                    .iter()
                    .filter_map(|i| match doc.resolve(i) {
                        Obj::Str(s) => Some(text_string(s)),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => String::new(),
            };
            if !value.trim().is_empty() {
                let name = match dict.get(&b"T"[..]).map(|t| doc.resolve(t)) {
                    Some(Obj::Str(s)) => text_string(s),
                    _ => String::new(),
                };
                lines.push_str(&name);
                lines.push_str(": ");
                lines.push_str(&value);
                lines.push('\n');
            }
            for kid in doc.array_of(dict.get(&b"Kids"[..])).iter().rev() {
                stack.push((kid, depth + 1));
            }
        }
        if !lines.is_empty() {
            out.push_str(&lines);
        }
    }
}

/// Skip inline image data after `ID`: binary up to `EI` between white space.
fn skip_inline_image(lex: &mut Lexer<'_>) {
    let data = lex.data;
    let start = (lex.pos + 1).min(data.len());
    let mut from = start;
    while let Some(off) = memchr::memmem::find(&data[from..], b"EI") {
        let at = from + off;
        let before_ok = at > 0 && is_ws(data[at - 1]);
        let after_ok = data.get(at + 2).is_none_or(|&b| is_ws(b));
        if before_ok && after_ok {
            lex.pos = at + 2;
            return;
        }
        from = at + 2;
    }
    lex.pos = data.len();
}

/// The text of an XMP packet: element text and attribute values (XMP writes simple
/// properties either way), without namespace declarations and identifiers; entities resolved.
/// A small scanner rather than an XML parser: XMP is often not well-formed after editing.
fn xmp_text(xml: &[u8], out: &mut String) {
    let text = String::from_utf8_lossy(xml);
    let mut rest: &str = &text;
    while let Some(open) = rest.find('<') {
        push_xml_text(&rest[..open], out);
        let Some(close) = rest[open..].find('>') else {
            rest = "";
            break;
        };
        let tag = &rest[open + 1..open + close];
        rest = &rest[open + close + 1..];
        if tag.starts_with('?') || tag.starts_with('!') || tag.starts_with('/') {
            out.push('\n');
            continue;
        }
        // Attributes: name="value" or name='value'.
        let mut attrs = tag.split_once(char::is_whitespace).map_or("", |(_, a)| a);
        while let Some(eq) = attrs.find('=') {
            let name = attrs[..eq].trim();
            let after = attrs[eq + 1..].trim_start();
            let Some(quote) = after.chars().next().filter(|q| *q == '"' || *q == '\'') else {
                break;
            };
            let Some(end) = after[1..].find(quote) else {
                break;
            };
            let value = &after[1..1 + end];
            let skip = name.starts_with("xmlns")
                || name.ends_with("about")
                || name.ends_with("ID")
                || name.ends_with(":parseType");
            if !skip && !value.trim().is_empty() {
                push_xml_text(value, out);
                out.push('\n');
            }
            attrs = &after[1 + end + 1..];
        }
        out.push('\n');
    }
    push_xml_text(rest, out);
}

/// XML character data with the predefined and numeric entities resolved.
fn push_xml_text(s: &str, out: &mut String) {
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let entity = after.find(';').filter(|&e| e <= 10).map(|e| &after[..e]);
        let c = entity.and_then(|e| match e {
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
        });
        match (c, entity) {
            (Some(c), Some(e)) => {
                out.push(c);
                rest = &after[e.len() + 1..];
            }
            _ => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

/// A PDF text string (annotations, fields): UTF-16BE or UTF-8 with a BOM, else PDFDocEncoding
/// (Latin-1 for the printable characters).
fn text_string(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16be(rest);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8_lossy(rest).into_owned();
    }
    bytes.iter().map(|&b| char::from(b)).collect()
}

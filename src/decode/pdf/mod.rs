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
//!
//! Files: `mod.rs` (entry points, limits, the budget), `lexer.rs` (tokens and objects),
//! `document.rs` (finding objects, object streams, trailers, pages), `filters.rs` (stream
//! decoding), `fonts.rs` (CMaps, encodings, widths), `content.rs` (page text from content
//! streams), `extras.rs` (annotations, form fields, metadata, embedded files).

use super::Ctx;
use super::rtf::cp1252;
use crate::decode::bounded::{Counted, ReadStop, read_bounded};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Instant;

mod content;
mod document;
mod extras;
mod filters;
mod fonts;
mod lexer;

use content::*;
use document::*;
use filters::*;
use fonts::*;
use lexer::*;

/// Deepest nesting of arrays and dictionaries parsed in one object.
pub(super) const MAX_OBJECT_DEPTH: usize = 64;
/// Most objects read from one file (each is small, but a file of millions would be slow).
pub(super) const MAX_OBJECTS: usize = 200_000;
/// Most values (numbers, names, strings, arrays...) parsed from one file's objects: bounds the
/// memory of the object tree (a 32 MiB array of `0 0 0 ...` would otherwise become gigabytes).
pub(super) const MAX_DOCUMENT_ITEMS: usize = 1_000_000;
/// Most values in one object, or in one operand of a content stream.
pub(super) const MAX_OBJECT_ITEMS: usize = 200_000;
/// Operators interpreted between two checks of the time limit.
pub(super) const TIME_CHECK_EVERY: usize = 4096;
/// Most pages read.
pub(super) const MAX_PAGES: usize = 10_000;
/// How deep form XObjects drawing other forms are followed.
pub(super) const MAX_FORM_DEPTH: usize = 4;
/// Most saved graphics states (`q`) kept.
pub(super) const MAX_GSTATE_STACK: usize = 64;
/// Most operands kept for one operator, and items in one array operand.
pub(super) const MAX_OPERANDS: usize = 64;
/// Most mappings read from one ToUnicode CMap.
pub(super) const MAX_CMAP_ENTRIES: usize = 100_000;
/// Most form fields and annotations read.
pub(super) const MAX_FIELDS: usize = 10_000;
/// Most XMP metadata streams read.
pub(super) const MAX_METADATA_STREAMS: usize = 64;
/// Most embedded files read.
pub(super) const MAX_EMBEDDED_FILES: usize = 64;

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
pub(super) struct Budget {
    pub(super) cap: usize,
    /// The cap is what is left of the message budget (so hitting it is a budget stop).
    pub(super) cap_is_budget: bool,
    pub(super) ratio: u64,
    pub(super) used: usize,
    pub(super) deadline: Instant,
}

impl Budget {
    pub(super) fn size_reason(&self) -> &'static str {
        if self.cap_is_budget {
            crate::decode::Stop::Budget.reason()
        } else {
            "part size limit reached"
        }
    }

    pub(super) fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

pub(super) enum PdfError {
    Corrupt(String),
    Limit(&'static str),
}

pub(super) enum PdfText {
    Encrypted,
    /// The text, and reasons why some of it may be missing (reported unscannable).
    Text {
        text: String,
        notes: Vec<String>,
        /// Embedded files: name and decoded content.
        files: Vec<(String, Vec<u8>)>,
    },
}

pub(super) fn read_pdf(data: &[u8], budget: &mut Budget) -> Result<PdfText, PdfError> {
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

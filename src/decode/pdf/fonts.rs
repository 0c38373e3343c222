//! Fonts: ToUnicode CMaps, simple encodings, glyph names and widths.

use super::*;

/// What is needed to turn a font's character codes into text and advances.
pub(super) struct Font {
    pub(super) to_unicode: Option<CMap>,
    /// Simple fonts: code → character from the encoding and `/Differences`.
    pub(super) simple: Option<Box<[Option<char>; 256]>>,
    /// Composite (Type0) fonts use multi-byte codes.
    pub(super) composite: bool,
    pub(super) widths: Widths,
    /// Whether the font gave glyph widths (else advances are estimates, and word gaps are
    /// only assumed for larger jumps).
    pub(super) widths_known: bool,
}

pub(super) enum Widths {
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

pub(super) enum CidWidth {
    Same(f64),
    Each(Vec<f64>),
}

impl Widths {
    /// Advance of `code` in thousandths of the font size.
    pub(super) fn of(&self, code: u32) -> f64 {
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
pub(super) struct CMap {
    /// Code space ranges: byte length, low and high bytes.
    pub(super) codespace: Vec<(usize, Vec<u8>, Vec<u8>)>,
    pub(super) chars: HashMap<(usize, u32), String>,
    pub(super) ranges: Vec<(usize, u32, u32, RangeTarget)>,
    /// Longest source code seen in mappings (when there is no code space).
    pub(super) max_len: usize,
}

pub(super) enum RangeTarget {
    /// UTF-16 units of the first code; the last unit is incremented along the range.
    Start(Vec<u16>),
    Each(Vec<String>),
}

impl CMap {
    pub(super) fn parse(data: &[u8]) -> CMap {
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

    pub(super) fn lookup(&self, len: usize, code: u32) -> Option<String> {
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
    pub(super) fn code_len(&self, bytes: &[u8]) -> Option<usize> {
        (1..=4).find(|&len| {
            self.codespace.iter().any(|(l, lo, hi)| {
                *l == len
                    && bytes.len() >= len
                    && (0..len).all(|k| (lo[k]..=hi[k]).contains(&bytes[k]))
            })
        })
    }
}

pub(super) fn utf16be(bytes: &[u8]) -> String {
    let units = bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    char::decode_utf16(units)
        .map(|r| r.unwrap_or('\u{FFFD}'))
        .collect()
}

impl Font {
    pub(super) fn load(doc: &Pdf, dict: &Dict, budget: &mut Budget) -> Font {
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
    pub(super) fn fallback() -> Font {
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
    pub(super) fn codes(&self, bytes: &[u8]) -> Vec<(u32, usize)> {
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

    pub(super) fn text_of(&self, code: u32, len: usize) -> Option<String> {
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

pub(super) fn cid_widths(doc: &Pdf, descendant: Option<&Dict>) -> Widths {
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
pub(super) fn simple_encoding(doc: &Pdf, font: &Dict) -> [Option<char>; 256] {
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
pub(super) fn base_char(encoding: &[u8], b: u8) -> Option<char> {
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
pub(super) fn glyph_char(name: &[u8]) -> Option<char> {
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

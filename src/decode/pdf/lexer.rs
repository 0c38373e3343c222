//! PDF syntax: the lexer and the object parser (depth- and size-limited).

use super::*;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Obj {
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

pub(super) type Dict = HashMap<Vec<u8>, Obj>;

impl Obj {
    pub(super) fn as_f64(&self) -> Option<f64> {
        match self {
            Obj::Int(i) => Some(*i as f64),
            Obj::Real(r) => Some(*r),
            _ => None,
        }
    }

    pub(super) fn as_name(&self) -> Option<&[u8]> {
        match self {
            Obj::Name(n) => Some(n),
            _ => None,
        }
    }

    pub(super) fn dict(&self) -> Option<&Dict> {
        match self {
            Obj::Dict(d) | Obj::Stream(d, _) => Some(d),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok<'a> {
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

pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, 0 | 9 | 10 | 12 | 13 | 32)
}

pub(super) fn is_delim(b: u8) -> bool {
    b"()<>[]{}/%".contains(&b)
}

/// A PDF tokenizer over a byte slice: no recursion, no allocation beyond the token.
pub(super) struct Lexer<'a> {
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
    /// Values the object parser may still create from this lexer.
    pub(super) items: usize,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(data: &'a [u8], pos: usize) -> Self {
        Lexer {
            data,
            pos,
            items: MAX_OBJECT_ITEMS,
        }
    }

    pub(super) fn skip_ws(&mut self) {
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

    pub(super) fn next(&mut self) -> Option<Tok<'a>> {
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

    pub(super) fn literal_string(&mut self) -> Vec<u8> {
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

    pub(super) fn hex_string(&mut self) -> Vec<u8> {
        let rest = self.data.get(self.pos + 1..).unwrap_or(&[]);
        let end = memchr::memchr(b'>', rest).map_or(rest.len(), |e| e + 1);
        self.pos += 1 + end;
        ascii_hex(&rest[..end])
    }
}

pub(super) fn parse_number(word: &[u8]) -> Option<(f64, bool)> {
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
pub(super) fn decode_name(raw: &[u8]) -> Vec<u8> {
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
pub(super) enum ParseError {
    /// Nested deeper than [`MAX_OBJECT_DEPTH`].
    Depth,
    /// More values than the lexer's item budget.
    TooMany,
    /// The data ended.
    End,
}

/// Parse one object at the lexer's position. Nesting deeper than [`MAX_OBJECT_DEPTH`] is an
/// error (the object is dropped), so hostile nesting costs neither stack nor much time.
pub(super) fn parse_obj(lex: &mut Lexer<'_>, depth: usize) -> Result<Obj, ParseError> {
    let tok = lex.next().ok_or(ParseError::End)?;
    parse_from(lex, tok, depth)
}

pub(super) fn parse_from(
    lex: &mut Lexer<'_>,
    tok: Tok<'_>,
    depth: usize,
) -> Result<Obj, ParseError> {
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

pub(super) fn is_structural_keyword(w: &[u8]) -> bool {
    matches!(
        w,
        b"endobj" | b"stream" | b"endstream" | b"obj" | b"trailer" | b"xref" | b"startxref"
    )
}

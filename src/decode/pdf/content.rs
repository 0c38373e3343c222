//! Content streams: the text operators of pages and form XObjects, laid out into lines.

use super::*;

pub(super) type Matrix = [f64; 6];
pub(super) const IDENTITY: Matrix = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];

pub(super) fn mul(m1: &Matrix, m2: &Matrix) -> Matrix {
    [
        m1[0] * m2[0] + m1[1] * m2[2],
        m1[0] * m2[1] + m1[1] * m2[3],
        m1[2] * m2[0] + m1[3] * m2[2],
        m1[2] * m2[1] + m1[3] * m2[3],
        m1[4] * m2[0] + m1[5] * m2[2] + m2[4],
        m1[4] * m2[1] + m1[5] * m2[3] + m2[5],
    ]
}

pub(super) fn translate(tx: f64, ty: f64) -> Matrix {
    [1.0, 0.0, 0.0, 1.0, tx, ty]
}

#[derive(Clone)]
pub(super) struct GState {
    pub(super) ctm: Matrix,
    pub(super) font: Option<Rc<Font>>,
    pub(super) size: f64,
    pub(super) char_spacing: f64,
    pub(super) word_spacing: f64,
    pub(super) h_scale: f64,
    pub(super) leading: f64,
}

impl GState {
    /// The state a page or an annotation's appearance starts drawing in (PDF 32000 §8.4.1).
    pub(super) fn initial() -> GState {
        GState {
            ctm: IDENTITY,
            font: None,
            size: 12.0,
            char_spacing: 0.0,
            word_spacing: 0.0,
            h_scale: 1.0,
            leading: 0.0,
        }
    }
}

pub(super) struct Extractor<'d, 'b> {
    pub(super) doc: &'d Pdf,
    pub(super) budget: &'b mut Budget,
    /// Fonts by object number, loaded once per document.
    pub(super) fonts: HashMap<u32, Rc<Font>>,
    pub(super) notes: Vec<String>,
    /// An object or content operand was nested too deeply / was too large, and was dropped.
    pub(super) too_deep: bool,
    pub(super) too_many: bool,
    /// Decoded form XObjects by object number: a form drawn on every page is decoded once.
    pub(super) forms: HashMap<u32, Rc<Vec<u8>>>,
    /// Codes shown that no mapping could turn into text, and all codes shown.
    pub(super) unmapped: usize,
    pub(super) shown: usize,
}

/// The text of the page being read, and what is needed to lay it out.
#[derive(Default)]
pub(super) struct PageText {
    pub(super) out: String,
    /// Where the last shown text ended.
    pub(super) pen: Option<Pen>,
    /// Form XObjects already drawn on this page (a cycle guard).
    pub(super) forms_seen: HashSet<u32>,
}

/// Where the last shown text ended, to decide between nothing, a space and a new line.
pub(super) struct Pen {
    pub(super) x: f64,
    pub(super) y: f64,
    pub(super) size: f64,
}

impl Extractor<'_, '_> {
    pub(super) fn all_text(&mut self) -> String {
        let doc = self.doc;
        let mut out = String::new();
        for (page, resources) in &doc.pages {
            if self.budget.out_of_time() {
                self.note(crate::decode::Stop::Time.reason());
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
            let mut state = GState::initial();
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
    pub(super) fn run(
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
                self.note(crate::decode::Stop::Time.reason());
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
    pub(super) fn form(
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
    pub(super) fn note(&mut self, reason: &str) {
        if !self.notes.iter().any(|n| n == reason) {
            self.notes.push(reason.to_string());
        }
    }

    pub(super) fn font(&mut self, resources: Option<&Dict>, name: &[u8]) -> Option<Rc<Font>> {
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
    pub(super) fn show(
        &mut self,
        bytes: &[u8],
        state: &GState,
        tm: &mut Matrix,
        page: &mut PageText,
    ) {
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
}

/// Skip inline image data after `ID`: binary up to `EI` between white space.
pub(super) fn skip_inline_image(lex: &mut Lexer<'_>) {
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

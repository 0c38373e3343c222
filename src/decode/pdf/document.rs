//! The document: objects found by scanning, object streams, trailers, pages.

use super::*;

pub(super) struct Pdf {
    /// Object number → (file offset of the definition, generation, object). Later definitions
    /// (incremental updates) replace earlier ones.
    pub(super) objects: HashMap<u32, (usize, u16, Obj)>,
    /// Trailer dictionaries and cross-reference stream dictionaries, in file order.
    pub(super) trailers: Vec<Dict>,
    pub(super) encrypted: bool,
    /// Some object was nested too deeply and was not read.
    pub(super) too_deep: bool,
    /// The item budget ran out: later objects were not read.
    pub(super) too_many: bool,
    /// Values left of [`MAX_DOCUMENT_ITEMS`].
    pub(super) items_left: usize,
    /// Why some objects were not read (reported unscannable, the rest is still read).
    pub(super) notes: Vec<&'static str>,
    /// Pages in order, each with its inherited resources.
    pub(super) pages: Vec<(Dict, Option<Obj>)>,
}

impl Pdf {
    pub(super) fn parse(data: &[u8], budget: &mut Budget) -> Result<Pdf, PdfError> {
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
    pub(super) fn scan_objects(&mut self, data: &[u8]) -> Result<(), PdfError> {
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
    pub(super) fn read_object_streams(&mut self, budget: &mut Budget) {
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
    pub(super) fn parse_counted(&mut self, lex: &mut Lexer<'_>) -> Result<Obj, ParseError> {
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

    pub(super) fn get(&self, num: u32) -> &Obj {
        self.objects.get(&num).map_or(&Obj::Null, |(_, _, o)| o)
    }

    /// Follow references (a few hops at most).
    pub(super) fn resolve<'a>(&'a self, mut obj: &'a Obj) -> &'a Obj {
        for _ in 0..8 {
            match obj {
                Obj::Ref(num, _) => obj = self.get(*num),
                _ => return obj,
            }
        }
        &Obj::Null
    }

    pub(super) fn int(&self, obj: Option<&Obj>) -> Option<i64> {
        match self.resolve(obj?) {
            Obj::Int(i) => Some(*i),
            Obj::Real(r) => Some(*r as i64),
            _ => None,
        }
    }

    pub(super) fn dict_of<'a>(&'a self, obj: Option<&'a Obj>) -> Option<&'a Dict> {
        self.resolve(obj?).dict()
    }

    pub(super) fn array_of<'a>(&'a self, obj: Option<&'a Obj>) -> &'a [Obj] {
        match obj.map(|o| self.resolve(o)) {
            Some(Obj::Array(items)) => items,
            _ => &[],
        }
    }

    /// The document catalog: from the last trailer with a `/Root`, else any `/Type /Catalog`.
    pub(super) fn catalog(&self) -> Option<&Dict> {
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
    pub(super) fn collect_pages(&self) -> Vec<(Dict, Option<Obj>)> {
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
    pub(super) fn inherited(&self, dict: &Dict, key: &[u8]) -> Option<Obj> {
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
pub(super) fn object_header(data: &[u8], at: usize) -> Option<(u32, u16)> {
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
pub(super) fn stream_data<'a>(data: &'a [u8], mut pos: usize, dict: &Dict) -> (&'a [u8], usize) {
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
pub(super) fn trailer_dicts(data: &[u8]) -> Vec<Dict> {
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

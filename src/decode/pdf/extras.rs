//! What a PDF holds besides page text: annotations, form fields, metadata (info
//! dictionary, XMP) and embedded files.

use super::*;

impl Extractor<'_, '_> {
    /// Comments and other annotations of a page: their contents (`/Contents`), their rich
    /// text (`/RC`, XHTML) and the text drawn by their appearance streams (`/AP /N`: a
    /// free-text box, a stamp, a filled-in field shows what its appearance draws).
    pub(super) fn annotations(&mut self, page: &Dict, out: &mut String) {
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
                push_line(out, &text_string(s));
            }
            if let Some(rich) = self.text_or_stream(dict.get(&b"RC"[..])) {
                push_line(out, &crate::decode::text::html_to_text(&rich));
            }
            if self.budget.out_of_time() {
                continue;
            }
            let appearance = self.appearance_text(dict);
            push_line(out, &appearance);
        }
    }

    /// The text an annotation's normal appearance draws (the stream for its current state
    /// `/AS` when there are several).
    fn appearance_text(&mut self, annot: &Dict) -> String {
        let doc = self.doc;
        let Some(ap) = doc.dict_of(annot.get(&b"AP"[..])) else {
            return String::new();
        };
        let Some(normal) = ap.get(&b"N"[..]) else {
            return String::new();
        };
        let stream = match doc.resolve(normal) {
            Obj::Stream(..) => normal,
            Obj::Dict(states) => match annot.get(&b"AS"[..]).and_then(Obj::as_name) {
                Some(state) => match states.get(state) {
                    Some(s) => s,
                    None => return String::new(),
                },
                None => return String::new(),
            },
            _ => return String::new(),
        };
        // Drawn like a form XObject named in a resource dictionary of its own.
        let mut xobjects = Dict::new();
        xobjects.insert(b"AP".to_vec(), stream.clone());
        let mut resources = Dict::new();
        resources.insert(b"XObject".to_vec(), Obj::Dict(Box::new(xobjects)));
        let mut text = PageText::default();
        let mut state = GState::initial();
        self.form(b"AP", Some(&resources), &mut state, &mut text, 0);
        text.out
    }

    /// A text string, or a text stream decoded (within the budget), as text.
    fn text_or_stream(&mut self, value: Option<&Obj>) -> Option<String> {
        let doc = self.doc;
        match doc.resolve(value?) {
            Obj::Str(s) => Some(text_string(s)),
            Obj::Stream(dict, raw) => match decode_stream(doc, dict, raw, self.budget) {
                Ok(bytes) => Some(text_string(&bytes)),
                Err(DecodeError::Limit(reason)) => {
                    self.note(reason);
                    None
                }
                Err(DecodeError::Unsupported) => {
                    self.note("PDF text stream with an unsupported filter is not scanned");
                    None
                }
            },
            _ => None,
        }
    }

    /// JavaScript anywhere in the document (`/JS` of actions: the open action, document
    /// scripts in the `/JavaScript` name tree, additional actions of pages, fields and
    /// annotations), as a string or a stream: a script can show a value in an alert or a field.
    fn javascript(&mut self, numbers: &[u32], out: &mut String) {
        let doc = self.doc;
        let mut found: Vec<&Obj> = Vec::new();
        for num in numbers {
            let dict = match doc.get(*num) {
                Obj::Dict(d) => &**d,
                _ => continue,
            };
            find_js(dict, 0, &mut found);
            if found.len() > MAX_FIELDS {
                break;
            }
        }
        let mut seen = HashSet::new();
        for js in found.into_iter().take(MAX_FIELDS) {
            if let Obj::Ref(num, _) = js
                && !seen.insert(*num)
            {
                continue;
            }
            if self.budget.out_of_time() {
                self.note(crate::decode::Stop::Time.reason());
                break;
            }
            if let Some(script) = self.text_or_stream(Some(js)) {
                push_line(out, &script);
            }
        }
    }

    /// Interactive form fields: `name: value` per filled field.
    /// The document information dictionary and XMP metadata (appended to `out`), and the
    /// embedded files.
    pub(super) fn metadata_and_files(&mut self, out: &mut String) -> Vec<(String, Vec<u8>)> {
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
        self.javascript(&numbers, out);
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
                self.note(crate::decode::Stop::Time.reason());
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

    pub(super) fn form_fields(&mut self, out: &mut String) {
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
            // What a person sees of a field besides its value: its tooltip (`/TU`), the
            // choices of a list (`/Opt`), the default value (`/DV`), a rich-text value (`/RV`).
            let mut shown = String::new();
            if let Some(Obj::Str(s)) = dict.get(&b"TU"[..]).map(|v| doc.resolve(v)) {
                push_line(&mut shown, &text_string(s));
            }
            for opt in doc.array_of(dict.get(&b"Opt"[..])).iter().take(MAX_FIELDS) {
                let choice = match doc.resolve(opt) {
                    Obj::Array(pair) => pair.last().map(|d| doc.resolve(d)),
                    other => Some(other),
                };
                if let Some(Obj::Str(s)) = choice {
                    push_line(&mut shown, &text_string(s));
                }
            }
            if let Some(Obj::Str(s)) = dict.get(&b"DV"[..]).map(|v| doc.resolve(v)) {
                push_line(&mut shown, &text_string(s));
            }
            if let Some(rich) = self.text_or_stream(dict.get(&b"RV"[..])) {
                push_line(&mut shown, &crate::decode::text::html_to_text(&rich));
            }
            if !shown.is_empty() {
                lines.push_str(&shown);
                lines.push('\n');
            }
            let value = match dict.get(&b"V"[..]).map(|v| doc.resolve(v)) {
                Some(Obj::Str(s)) => text_string(s),
                Some(Obj::Stream(..)) => {
                    self.text_or_stream(dict.get(&b"V"[..])).unwrap_or_default()
                }
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

/// `/JS` entries of `dict` and of the dictionaries written inside it (an action in `/A`,
/// `/OpenAction`, the actions of `/AA`), a few levels deep.
fn find_js<'a>(dict: &'a Dict, depth: usize, found: &mut Vec<&'a Obj>) {
    if depth > 4 || found.len() > MAX_FIELDS {
        return;
    }
    if let Some(js) = dict.get(&b"JS"[..]) {
        found.push(js);
    }
    for value in dict.values() {
        match value {
            Obj::Dict(inner) => find_js(inner, depth + 1, found),
            Obj::Array(items) => {
                for item in items.iter().take(64) {
                    if let Obj::Dict(inner) = item {
                        find_js(inner, depth + 1, found);
                    }
                }
            }
            _ => {}
        }
    }
}

/// `text` on a line of its own, if it has any.
fn push_line(out: &mut String, text: &str) {
    let text = text.trim();
    if !text.is_empty() {
        out.push('\n');
        out.push_str(text);
    }
}

/// The text of an XMP packet: element text and attribute values (XMP writes simple
/// properties either way), without namespace declarations and identifiers; entities resolved.
/// A small scanner rather than an XML parser: XMP is often not well-formed after editing.
pub(super) fn xmp_text(xml: &[u8], out: &mut String) {
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
pub(super) fn push_xml_text(s: &str, out: &mut String) {
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
pub(super) fn text_string(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16be(rest);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8_lossy(rest).into_owned();
    }
    bytes.iter().map(|&b| char::from(b)).collect()
}

//! Spreadsheet formulas that build text out of pieces (`=CONCATENATE("536","-22-","4817")`,
//! `="536"&"-22-"&"4817"`, `=TEXT(536224817,"000-00-0000")`): what the cell shows once the
//! file is opened, even when the file keeps no cached value.
//!
//! Only constant text is evaluated: string and number literals, `&`, `CONCATENATE`, `CONCAT`,
//! `TEXTJOIN`, `TEXT` with a digit format, `CHAR`, `T`, `TRIM`, `UPPER`, `LOWER`. A formula that
//! refers to a cell or calls anything else gives `None` (its pieces are not joined across what
//! is unknown). Input, output and nesting are bounded.

/// Formulas longer than this are not evaluated (Excel's own limit is 8,192 characters).
const MAX_FORMULA: usize = 8_192;
/// Longest result kept.
const MAX_RESULT: usize = 1_024;
/// Deepest nesting of function calls.
const MAX_DEPTH: usize = 16;

/// The text a formula of constants shows, or `None`. `formula` is as stored: OOXML
/// (`CONCATENATE("a","b")`, with or without `=`, functions maybe prefixed `_xlfn.`) or
/// OpenFormula (`of:=CONCATENATE("a";"b")`). Returns `None` as well for a bare literal (its
/// text is already in the formula).
pub fn evaluate(formula: &str) -> Option<String> {
    if formula.len() > MAX_FORMULA {
        return None;
    }
    let f = formula.trim();
    let f = f.strip_prefix("of:").unwrap_or(f);
    let f = f.strip_prefix('=').unwrap_or(f);
    let mut p = Parser {
        s: f.as_bytes(),
        at: 0,
        computed: false,
    };
    let value = p.concat(0)?;
    p.ws();
    if p.at != p.s.len() || !p.computed {
        return None;
    }
    Some(value)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    computed: bool,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.at).is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.s.get(self.at) == Some(&b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// term (`&` term)*
    fn concat(&mut self, depth: usize) -> Option<String> {
        let mut out = self.term(depth)?;
        while self.eat(b'&') {
            self.computed = true;
            out.push_str(&self.term(depth)?);
            if out.len() > MAX_RESULT {
                return None;
            }
        }
        Some(out)
    }

    fn term(&mut self, depth: usize) -> Option<String> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.s.get(self.at)? {
            b'"' => self.string(),
            b'0'..=b'9' | b'.' => self.number(),
            b'(' => {
                self.at += 1;
                let v = self.concat(depth + 1)?;
                self.eat(b')').then_some(v)
            }
            b if b.is_ascii_alphabetic() || b == b'_' => self.call(depth),
            _ => None,
        }
    }

    fn string(&mut self) -> Option<String> {
        self.at += 1; // the opening quote
        let mut bytes = Vec::new();
        loop {
            match *self.s.get(self.at)? {
                b'"' if self.s.get(self.at + 1) == Some(&b'"') => {
                    bytes.push(b'"');
                    self.at += 2;
                }
                b'"' => {
                    self.at += 1;
                    break;
                }
                b => {
                    bytes.push(b);
                    self.at += 1;
                }
            }
            if bytes.len() > MAX_RESULT {
                return None;
            }
        }
        String::from_utf8(bytes).ok()
    }

    fn number(&mut self) -> Option<String> {
        let start = self.at;
        while self
            .s
            .get(self.at)
            .is_some_and(|b| b.is_ascii_digit() || *b == b'.')
        {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.at]).ok()?;
        // Excel shows 4817.0 as 4817 and drops leading zeros of a number.
        let n: f64 = text.parse().ok()?;
        if n.fract() == 0.0 && n < 1e15 {
            Some(format!("{}", n as u64))
        } else {
            Some(text.to_string())
        }
    }

    fn call(&mut self, depth: usize) -> Option<String> {
        let start = self.at;
        while self
            .s
            .get(self.at)
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.'))
        {
            self.at += 1;
        }
        let name = std::str::from_utf8(&self.s[start..self.at])
            .ok()?
            .to_ascii_uppercase();
        let name = name
            .strip_prefix("_XLFN.")
            .or_else(|| name.strip_prefix("COM.MICROSOFT."))
            .unwrap_or(&name)
            .to_string();
        if !self.eat(b'(') {
            // The constants TRUE and FALSE; anything else is a cell reference or a defined
            // name: unknown.
            return matches!(name.as_str(), "TRUE" | "FALSE").then_some(name);
        }
        let mut args = Vec::new();
        if !self.eat(b')') {
            loop {
                args.push(self.concat(depth + 1)?);
                if self.eat(b')') {
                    break;
                }
                if !(self.eat(b',') || self.eat(b';')) {
                    return None;
                }
                if args.len() > 255 {
                    return None;
                }
            }
        }
        self.computed = true;
        let out = match name.as_str() {
            "CONCATENATE" | "CONCAT" => args.concat(),
            "TEXTJOIN" if args.len() >= 2 => {
                let skip_empty = matches!(args[1].to_ascii_uppercase().as_str(), "TRUE" | "1");
                let parts: Vec<&str> = args[2..]
                    .iter()
                    .map(String::as_str)
                    .filter(|a| !(skip_empty && a.is_empty()))
                    .collect();
                parts.join(&args[0])
            }
            "TEXT" if args.len() == 2 => text_format(&args[0], &args[1])?,
            "CHAR" if args.len() == 1 => {
                let code: u32 = args[0].parse().ok()?;
                char::from_u32(code)
                    .filter(|c| !c.is_control())?
                    .to_string()
            }
            "T" | "TRIM" if args.len() == 1 => args[0].trim().to_string(),
            "UPPER" if args.len() == 1 => args[0].to_uppercase(),
            "LOWER" if args.len() == 1 => args[0].to_lowercase(),
            // TRUE() and FALSE() as TEXTJOIN's second argument.
            "TRUE" if args.is_empty() => "TRUE".to_string(),
            "FALSE" if args.is_empty() => "FALSE".to_string(),
            _ => return None,
        };
        (out.len() <= MAX_RESULT).then_some(out)
    }
}

/// `TEXT(value, format)` for a whole number and a format of digit placeholders (`0`, `#`)
/// and literal characters (`000-00-0000`, `(000) 000-0000`); anything else gives `None`.
fn text_format(value: &str, format: &str) -> Option<String> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut literal = Vec::new(); // the format as (is placeholder, char)
    let mut chars = format.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if !quoted => literal.push((false, chars.next()?)),
            '0' | '#' if !quoted => literal.push((true, c)),
            c if quoted || !c.is_alphanumeric() && !matches!(c, '.' | ',' | '%' | ';' | '@') => {
                literal.push((false, c))
            }
            _ => return None,
        }
    }
    let slots = literal.iter().filter(|(p, _)| *p).count();
    if slots == 0 {
        return None;
    }
    let digits = value.trim_start_matches('0');
    let padded = format!("{digits:0>slots$}");
    // Extra digits go to the first placeholder.
    let extra = padded.len() - slots;
    let mut out = String::new();
    let mut next = 0;
    for (placeholder, c) in literal {
        if placeholder {
            let take = if next == 0 { extra + 1 } else { 1 };
            out.push_str(&padded[next..next + take]);
            next += take;
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::evaluate;

    #[test]
    fn joins_constant_pieces() {
        let ssn = Some("536-22-4817".to_string());
        assert_eq!(evaluate(r#"CONCATENATE("536","-22-","4817")"#), ssn);
        assert_eq!(evaluate(r#"="536"&"-22-"&"4817""#), ssn);
        assert_eq!(evaluate(r#"_xlfn.CONCAT(536,"-",22,"-",4817)"#), ssn);
        assert_eq!(evaluate(r#"of:=CONCATENATE("536";"-22-";"4817")"#), ssn);
        assert_eq!(evaluate(r#"TEXT(536224817,"000-00-0000")"#), ssn);
        assert_eq!(evaluate(r#"536&CHAR(45)&"22"&CHAR(45)&4817"#), ssn);
        assert_eq!(
            evaluate(r#"_xlfn.TEXTJOIN("-",TRUE,"536","","22","4817")"#),
            ssn
        );
        assert_eq!(evaluate(r#""say ""hi""" & 1"#), Some(r#"say "hi"1"#.into()));
        assert_eq!(
            evaluate(r#"TEXT(1234,"(000) 000-0000")"#),
            Some("(000) 000-1234".into())
        );
    }

    #[test]
    fn unknowns_and_literals_give_nothing() {
        assert_eq!(evaluate(r#""536-22-4817""#), None); // a bare literal: already in the text
        assert_eq!(evaluate("SUM(536,22,4817)"), None);
        assert_eq!(evaluate(r#"CONCATENATE(A1," due")"#), None);
        assert_eq!(evaluate(r#""536"&A1&"4817""#), None);
        assert_eq!(evaluate(r#"TEXT(45000,"yyyy-mm-dd")"#), None);
        assert_eq!(evaluate(r#"CONCATENATE("a""#), None);
        let deep = format!("{}\"x\"{}", "CONCAT(".repeat(100), ")".repeat(100));
        assert_eq!(evaluate(&deep), None);
        let long = format!("\"{}\"&\"x\"", "y".repeat(5000));
        assert_eq!(evaluate(&long), None);
    }
}

//! Detection: normalised text → matches of sensitive kinds.
//!
//! Recognisers are data (`patterns/*.toml`, format in `patterns/README.md`). At start-up they are
//! compiled once into:
//! - one keyword automaton over the keywords of all patterns (`keywords.rs`),
//! - one multi-pattern regex over the number-shaped patterns, run only on number groups
//!   (`numbers.rs`),
//! - one regex per pattern, run only where its trigger says it may match,
//! - small context automata, run only around values that passed their validator.
//!
//! So the common case (text with no keyword and few digits) costs two cheap passes, and the
//! expensive steps run on candidates only.

mod context;
mod keywords;
mod numbers;
mod spec;
mod tables;
pub mod validate;

#[cfg(test)]
mod tests;

use crate::model::Confidence;
use keywords::KeywordScanner;
use regex_automata::meta::{self, Regex};
use regex_automata::util::captures::Captures;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, PatternSet};
use regex_syntax::hir::{Class, Hir, HirKind};
use spec::Trigger;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use tables::Tables;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};
use validate::Validator;

/// One match of a sensitive kind in a text, as a byte span of that (normalised) text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Kind name from `shared/policy-map.md`.
    pub kind: String,
    /// Name of the pattern that matched.
    pub pattern: String,
    pub confidence: Confidence,
    /// Mask the value completely (`secret = true` in the pattern file).
    pub secret: bool,
    /// Byte range of the sensitive value in the text given to [`Detector::find`].
    pub start: usize,
    pub end: usize,
}

/// A problem with a pattern file: which file, which line, what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct PatternError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Default bytes searched after a keyword for the pattern's regex.
const DEFAULT_SEARCH_AFTER: usize = 200;
/// Default context window, bytes on each side of the value.
const DEFAULT_WINDOW: usize = 60;
/// Largest `search_before`/`search_after` (keyword windows are merged, so work stays linear).
const MAX_REACH: usize = 65_536;
/// Largest context window: context is searched around every candidate, so this bounds the work
/// per candidate.
const MAX_WINDOW: usize = 4_096;
/// Candidates are checked (validators, context) in chunks of this many, so memory stays flat
/// however many a text holds, and no candidate is dropped to make room for others.
const CANDIDATE_CHUNK: usize = 65_536;
/// Candidates checked per pattern in one text: bounds the time a text of filler can cost. Past
/// it the text is reported as not fully scanned ([`Found::truncated`]); other patterns go on.
pub const MAX_CANDIDATES_PER_PATTERN: usize = 1_000_000;
/// Values accepted per pattern in one text: bounds memory. Past it, likewise reported.
pub const MAX_MATCHES_PER_PATTERN: usize = 100_000;
/// Keyword hits kept per text to look for keywords in table headers.
const MAX_HEADER_HITS: usize = 4_096;
/// (table column, pattern) pairs whose cells are presented with their header, per text.
const MAX_HEADER_COLUMNS: usize = 64;
/// Longest cell presented with its header.
const MAX_TABLE_CELL: usize = 256;

/// One compiled recogniser.
#[derive(Debug)]
struct Pattern {
    name: String,
    kind: String,
    trigger: Trigger,
    regex: Option<Regex>,
    /// The regex as written (number patterns are also compiled together as one set).
    regex_src: Option<String>,
    /// Index of the `value` capture group, if the regex has one.
    value_group: Option<usize>,
    case_sensitive: bool,
    /// Number trigger: digits and letters a group must hold for the regex to be tried.
    min_digits: usize,
    min_letters: usize,
    search_before: usize,
    search_after: usize,
    validator: Option<Validator>,
    context: Option<KeywordScanner>,
    window: usize,
    negative: Option<KeywordScanner>,
    negative_window: usize,
    confidence: Confidence,
    context_confidence: Confidence,
    require_context: bool,
    exclude: Option<Regex>,
    min_count: usize,
    secret: bool,
    /// Keyword trigger: a hit counts only when the address after it has a user-info part
    /// (see [`has_userinfo`]).
    userinfo: bool,
    /// A `[[phrase]]` of a content rule: its matches are scored, not reported as a kind.
    signal: Option<Signal>,
}

/// What a `[[phrase]]` is worth. Its pattern reports `High` confidence when a context word is
/// near (then `context_weight` applies), `Low` otherwise.
#[derive(Debug, Clone)]
struct Signal {
    weight: i32,
    context_weight: i32,
    max_count: usize,
}

/// A compiled `[[service]]`: a file-sharing or paste service.
#[derive(Debug)]
struct Service {
    name: String,
    display: String,
    /// Lower-case host names (sub-domains included).
    domains: Vec<String>,
    /// Shapes of its sharing links, over the path and query; None: any path but `/`.
    paths: Option<Regex>,
}

/// Phrase evidence for a content rule in one text: a `[[phrase]]` found `count` times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalHit {
    /// The content rule (`chain_letter`, `mass_solicitation`).
    pub rule: String,
    /// The `[[phrase]]` name.
    pub name: String,
    /// Points per occurrence (`context_weight` when a context word was near one of them).
    pub weight: i32,
    /// Occurrences that count (at most the phrase's `max_count`).
    pub count: usize,
}

impl SignalHit {
    pub fn points(&self) -> i64 {
        i64::from(self.weight) * self.count as i64
    }
}

/// A link to a known file-sharing or paste service, in a shape that shares a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkHit {
    /// The `[[service]]` name and its display name.
    pub service: String,
    pub display: String,
    /// The link's host, lower case (`cityofexample.sharepoint.com`).
    pub host: String,
    /// Path and query as written (a sharing link works for whoever holds it: never print it).
    pub path: String,
}

/// Links kept per text (distinct host and path): bounds memory on a text of links.
pub const MAX_LINKS_PER_TEXT: usize = 1_000;
/// Bytes of a link's path and query read.
const MAX_LINK_PATH: usize = 2_048;

/// What a keyword triggers: a pattern, or the link check of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Pattern(usize),
    Service(usize),
}

/// Who is interested in a keyword: a pattern, and the keyword as written (for case-sensitive
/// patterns, which compare the text byte for byte after the case-insensitive automaton).
#[derive(Debug)]
struct KeywordUse {
    target: Target,
    literal: Vec<u8>,
    /// A keyword of one to three letters ("tin", "pin", "pw"): it opens a pattern's search
    /// window only where it starts a word (or a capitalised hump: "empSSN"). Inside words
    /// ("meeting", "opinion") it is the commonest hit of all and labels nothing.
    word_start: bool,
}

/// The compiled recognisers.
#[derive(Debug)]
pub struct Detector {
    patterns: Vec<Pattern>,
    keywords: Option<KeywordScanner>,
    /// The keywords, lower-cased, by keyword id.
    keyword_list: Vec<Vec<u8>>,
    /// By keyword id (lower-cased keyword), the patterns using it.
    keyword_uses: Vec<Vec<KeywordUse>>,
    /// Number-trigger patterns, as indexes into `patterns`, in the order of `number_set`.
    number_patterns: Vec<usize>,
    /// All number-trigger regexes as one set, to see which may match in a group.
    number_set: Option<Regex>,
    number_min_digits: usize,
    text_patterns: Vec<usize>,
    /// Patterns with `min_count` above 1.
    counted_patterns: Vec<usize>,
    services: Vec<Service>,
}

/// Regexes are byte-oriented and ASCII: `\d`, `\w`, `\s`, `\b` and `(?i)` mean their ASCII
/// forms, which keeps the automata small and fast on any text.
fn syntax_config() -> syntax::Config {
    syntax::Config::new().unicode(false).utf8(false)
}

/// A compiled regex and the digits and letters any match of it contains at least.
fn build_regex(pattern: &str) -> Result<(Regex, Needs), String> {
    let hir = syntax::parse_with(pattern, &syntax_config()).map_err(|e| e.to_string())?;
    if hir.properties().minimum_len() == Some(0) {
        return Err("regex can match the empty string".into());
    }
    let re = Regex::builder()
        .syntax(syntax_config())
        .build(pattern)
        .map_err(|e| e.to_string())?;
    Ok((re, Needs::of(&hir)))
}

/// How many ASCII digits and letters every match of a regex contains, at least: a number group
/// with fewer cannot hold a match, so the regex is not run on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Needs {
    digits: usize,
    letters: usize,
}

impl Needs {
    fn of(hir: &Hir) -> Needs {
        match hir.kind() {
            HirKind::Empty | HirKind::Look(_) => Needs::default(),
            HirKind::Literal(lit) => Needs {
                digits: lit.0.iter().filter(|b| b.is_ascii_digit()).count(),
                letters: lit.0.iter().filter(|b| b.is_ascii_alphabetic()).count(),
            },
            HirKind::Class(class) => {
                let ranges: Vec<(u32, u32)> = match class {
                    Class::Bytes(c) => c
                        .ranges()
                        .iter()
                        .map(|r| (u32::from(r.start()), u32::from(r.end())))
                        .collect(),
                    Class::Unicode(c) => c
                        .ranges()
                        .iter()
                        .map(|r| (u32::from(r.start()), u32::from(r.end())))
                        .collect(),
                };
                let within = |lo: u8, hi: u8| {
                    move |&(a, b): &(u32, u32)| a >= u32::from(lo) && b <= u32::from(hi)
                };
                let digit = ranges.iter().all(within(b'0', b'9'));
                let letter = ranges
                    .iter()
                    .all(|r| within(b'A', b'Z')(r) || within(b'a', b'z')(r));
                Needs {
                    digits: usize::from(digit && !ranges.is_empty()),
                    letters: usize::from(letter && !ranges.is_empty()),
                }
            }
            HirKind::Repetition(rep) => {
                let sub = Needs::of(&rep.sub);
                let n = rep.min as usize;
                Needs {
                    digits: sub.digits.saturating_mul(n),
                    letters: sub.letters.saturating_mul(n),
                }
            }
            HirKind::Capture(cap) => Needs::of(&cap.sub),
            HirKind::Concat(subs) => {
                subs.iter()
                    .map(Needs::of)
                    .fold(Needs::default(), |a, b| Needs {
                        digits: a.digits.saturating_add(b.digits),
                        letters: a.letters.saturating_add(b.letters),
                    })
            }
            HirKind::Alternation(subs) => {
                let all: Vec<Needs> = subs.iter().map(Needs::of).collect();
                Needs {
                    digits: all.iter().map(|n| n.digits).min().unwrap_or(0),
                    letters: all.iter().map(|n| n.letters).min().unwrap_or(0),
                }
            }
        }
    }
}

fn word_set(words: &[String]) -> Result<Option<KeywordScanner>, String> {
    if words.is_empty() {
        return Ok(None);
    }
    if words.iter().any(|w| w.trim().is_empty()) {
        return Err("empty context word".into());
    }
    // The keyword scanner's flat automaton, which reports every occurrence (of "exp" and
    // "expires" both, so the one that is a whole word is seen). It steps through a label
    // window in fewer instructions than aho-corasick's leftmost-longest search, used before:
    // 8 % fewer for all of detection on the median ham-dev part.
    let words: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
    KeywordScanner::new(&words).map(Some)
}

/// A pattern's reach with its defaults, within the limits: (window, negative_window,
/// search_before, search_after).
fn reach(
    window: Option<usize>,
    negative_window: Option<usize>,
    search_before: Option<usize>,
    search_after: Option<usize>,
) -> Result<(usize, usize, usize, usize), String> {
    let window = window.unwrap_or(DEFAULT_WINDOW);
    let negative_window = negative_window.unwrap_or(window);
    let search_before = search_before.unwrap_or(0);
    let search_after = search_after.unwrap_or(DEFAULT_SEARCH_AFTER);
    if [search_before, search_after].iter().any(|&w| w > MAX_REACH) {
        return Err(format!(
            "search_before and search_after are limited to {MAX_REACH} bytes"
        ));
    }
    if [window, negative_window].iter().any(|&w| w > MAX_WINDOW) {
        return Err(format!(
            "window and negative_window are limited to {MAX_WINDOW} bytes"
        ));
    }
    Ok((window, negative_window, search_before, search_after))
}

fn valid_kind(kind: &str) -> bool {
    let mut chars = kind.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Check and compile one `[[pattern]]` of `loaded`; errors point at the offending line.
fn compile_pattern(
    loaded: &spec::Loaded,
    sp: &toml::Spanned<spec::PatternSpec>,
    name: &str,
) -> Result<Pattern, PatternError> {
    let at = sp.span().start;
    let p = sp.get_ref();
    let err = |at: usize, m: String| loaded.error(at, m);
    let kind = p.kind.get_ref().clone();
    if !valid_kind(&kind) {
        return Err(err(
            p.kind.span().start,
            format!("kind {kind:?} must be lower-case letters, digits and _"),
        ));
    }
    let trigger = match p.trigger {
        Some(t) => t,
        None if !p.keywords.is_empty() => Trigger::Keyword,
        None => Trigger::Text,
    };
    match trigger {
        Trigger::Keyword if p.keywords.is_empty() => {
            return Err(err(at, "trigger \"keyword\" needs `keywords`".into()));
        }
        Trigger::Number | Trigger::Text if p.userinfo => {
            return Err(err(
                at,
                "`userinfo` applies to keyword patterns (keywords that start an address)".into(),
            ));
        }
        Trigger::Number | Trigger::Text if p.regex.is_none() => {
            return Err(err(at, "this trigger needs a `regex`".into()));
        }
        Trigger::Number | Trigger::Text if !p.keywords.is_empty() => {
            return Err(err(
                p.keywords[0].span().start,
                "`keywords` are only used with trigger = \"keyword\"".into(),
            ));
        }
        _ => {}
    }
    let (regex, value_group, needs) = match &p.regex {
        Some(r) => {
            let (re, needs) = build_regex(r.get_ref())
                .map_err(|e| err(r.span().start, format!("bad regex: {e}")))?;
            let vg = re
                .group_info()
                .to_index(regex_automata::PatternID::ZERO, "value");
            (Some(re), vg, needs)
        }
        None => (None, None, Needs::default()),
    };
    let exclude = if p.exclude.is_empty() {
        None
    } else {
        for e in &p.exclude {
            syntax::parse_with(e.get_ref(), &syntax_config())
                .map_err(|m| err(e.span().start, format!("bad exclude regex: {m}")))?;
        }
        let pats: Vec<&str> = p.exclude.iter().map(|e| e.get_ref().as_str()).collect();
        Some(
            Regex::builder()
                .syntax(syntax_config())
                .build_many(&pats)
                .map_err(|m| err(at, format!("bad exclude regex: {m}")))?,
        )
    };
    let context = word_set(&p.context).map_err(|m| err(at, m))?;
    let negative = word_set(&p.negative_context).map_err(|m| err(at, m))?;
    if p.require_context && context.is_none() {
        return Err(err(at, "require_context needs `context` words".into()));
    }
    let (window, negative_window, search_before, search_after) =
        reach(p.window, p.negative_window, p.search_before, p.search_after)
            .map_err(|m| err(at, m))?;
    let min_count = p.min_count.unwrap_or(1);
    if min_count == 0 {
        return Err(err(at, "min_count must be at least 1".into()));
    }
    Ok(Pattern {
        name: name.to_string(),
        kind,
        trigger,
        regex,
        regex_src: p.regex.as_ref().map(|r| r.get_ref().clone()),
        value_group,
        case_sensitive: p.case_sensitive,
        min_digits: p.min_digits.unwrap_or(1).max(needs.digits).max(1),
        min_letters: needs.letters,
        search_before,
        search_after,
        validator: p.validator,
        context,
        window,
        negative,
        negative_window,
        confidence: p.confidence,
        context_confidence: p.context_confidence.unwrap_or(p.confidence),
        require_context: p.require_context,
        exclude,
        min_count,
        secret: p.secret,
        userinfo: p.userinfo,
        signal: None,
    })
}

/// Check and compile one `[[phrase]]` of `loaded` as a keyword pattern with a weight.
fn compile_phrase(
    loaded: &spec::Loaded,
    sp: &toml::Spanned<spec::PhraseSpec>,
    name: &str,
) -> Result<Pattern, PatternError> {
    let at = sp.span().start;
    let p = sp.get_ref();
    let err = |at: usize, m: String| loaded.error(at, m);
    let rule = p.rule.get_ref().trim();
    if !spec::PHRASE_RULES.contains(&rule) {
        return Err(err(
            p.rule.span().start,
            format!(
                "unknown rule {rule:?}: phrases score for one of {}",
                spec::PHRASE_RULES.join(", ")
            ),
        ));
    }
    if p.keywords.is_empty() {
        return Err(err(at, "a phrase needs `keywords`".into()));
    }
    let in_range = |w: i32| (-100..=100).contains(&w);
    let context_weight = p.context_weight.unwrap_or(p.weight);
    if !in_range(p.weight) || !in_range(context_weight) {
        return Err(err(
            at,
            "weight and context_weight are whole numbers from -100 to 100".into(),
        ));
    }
    let max_count = p.max_count.unwrap_or(1);
    if !(1..=100).contains(&max_count) {
        return Err(err(at, "max_count is 1 to 100".into()));
    }
    let (regex, value_group) = match &p.regex {
        Some(r) => {
            let (re, _) = build_regex(r.get_ref())
                .map_err(|e| err(r.span().start, format!("bad regex: {e}")))?;
            let vg = re
                .group_info()
                .to_index(regex_automata::PatternID::ZERO, "value");
            (Some(re), vg)
        }
        None => (None, None),
    };
    let context = word_set(&p.context).map_err(|m| err(at, m))?;
    let negative = word_set(&p.negative_context).map_err(|m| err(at, m))?;
    if (p.require_context || p.context_weight.is_some()) && context.is_none() {
        return Err(err(
            at,
            "require_context and context_weight need `context` words".into(),
        ));
    }
    let (window, negative_window, search_before, search_after) =
        reach(p.window, p.negative_window, p.search_before, p.search_after)
            .map_err(|m| err(at, m))?;
    let scored_context = context_weight != p.weight;
    Ok(Pattern {
        name: name.to_string(),
        kind: rule.to_string(),
        trigger: Trigger::Keyword,
        regex,
        regex_src: p.regex.as_ref().map(|r| r.get_ref().clone()),
        value_group,
        case_sensitive: false,
        min_digits: 1,
        min_letters: 0,
        search_before,
        search_after,
        validator: None,
        context,
        window,
        negative,
        negative_window,
        confidence: Confidence::Low,
        // A different confidence makes `evaluate` look for context: High means "near".
        context_confidence: if scored_context {
            Confidence::High
        } else {
            Confidence::Low
        },
        require_context: p.require_context,
        exclude: None,
        min_count: 1,
        secret: false,
        userinfo: false,
        signal: Some(Signal {
            weight: p.weight,
            context_weight,
            max_count,
        }),
    })
}

/// Check and compile one `[[service]]`.
fn compile_service(
    loaded: &spec::Loaded,
    sp: &toml::Spanned<spec::ServiceSpec>,
    name: &str,
) -> Result<Service, PatternError> {
    let at = sp.span().start;
    let p = sp.get_ref();
    let err = |at: usize, m: String| loaded.error(at, m);
    if p.domains.is_empty() {
        return Err(err(at, "a service needs `domains`".into()));
    }
    let mut domains = Vec::new();
    for d in &p.domains {
        let dom = d
            .get_ref()
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let ok = dom.contains('.')
            && !dom.starts_with('.')
            && dom
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
            && !dom.contains("..");
        if !ok || dom.len() > 200 {
            return Err(err(
                d.span().start,
                format!(
                    "domain {:?}: write a host name such as dropbox.com (sub-domains are included; no scheme, path or *)",
                    d.get_ref()
                ),
            ));
        }
        domains.push(dom);
    }
    let paths = if p.paths.is_empty() {
        None
    } else {
        for r in &p.paths {
            syntax::parse_with(r.get_ref(), &syntax_config())
                .map_err(|m| err(r.span().start, format!("bad path regex: {m}")))?;
        }
        let pats: Vec<&str> = p.paths.iter().map(|r| r.get_ref().as_str()).collect();
        Some(
            Regex::builder()
                .syntax(syntax_config())
                .build_many(&pats)
                .map_err(|m| err(at, format!("bad path regex: {m}")))?,
        )
    };
    Ok(Service {
        name: name.to_string(),
        display: p
            .display
            .clone()
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| name.to_string()),
        domains,
        paths,
    })
}

/// Characters of a host name.
fn host_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'.'
}

/// The link around a service domain found at `b[s..e]`: (host, path) when the domain ends the
/// host name there (`www.dropbox.com/s/...`, not `dropbox.com.example.net` nor
/// `mydropbox.com`) and the host is not the domain of an e-mail address.
fn link_at(b: &[u8], s: usize, e: usize) -> Option<(String, String)> {
    // The domain must end the host: no more host characters, except a final dot of a sentence.
    if let Some(&c) = b.get(e)
        && (c.is_ascii_alphanumeric()
            || c == b'-'
            || c == b'_'
            || (c == b'.' && b.get(e + 1).is_some_and(|n| n.is_ascii_alphanumeric())))
    {
        return None;
    }
    let mut hs = s;
    while hs > 0 && b.get(hs - 1).is_some_and(|&c| host_byte(c)) && s - hs < 255 {
        hs -= 1;
    }
    if hs < s && b.get(s - 1) != Some(&b'.') {
        return None; // mydropbox.com
    }
    if hs > 0 && matches!(b.get(hs - 1), Some(b'@' | b'_')) {
        return None; // someone@dropbox.com
    }
    let host = String::from_utf8_lossy(b.get(hs..e)?)
        .trim_start_matches('.')
        .to_ascii_lowercase();
    // Path and query: from a `/` (after an optional port) to the first character that cannot
    // be in a URL, trailing punctuation of the sentence left out.
    let mut ps = e;
    if b.get(ps) == Some(&b':') {
        let digits = b
            .get(ps + 1..)
            .map_or(0, |r| r.iter().take_while(|c| c.is_ascii_digit()).count());
        if digits > 0 {
            ps += 1 + digits;
        }
    }
    let mut path = String::new();
    if matches!(b.get(ps), Some(b'/' | b'?' | b'#')) {
        let rest = b.get(ps..).unwrap_or(&[]);
        let mut len = rest
            .iter()
            .take(MAX_LINK_PATH)
            .take_while(|&&c| {
                c > b' '
                    && c < 0x7f
                    && !matches!(
                        c,
                        b'"' | b'\'' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'}' | b'|'
                    )
            })
            .count();
        while len > 1
            && matches!(
                rest.get(len - 1),
                Some(b'.' | b',' | b';' | b':' | b'!' | b'?' | b')' | b']')
            )
        {
            len -= 1;
        }
        path = String::from_utf8_lossy(rest.get(..len).unwrap_or(&[])).into_owned();
    }
    Some((host, path))
}

impl Detector {
    /// The built-in patterns (embedded from `patterns/`), plus every `*.toml` file of `extra_dirs`.
    pub fn new(extra_dirs: &[PathBuf]) -> Result<Detector, PatternError> {
        Detector::from_files(spec::load_all(extra_dirs)?)
    }

    /// The patterns of one pattern file's text alone (no built-in patterns), named `file` in
    /// errors: the pattern loader without the file system, for fuzzing and tests.
    pub fn from_source(file: &str, source: &str) -> Result<Detector, PatternError> {
        Detector::from_files(vec![spec::parse(file, source.to_string())?])
    }

    fn from_files(files: Vec<spec::Loaded>) -> Result<Detector, PatternError> {
        let mut patterns = Vec::new();
        let mut names: HashMap<String, String> = HashMap::new();
        let mut keyword_ids: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut keyword_list: Vec<Vec<u8>> = Vec::new();
        let mut keyword_uses: Vec<Vec<KeywordUse>> = Vec::new();
        let mut services: Vec<Service> = Vec::new();
        let mut service_names: HashMap<String, String> = HashMap::new();
        // One automaton for every keyword of every pattern, phrase and service domain.
        let mut add_keyword = |loaded: &spec::Loaded,
                               k: &toml::Spanned<String>,
                               target: Target|
         -> Result<(), PatternError> {
            let lit = k.get_ref().as_bytes().to_vec();
            if lit.is_empty() || lit.len() > 200 {
                return Err(loaded.error(k.span().start, "keywords must be 1 to 200 bytes"));
            }
            let key = lit.to_ascii_lowercase();
            let id = *keyword_ids.entry(key.clone()).or_insert_with(|| {
                keyword_list.push(key);
                keyword_uses.push(Vec::new());
                keyword_list.len() - 1
            });
            if !keyword_uses[id]
                .iter()
                .any(|u| u.target == target && u.literal == lit)
            {
                let word_start = lit.len() <= 3 && lit.iter().all(u8::is_ascii_alphabetic);
                keyword_uses[id].push(KeywordUse {
                    target,
                    literal: lit,
                    word_start,
                });
            }
            Ok(())
        };
        for loaded in &files {
            let mut claim = |name: &toml::Spanned<String>| -> Result<String, PatternError> {
                let n = name.get_ref().trim().to_string();
                if n.is_empty() {
                    return Err(loaded.error(name.span().start, "pattern name is empty"));
                }
                if let Some(other) = names.get(&n) {
                    return Err(loaded.error(
                        name.span().start,
                        format!("pattern name {n:?} is already used in {other}"),
                    ));
                }
                names.insert(n.clone(), loaded.file.clone());
                Ok(n)
            };
            let mut compiled = Vec::new();
            for sp in &loaded.spec.pattern {
                let name = claim(&sp.get_ref().name)?;
                compiled.push((compile_pattern(loaded, sp, &name)?, &sp.get_ref().keywords));
            }
            for sp in &loaded.spec.phrase {
                let name = claim(&sp.get_ref().name)?;
                compiled.push((compile_phrase(loaded, sp, &name)?, &sp.get_ref().keywords));
            }
            for (pattern, kws) in compiled {
                let idx = patterns.len();
                if pattern.trigger == Trigger::Keyword {
                    for k in kws {
                        add_keyword(loaded, k, Target::Pattern(idx))?;
                    }
                }
                patterns.push(pattern);
            }
            for sp in &loaded.spec.service {
                let p = sp.get_ref();
                let name = p.name.get_ref().trim().to_string();
                if name.is_empty() {
                    return Err(loaded.error(p.name.span().start, "service name is empty"));
                }
                if let Some(other) = service_names.get(&name) {
                    return Err(loaded.error(
                        p.name.span().start,
                        format!("service name {name:?} is already used in {other}"),
                    ));
                }
                service_names.insert(name.clone(), loaded.file.clone());
                let service = compile_service(loaded, sp, &name)?;
                let idx = services.len();
                for (d, spanned) in service.domains.iter().zip(&p.domains) {
                    let k = toml::Spanned::new(spanned.span(), d.clone());
                    add_keyword(loaded, &k, Target::Service(idx))?;
                }
                services.push(service);
            }
        }
        let keywords = if keyword_list.is_empty() {
            None
        } else {
            Some(
                KeywordScanner::new(&keyword_list).map_err(|m| PatternError {
                    file: "patterns".into(),
                    line: 0,
                    message: format!("keyword automaton: {m}"),
                })?,
            )
        };
        let number_patterns: Vec<usize> = patterns
            .iter()
            .enumerate()
            .filter(|(_, p)| p.trigger == Trigger::Number)
            .map(|(i, _)| i)
            .collect();
        let number_set = if number_patterns.is_empty() {
            None
        } else {
            let srcs: Vec<&str> = number_patterns
                .iter()
                .filter_map(|&i| patterns[i].regex_src.as_deref())
                .collect();
            Some(
                Regex::builder()
                    .syntax(syntax_config())
                    .configure(meta::Config::new().match_kind(MatchKind::All))
                    .build_many(&srcs)
                    .map_err(|m| PatternError {
                        file: "patterns".into(),
                        line: 0,
                        message: format!("number patterns: {m}"),
                    })?,
            )
        };
        let number_min_digits = number_patterns
            .iter()
            .map(|&i| patterns[i].min_digits)
            .min()
            .unwrap_or(1);
        let text_patterns = patterns
            .iter()
            .enumerate()
            .filter(|(_, p)| p.trigger == Trigger::Text)
            .map(|(i, _)| i)
            .collect();
        let counted_patterns = patterns
            .iter()
            .enumerate()
            .filter(|(_, p)| p.min_count > 1)
            .map(|(i, _)| i)
            .collect();
        Ok(Detector {
            counted_patterns,
            patterns,
            keywords,
            keyword_list,
            keyword_uses,
            number_patterns,
            number_set,
            number_min_digits,
            text_patterns,
            services,
        })
    }

    /// Names and kinds of the loaded patterns of sensitive kinds, in load order (phrases of
    /// content rules are not kinds: see [`Detector::phrases`]).
    pub fn patterns(&self) -> impl Iterator<Item = (&str, &str)> {
        self.patterns
            .iter()
            .filter(|p| p.signal.is_none())
            .map(|p| (p.name.as_str(), p.kind.as_str()))
    }

    /// Names and rules of the loaded `[[phrase]]` tables, in load order.
    pub fn phrases(&self) -> impl Iterator<Item = (&str, &str)> {
        self.patterns
            .iter()
            .filter(|p| p.signal.is_some())
            .map(|p| (p.name.as_str(), p.kind.as_str()))
    }

    /// Names and display names of the loaded `[[service]]` tables.
    pub fn services(&self) -> impl Iterator<Item = (&str, &str)> {
        self.services
            .iter()
            .map(|s| (s.name.as_str(), s.display.as_str()))
    }

    /// The keywords of all patterns, phrases and services, lower-cased, as the keyword pass
    /// searches them (ASCII case-insensitive). For benchmarks that run other search engines on
    /// the same set.
    pub fn keywords(&self) -> &[Vec<u8>] {
        &self.keyword_list
    }

    /// How many keyword occurrences (overlapping ones included) the keyword pass finds in
    /// `text`: the pass alone, without the work that follows it. For benchmarks.
    pub fn keyword_occurrences(&self, text: &[u8]) -> usize {
        let mut n = 0;
        if let Some(kw) = &self.keywords {
            kw.scan(text, |_, _, _| n += 1);
        }
        n
    }

    /// All matches in `text`, which must have gone through [`normalize`].
    pub fn find(&self, text: &str) -> Vec<Match> {
        self.find_all(text).matches
    }

    /// All matches in `text`, and whether a per-pattern limit cut the work short.
    pub fn find_all(&self, text: &str) -> Found {
        let b = text.as_bytes();
        let tables = Tables::default();
        let mut cands = Candidates::new(self, text, &tables);
        let mut links = Vec::new();
        self.keyword_candidates(b, &mut cands, &mut links);
        self.number_candidates(b, &mut cands);
        for &pi in &self.text_patterns {
            let p = &self.patterns[pi];
            if let Some(re) = &p.regex {
                regex_values(re, p.value_group, b, 0, b.len(), |s, e| {
                    cands.push((pi, s, e))
                });
            }
        }
        cands.flush();
        let truncated = cands.truncated;
        let mut out = std::mem::take(&mut cands.out);
        let signals = self.signals(&mut out);
        Found {
            matches: if out.is_empty() {
                Vec::new()
            } else {
                self.finish(text, out)
            },
            truncated,
            signals,
            links: self.links(b, links),
        }
    }

    /// Take the phrase matches out of `out`, one [`SignalHit`] per phrase.
    fn signals(&self, out: &mut Vec<(usize, usize, usize, Confidence)>) -> Vec<SignalHit> {
        if !out.iter().any(|m| self.patterns[m.0].signal.is_some()) {
            return Vec::new();
        }
        // Per phrase: distinct places, and whether a context word was near one of them.
        let mut by: BTreeMap<usize, (HashSet<(usize, usize)>, bool)> = BTreeMap::new();
        out.retain(|&(pi, s, e, conf)| {
            if self.patterns[pi].signal.is_none() {
                return true;
            }
            let entry = by.entry(pi).or_default();
            entry.0.insert((s, e));
            entry.1 |= conf == Confidence::High;
            false
        });
        by.into_iter()
            .filter_map(|(pi, (places, near))| {
                let p = &self.patterns[pi];
                let sig = p.signal.as_ref()?;
                Some(SignalHit {
                    rule: p.kind.clone(),
                    name: p.name.clone(),
                    weight: if near { sig.context_weight } else { sig.weight },
                    count: places.len().min(sig.max_count),
                })
            })
            .collect()
    }

    /// Service domains found at (service, start, end) → sharing links, distinct, bounded.
    fn links(&self, b: &[u8], found: Vec<(usize, usize, usize)>) -> Vec<LinkHit> {
        let mut out: Vec<LinkHit> = Vec::new();
        for (si, s, e) in found {
            let Some(service) = self.services.get(si) else {
                continue;
            };
            let Some((host, path)) = link_at(b, s, e) else {
                continue;
            };
            let shared = match &service.paths {
                Some(re) => !path.is_empty() && re.is_match(Input::new(path.as_bytes())),
                None => !path.is_empty() && path != "/",
            };
            if !shared || out.iter().any(|l| l.host == host && l.path == path) {
                continue;
            }
            if out.len() >= MAX_LINKS_PER_TEXT {
                break;
            }
            out.push(LinkHit {
                service: service.name.clone(),
                display: service.display.clone(),
                host,
                path,
            });
        }
        out
    }

    fn keyword_candidates(
        &self,
        b: &[u8],
        cands: &mut Candidates<'_>,
        links: &mut Vec<(usize, usize, usize)>,
    ) {
        let Some(kw) = &self.keywords else {
            return;
        };
        // Per pattern, the (from, to) windows where its regex must run. Keywords come in the
        // order of their ends, so a window that overlaps the pattern's previous one is merged
        // into it at once, and each list stays (nearly) in order: no sort across patterns.
        // Only the patterns whose keywords occur get a list: `slot[pi]` is its place in `windows`.
        let mut windows: Vec<(usize, Vec<(usize, usize)>)> = Vec::new();
        let mut slot: Vec<u32> = Vec::new();
        // Keywords that may be a column header: their column's cells are checked below.
        let mut header_hits: Vec<(usize, usize, usize)> = Vec::new();
        // Per pattern, the end of its last hit in `header_hits`.
        let mut last_header: Vec<usize> = Vec::new();
        kw.scan(b, |id, s, e| {
            let Some(uses) = self.keyword_uses.get(id) else {
                return;
            };
            for u in uses {
                let pi = match u.target {
                    Target::Pattern(pi) => pi,
                    Target::Service(si) => {
                        // Bounded: a text of nothing but domain names costs a fixed amount.
                        if links.len() < 16 * MAX_LINKS_PER_TEXT {
                            links.push((si, s, e));
                        }
                        continue;
                    }
                };
                let p = &self.patterns[pi];
                if p.case_sensitive && b.get(s..e) != Some(u.literal.as_slice()) {
                    continue;
                }
                if p.regex.is_some() {
                    if u.word_start && inside_word(b, s) {
                        continue;
                    }
                    if p.userinfo && !has_userinfo(b, e, p.search_after) {
                        continue;
                    }
                    // Every whole-word hit (not only a window's first: "pass" inside
                    // "Password" opens the window, "password" is the header word).
                    // One per pattern and line is enough (the header test is per line).
                    if header_hits.len() < MAX_HEADER_HITS && header_word(b, s, e) {
                        if last_header.is_empty() {
                            last_header.resize(self.patterns.len(), usize::MAX);
                        }
                        let same_line = last_header.get(pi).is_some_and(|&prev| {
                            prev <= s && memchr::memchr(b'\n', &b[prev..s]).is_none()
                        });
                        if !same_line {
                            header_hits.push((pi, s, e));
                            if let Some(l) = last_header.get_mut(pi) {
                                *l = e;
                            }
                        }
                    }
                    let from = s.saturating_sub(p.search_before);
                    let to = e.saturating_add(p.search_after).min(b.len());
                    if slot.is_empty() {
                        slot.resize(self.patterns.len(), u32::MAX);
                    }
                    let Some(k) = slot.get_mut(pi) else {
                        continue;
                    };
                    if *k == u32::MAX {
                        *k = windows.len() as u32;
                        windows.push((pi, Vec::new()));
                    }
                    let Some((_, list)) = windows.get_mut(*k as usize) else {
                        continue;
                    };
                    match list.last_mut() {
                        Some(w) if from <= w.1 && w.0 <= to => {
                            w.0 = w.0.min(from);
                            w.1 = w.1.max(to);
                        }
                        _ => list.push((from, to)),
                    }
                } else if bounded(b, s, e) {
                    cands.push((pi, s, e));
                }
            }
        });
        // In pattern order, as candidates have always come.
        windows.sort_unstable_by_key(|w| w.0);
        for (pi, list) in windows.iter_mut() {
            let pi = *pi;
            merge_windows(list);
            let p = &self.patterns[pi];
            if let Some(re) = &p.regex {
                for &(from, to) in list.iter() {
                    regex_values(re, p.value_group, b, from, to, |s, e| {
                        cands.push((pi, s, e))
                    });
                }
            }
        }
        if !header_hits.is_empty() {
            self.table_candidates(b, &header_hits, cands);
        }
    }

    /// Keywords in a table's header: each cell of that column is presented with its header
    /// ("<header>: <cell>", in one reused buffer) to the keyword's pattern, and a value found
    /// in the cell part is a candidate at the cell's place in the text. A text without tables
    /// stops at the cheap local test.
    fn table_candidates(
        &self,
        b: &[u8],
        hits: &[(usize, usize, usize)],
        cands: &mut Candidates<'_>,
    ) {
        let tables = cands.tables;
        let mut done: HashSet<(usize, usize, usize, usize)> = HashSet::new();
        let mut buf: Vec<u8> = Vec::new();
        // The end of the last line found not to be a header line: keywords before it are
        // skipped (hits come in text order, many on the same line).
        let mut plain_until = 0;
        for &(pi, s, e) in hits {
            if s < plain_until {
                continue;
            }
            match Tables::header_check(b, s, e) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(end) => {
                    plain_until = end;
                    continue;
                }
            }
            let Some(cell) = tables.header_cell_at(b, s, e) else {
                continue;
            };
            let (hs, he) = cell.span;
            let (block, region, col) = cell.key();
            if done.len() >= MAX_HEADER_COLUMNS || !done.insert((block, region, col, pi)) {
                continue;
            }
            let p = &self.patterns[pi];
            let (Some(re), Some(header)) = (&p.regex, b.get(hs..he)) else {
                continue;
            };
            Tables::column_cells(b, &cell, |cs, ce| {
                let Some(cell) = b.get(cs..ce).filter(|c| c.len() <= MAX_TABLE_CELL) else {
                    return;
                };
                buf.clear();
                buf.extend_from_slice(header);
                buf.extend_from_slice(b": ");
                let at = buf.len();
                buf.extend_from_slice(cell);
                regex_values(re, p.value_group, &buf, 0, buf.len(), |vs, ve| {
                    if vs >= at {
                        cands.push((pi, cs + vs - at, cs + ve - at));
                    }
                });
            });
        }
    }

    fn number_candidates(&self, b: &[u8], cands: &mut Candidates<'_>) {
        let Some(set) = &self.number_set else {
            return;
        };
        let mut which: Option<PatternSet> = None;
        let mut eligible: Vec<usize> = Vec::new();
        numbers::for_each_group(b, self.number_min_digits, |gs, ge, digits, letters| {
            eligible.clear();
            for (k, &pi) in self.number_patterns.iter().enumerate() {
                let p = &self.patterns[pi];
                if digits >= p.min_digits && letters >= p.min_letters {
                    eligible.push(k);
                }
            }
            // One or two candidates: run them; more: let the set say which may match.
            if eligible.len() > 2 {
                let which = which.get_or_insert_with(|| PatternSet::new(set.pattern_len()));
                which.clear();
                set.which_overlapping_matches(&Input::new(b).range(gs..ge), which);
                eligible.retain(|&k| which.contains(regex_automata::PatternID::new_unchecked(k)));
            }
            for &k in &eligible {
                let Some(&pi) = self.number_patterns.get(k) else {
                    continue;
                };
                let p = &self.patterns[pi];
                if let Some(re) = &p.regex {
                    regex_values(re, p.value_group, b, gs, ge, |s, e| cands.push((pi, s, e)));
                }
            }
        });
    }

    /// Validators, exclusions, context: a chunk of candidates → accepted values in `out`
    /// (pattern, start, end, confidence). `accepted` counts them per pattern; false when a
    /// pattern reached [`MAX_MATCHES_PER_PATTERN`] and values were left out.
    fn evaluate(
        &self,
        text: &str,
        cands: &mut Vec<(usize, usize, usize)>,
        out: &mut Vec<(usize, usize, usize, Confidence)>,
        accepted: &mut [usize],
        tables: &Tables,
    ) -> bool {
        let b = text.as_bytes();
        cands.sort_unstable();
        cands.dedup();
        let mut complete = true;
        let mut spans = Vec::new();
        for (pi, s, e) in cands.drain(..) {
            let p = &self.patterns[pi];
            if p.trigger == Trigger::Number && is_fragment(b, s, e) {
                continue;
            }
            spans.clear();
            match p.validator {
                Some(v) => v.apply(b, s, e, &mut spans),
                None => spans.push((s, e)),
            }
            for &(s, e) in &spans {
                let Some((s, e)) = char_span(text, s, e) else {
                    continue;
                };
                if let Some(ex) = &p.exclude
                    && ex.is_match(Input::new(&b[s..e]))
                {
                    continue;
                }
                let Some(confidence) = self.judge(p, b, s, e, tables) else {
                    continue;
                };
                if accepted[pi] >= MAX_MATCHES_PER_PATTERN {
                    complete = false;
                    continue;
                }
                accepted[pi] += 1;
                out.push((pi, s, e, confidence));
            }
        }
        complete
    }

    /// The confidence of a value that passed its validator, from its labels, or None when a
    /// negative word is nearer than any label, or a required label is missing.
    ///
    /// For number and text patterns the context words are the value's labels and follow the
    /// rules of `context.rs` (reach across the sentence, falling confidence, nearest wins). A
    /// keyword pattern's label is its keyword, inside its regex; its context words describe the
    /// topic ("bank", "username") and count anywhere within `window` bytes.
    ///
    /// A table header above the value (`header_says`) labels it as if written next to it, when
    /// no label is within `window`; a negative word in the header drops it.
    fn judge(
        &self,
        p: &Pattern,
        b: &[u8],
        s: usize,
        e: usize,
        tables: &Tables,
    ) -> Option<Confidence> {
        // Labels only matter when they are required or raise the confidence.
        let wants = p.require_context || p.context_confidence != p.confidence;
        let labels = p.trigger != Trigger::Keyword;
        let find = |c: &KeywordScanner, limit: usize, before_only: bool| {
            if labels {
                context::nearest_label(c, b, s, e, limit, before_only)
            } else {
                context::nearest_word(c, b, s, e, limit)
            }
        };
        let reach = if labels {
            context::FAR.max(p.window)
        } else {
            p.window
        };
        let label = match (&p.context, wants) {
            (Some(c), true) => find(c, reach, false),
            _ => None,
        };
        if let Some(neg) = &p.negative
            && let Some(dn) = context::nearest_word(neg, b, s, e, p.negative_window)
        {
            // Nearest wins: a label before the value and nearer than the negative word keeps
            // it ("card 5425 2334 3010 9903, invoice to follow").
            // A keyword pattern's context words are not labels: the negative word decides.
            let positive = match &p.context {
                Some(c) if labels => find(c, dn, true),
                _ => None,
            };
            if positive.is_none_or(|dp| dp >= dn) {
                return None;
            }
        }
        let near = label.is_some_and(|d| d <= p.window);
        match self.header_says(p, b, s, e, near, tables) {
            HeaderSays::Drop => return None,
            HeaderSays::Label => return Some(p.context_confidence),
            HeaderSays::Nothing => {}
        }
        match label {
            None if p.require_context => None,
            None => Some(p.confidence),
            Some(d) if !labels => (d <= p.window).then_some(p.context_confidence),
            // With a required label, the pattern's confidence is the label's; otherwise a far
            // label never lowers the confidence the value has on its own.
            Some(d) if p.require_context => {
                Some(context::graded(p.context_confidence, d, p.window))
            }
            Some(d) => Some(context::graded(p.context_confidence, d, p.window).max(p.confidence)),
        }
    }

    /// What the header of a value's table column says (see `tables.rs`). When no context
    /// word is near, a context word in the header cell labels the value (for a keyword
    /// pattern, whose own label is the header, in the header line: "Routing" next to
    /// "Account"); a negative word in the header cell drops it unless a context word is near.
    /// Tables are built only when a value needs them and its line may be a table row.
    fn header_says(
        &self,
        p: &Pattern,
        b: &[u8],
        s: usize,
        e: usize,
        near_context: bool,
        tables: &Tables,
    ) -> HeaderSays {
        let wants_context = (p.require_context || p.context_confidence != p.confidence)
            && p.context.is_some()
            && !near_context;
        let negative = p.negative.as_ref().filter(|_| !near_context);
        if (!wants_context && negative.is_none()) || !Tables::may_be_row(b, s) {
            return HeaderSays::Nothing;
        }
        let t = tables;
        let Some((hs, he)) = t.header(b, s, e) else {
            return HeaderSays::Nothing;
        };
        let has = |set: &KeywordScanner, (from, to): (usize, usize)| {
            let mut found = false;
            if let Some(hay) = b.get(from..to) {
                set.scan(hay, |_, ms, me| found |= bounded(b, from + ms, from + me));
            }
            found
        };
        if negative.is_some_and(|n| has(n, (hs, he))) {
            return HeaderSays::Drop;
        }
        let labels = if p.trigger == Trigger::Keyword {
            t.header_line(b, s).unwrap_or((hs, he))
        } else {
            (hs, he)
        };
        match &p.context {
            Some(c) if wants_context && has(c, labels) => HeaderSays::Label,
            _ => HeaderSays::Nothing,
        }
    }

    /// Counts, one match per kind and span: accepted values → matches.
    fn finish(&self, text: &str, mut out: Vec<(usize, usize, usize, Confidence)>) -> Vec<Match> {
        // Patterns that only count in numbers (credential lists): enough different values?
        for &pi in &self.counted_patterns {
            let min = self.patterns[pi].min_count;
            let keys: HashSet<String> = out
                .iter()
                .filter(|m| m.0 == pi)
                .map(|m| {
                    text.get(m.1..m.2)
                        .unwrap_or("")
                        .chars()
                        .filter(|c| c.is_alphanumeric())
                        .collect()
                })
                .collect();
            if keys.len() < min {
                out.retain(|m| m.0 != pi);
            }
        }
        // One match per kind and span: the most confident (this also drops a value checked in
        // two chunks).
        let kind = |pi: usize| self.patterns[pi].kind.as_str();
        out.sort_by(|a, b| {
            (a.1, a.2, kind(a.0))
                .cmp(&(b.1, b.2, kind(b.0)))
                .then(b.3.cmp(&a.3))
        });
        out.dedup_by(|later, first| {
            later.1 == first.1 && later.2 == first.2 && kind(later.0) == kind(first.0)
        });
        out.into_iter()
            .map(|(pi, start, end, confidence)| {
                let p = &self.patterns[pi];
                Match {
                    kind: p.kind.clone(),
                    pattern: p.name.clone(),
                    confidence,
                    secret: p.secret,
                    start,
                    end,
                }
            })
            .collect()
    }
}

/// What a table header says about a value below it.
enum HeaderSays {
    Nothing,
    /// A context word: the value is labelled.
    Label,
    /// A negative word: the value is not of this kind.
    Drop,
}

/// What [`Detector::find_all`] found in one text.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub matches: Vec<Match>,
    /// A per-pattern limit ([`MAX_CANDIDATES_PER_PATTERN`], [`MAX_MATCHES_PER_PATTERN`]) cut
    /// the work: values of that pattern beyond it were not checked. The text is not known to be
    /// clean, and the caller must say so.
    pub truncated: bool,
    /// Phrases of content rules found (scored by the policy, never reported as kinds).
    pub signals: Vec<SignalHit>,
    /// Links to file-sharing and paste services.
    pub links: Vec<LinkHit>,
}

/// Candidates of one text, checked a chunk at a time as they come.
struct Candidates<'a> {
    detector: &'a Detector,
    text: &'a str,
    /// The text's tables, built when a candidate first needs them.
    tables: &'a Tables,
    buf: Vec<(usize, usize, usize)>,
    /// Per pattern: candidates taken, values accepted.
    taken: Vec<usize>,
    accepted: Vec<usize>,
    /// How many patterns there are (the length of `taken` and `accepted` once in use).
    patterns: usize,
    out: Vec<(usize, usize, usize, Confidence)>,
    truncated: bool,
}

impl<'a> Candidates<'a> {
    fn new(detector: &'a Detector, text: &'a str, tables: &'a Tables) -> Self {
        let n = detector.patterns.len();
        Candidates {
            detector,
            text,
            tables,
            buf: Vec::new(),
            // Sized at the first candidate: most texts have none.
            taken: Vec::new(),
            accepted: Vec::new(),
            patterns: n,
            out: Vec::new(),
            truncated: false,
        }
    }

    fn push(&mut self, c: (usize, usize, usize)) {
        if self.taken.is_empty() {
            self.taken.resize(self.patterns, 0);
            self.accepted.resize(self.patterns, 0);
        }
        let Some(taken) = self.taken.get_mut(c.0) else {
            return;
        };
        if *taken >= MAX_CANDIDATES_PER_PATTERN {
            self.truncated = true;
            return;
        }
        *taken += 1;
        self.buf.push(c);
        if self.buf.len() >= CANDIDATE_CHUNK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let complete = self.detector.evaluate(
            self.text,
            &mut self.buf,
            &mut self.out,
            &mut self.accepted,
            self.tables,
        );
        self.truncated |= !complete;
    }
}

/// Sort one pattern's (from, to) windows and merge the overlapping ones, in place. The list
/// comes nearly in order (a keyword's window may start before the previous one's when the
/// keyword is longer), which the stable sort handles in about one pass.
fn merge_windows(windows: &mut Vec<(usize, usize)>) {
    windows.sort();
    let mut out = 0;
    for i in 0..windows.len() {
        let w = windows[i];
        if out > 0 {
            let last = &mut windows[out - 1];
            if w.0 <= last.1 {
                last.1 = last.1.max(w.1);
                continue;
            }
        }
        windows[out] = w;
        out += 1;
    }
    windows.truncate(out);
}

/// Run `re` over `b[from..to]` (look-around sees the bytes outside) and report the span of each
/// match's `value` group (or the whole match).
fn regex_values(
    re: &Regex,
    value_group: Option<usize>,
    b: &[u8],
    from: usize,
    to: usize,
    mut f: impl FnMut(usize, usize),
) {
    let to = to.min(b.len());
    if from >= to {
        return;
    }
    let mut input = Input::new(b).range(from..to);
    // Without a `value` group the match itself is the value: no capture engine needed.
    let mut caps: Option<Captures> = value_group.map(|_| re.create_captures());
    loop {
        let (m, span) = match (&mut caps, value_group) {
            (Some(caps), Some(g)) => {
                re.search_captures(&input, caps);
                let Some(m) = caps.get_match() else {
                    break;
                };
                (m, caps.get_group(g))
            }
            _ => {
                let Some(m) = re.search(&input) else {
                    break;
                };
                (m, Some(m.span()))
            }
        };
        if let Some(sp) = span
            && sp.end > sp.start
        {
            f(sp.start, sp.end);
        }
        let next = if m.end() > m.start() {
            m.end()
        } else {
            m.end() + 1
        };
        if next >= to {
            break;
        }
        input.set_start(next);
    }
}

/// Is `b[s..e]` a whole word at both ends (for dictionary keywords)?
fn bounded(b: &[u8], s: usize, e: usize) -> bool {
    let alnum = |i: Option<&u8>| i.is_some_and(u8::is_ascii_alphanumeric);
    let first_word = alnum(b.get(s));
    let last_word = alnum(e.checked_sub(1).and_then(|i| b.get(i)));
    let before = s.checked_sub(1).and_then(|i| b.get(i));
    let glued_before = first_word && alnum(before);
    let glued_after = last_word && alnum(b.get(e));
    !(glued_before || glued_after)
}

/// A number that is a piece of a longer dashed/dotted/slashed token ("1-123-45-6789-2",
/// "/path/4111111111111111") is not a value on its own.
/// Could the keyword at `b[s..e]` be in a column header? It is a label, starting with a letter
/// and not a URL's start ("http://" opens the URL-password pattern's window, not a column),
/// and it starts
/// a word: a keyword inside a word ("tin" in "voting") labels no column, and such hits are
/// common in prose. (It may end inside one: "pass" is a password pattern's keyword in
/// "Password".)
fn header_word(b: &[u8], s: usize, e: usize) -> bool {
    let alnum = |i: usize| b.get(i).is_some_and(u8::is_ascii_alphanumeric);
    let word = b.get(s..e).unwrap_or(&[]);
    !s.checked_sub(1).is_some_and(alnum)
        && word.first().is_some_and(u8::is_ascii_alphabetic)
        && word.last() != Some(&b'/')
}

/// Does `b[s]` continue a word (an alphanumeric byte before it), other than as a capital after
/// a small letter ("empSSN")?
fn inside_word(b: &[u8], s: usize) -> bool {
    let Some(&prev) = s.checked_sub(1).and_then(|i| b.get(i)) else {
        return false;
    };
    let cur = b.get(s).copied().unwrap_or(b' ');
    prev.is_ascii_alphanumeric() && !(cur.is_ascii_uppercase() && prev.is_ascii_lowercase())
}

/// Does the address whose scheme ends at `e` (`https://`) have a user-info part: an `@` within
/// `reach` bytes, before any `/`, space, quote or `<>`? The URL-password regexes need one, and
/// nearly every address in mail has none, so most hits open no search window.
fn has_userinfo(b: &[u8], e: usize, reach: usize) -> bool {
    let rest = b.get(e..).unwrap_or(&[]);
    let rest = &rest[..rest.len().min(reach)];
    rest.iter()
        .find(|c| matches!(c, b'@' | b'/' | b'"' | b'\'' | b'<' | b'>') || c.is_ascii_whitespace())
        == Some(&b'@')
}

fn is_fragment(b: &[u8], s: usize, e: usize) -> bool {
    let joiner = |c: Option<&u8>| matches!(c, Some(b'-' | b'.' | b'/' | b'_'));
    let alnum = |c: Option<&u8>| c.is_some_and(u8::is_ascii_alphanumeric);
    (s >= 2 && joiner(b.get(s - 1)) && alnum(b.get(s - 2)))
        || (joiner(b.get(e)) && alnum(b.get(e + 1)))
        || (s >= 1 && b.get(s - 1) == Some(&b'_'))
}

/// The span moved inside char boundaries, or None if nothing is left.
fn char_span(text: &str, mut s: usize, mut e: usize) -> Option<(usize, usize)> {
    e = e.min(text.len());
    while s < e && !text.is_char_boundary(s) {
        s += 1;
    }
    while e > s && !text.is_char_boundary(e) {
        e -= 1;
    }
    (e > s).then_some((s, e))
}

/// Characters dropped by [`normalize`], as inclusive ranges: Unicode's
/// Default_Ignorable_Code_Point set (Unicode 16), the characters a reader does not see and NFKC
/// keeps: soft hyphen, combining grapheme joiner, Arabic letter mark, Hangul fillers, Khmer
/// inherent vowels, Mongolian variation selectors and vowel separator, zero-width space and
/// joiners, left-to-right and right-to-left marks, bidirectional embeddings and isolates, word
/// joiner and invisible operators, variation selectors, BOM, shorthand format controls, musical
/// beam controls, tag characters and the variation selectors supplement (U+E0000–E0FFF). Also
/// the combining enclosing marks (U+20DD–20E4: keycap `5️⃣`, circle, square), which frame a
/// digit a reader still reads as the digit.
const INVISIBLE: [(u32, u32); 18] = [
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x20DD, 0x20E4),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
];

/// Dashes that word processors put in place of a hyphen (`123–45–6789`), made `-`.
const DASHES: [(u32, u32); 4] = [
    (0x2010, 0x2015),
    (0x2212, 0x2212),
    (0xFE58, 0xFE58),
    (0xFE63, 0xFE63),
];

/// The digit zero of every block of decimal digits outside ASCII (general category Nd, Unicode
/// 16), in ascending order. Unicode puts each block's ten digits in a row, zero first, so a
/// digit's value is its distance from the zero before it. NFKC already maps the full-width and
/// mathematical ones (U+FF10, U+1D7CE…); the others (Arabic-Indic, Devanagari, Bengali, Thai…)
/// it keeps.
const DIGIT_ZEROS: [u32; 75] = [
    0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6,
    0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50,
    0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x10D40, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0,
    0x11650, 0x116C0, 0x116D0, 0x116DA, 0x11730, 0x118E0, 0x11950, 0x11BF0, 0x11C50, 0x11D50,
    0x11DA0, 0x11F50, 0x16130, 0x16A60, 0x16AC0, 0x16B50, 0x16D70, 0x1CCF0, 0x1D7CE, 0x1D7D8,
    0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E4F0, 0x1E5F1, 0x1E950, 0x1FBF0,
];

/// Dingbat circled digits that NFKC keeps (❶, ➀, ➊, ⓵): the digit one of each run of nine.
const DINGBAT_ONES: [u32; 4] = [0x24F5, 0x2776, 0x2780, 0x278A];
/// Their zeros (⓿, 🄋, 🄌).
const DINGBAT_ZEROS: [u32; 3] = [0x24FF, 0x1F10B, 0x1F10C];

/// Code points below this are looked up in [`REPLACED`]; above, the lists are searched.
const TABLE_END: u32 = 0x20000;

/// One bit per code point of planes 0 and 1 (16 KiB): is it in [`INVISIBLE`] or [`DASHES`], or
/// a decimal digit of [`DIGIT_ZEROS`]? So the pass over every non-ASCII character that decides
/// whether a text needs a copy costs one lookup per character, whatever the script.
static REPLACED: [u64; (TABLE_END / 64) as usize] = {
    const fn mark(t: &mut [u64; (TABLE_END / 64) as usize], from: u32, to: u32) {
        let mut cp = from;
        while cp <= to && cp < TABLE_END {
            t[(cp / 64) as usize] |= 1 << (cp % 64);
            cp += 1;
        }
    }
    let mut t = [0u64; (TABLE_END / 64) as usize];
    let mut i = 0;
    while i < INVISIBLE.len() {
        mark(&mut t, INVISIBLE[i].0, INVISIBLE[i].1);
        i += 1;
    }
    let mut i = 0;
    while i < DASHES.len() {
        mark(&mut t, DASHES[i].0, DASHES[i].1);
        i += 1;
    }
    let mut i = 0;
    while i < DIGIT_ZEROS.len() {
        mark(&mut t, DIGIT_ZEROS[i], DIGIT_ZEROS[i] + 9);
        i += 1;
    }
    let mut i = 0;
    while i < DINGBAT_ONES.len() {
        mark(&mut t, DINGBAT_ONES[i], DINGBAT_ONES[i] + 8);
        i += 1;
    }
    let mut i = 0;
    while i < DINGBAT_ZEROS.len() {
        mark(&mut t, DINGBAT_ZEROS[i], DINGBAT_ZEROS[i]);
        i += 1;
    }
    t
};

/// Could [`normalize`] drop or replace `c` (besides NFKC)? Exact below [`TABLE_END`] (one
/// comparison for Latin-1, one lookup for the rest); above it, true means "look in the lists".
#[inline]
fn maybe_replaced(c: char) -> bool {
    let cp = u32::from(c);
    if cp < 0x300 {
        return cp == 0xAD;
    }
    cp >= TABLE_END
        || REPLACED
            .get((cp / 64) as usize)
            .is_some_and(|w| w & (1 << (cp % 64)) != 0)
}

/// Is `c` in one of `ranges` (sorted, not overlapping)?
fn in_ranges(ranges: &[(u32, u32)], c: char) -> bool {
    let cp = u32::from(c);
    ranges
        .iter()
        .take_while(|r| r.0 <= cp)
        .any(|&(_, b)| cp <= b)
}

/// A character dropped by [`normalize`] (see [`INVISIBLE`]).
fn is_invisible(c: char) -> bool {
    maybe_replaced(c) && in_ranges(&INVISIBLE, c)
}

/// A dash made `-` by [`normalize`].
fn is_dash(c: char) -> bool {
    maybe_replaced(c) && in_ranges(&DASHES, c)
}

/// The ASCII digit of a non-ASCII decimal digit (`٥` → `5`, `५` → `5`) or of a dingbat
/// circled digit (`❺` → `5`), or None.
fn ascii_digit(c: char) -> Option<char> {
    if !maybe_replaced(c) {
        return None;
    }
    let cp = u32::from(c);
    if let Some(one) = DINGBAT_ONES
        .iter()
        .find(|&&one| (one..one + 9).contains(&cp))
    {
        return char::from_digit(cp - one + 1, 10);
    }
    if DINGBAT_ZEROS.contains(&cp) {
        return Some('0');
    }
    let i = DIGIT_ZEROS.partition_point(|&z| z <= cp).checked_sub(1)?;
    char::from_digit(cp - DIGIT_ZEROS.get(i)?, 10)
}

/// Does [`normalize`] drop or replace `c` (besides NFKC)?
#[inline]
fn is_replaced(c: char) -> bool {
    maybe_replaced(c)
        && (u32::from(c) < TABLE_END
            || in_ranges(&INVISIBLE, c)
            || in_ranges(&DASHES, c)
            || ascii_digit(c).is_some())
}

/// One character after NFKC: typographic dashes made `-`, decimal digits of any script made
/// ASCII.
fn replace(c: char) -> char {
    if !maybe_replaced(c) {
        c
    } else if is_dash(c) {
        '-'
    } else {
        ascii_digit(c).unwrap_or(c)
    }
}

/// Unicode NFKC (full-width digits become ASCII), invisible characters (see [`INVISIBLE`])
/// removed, typographic dashes made `-`, decimal digits of every script made ASCII (`٥٣٦` →
/// `536`). ASCII text, and text that is already in that form, is returned as it is, without a
/// copy.
///
/// Only the non-ASCII stretches (with the ASCII character before each, which a combining mark
/// may attach to) go through the normaliser; ASCII between them is copied as it is. That gives
/// the same result as normalising the whole text, because no character composes with a
/// following ASCII character, and it is many times faster on mail that is mostly ASCII with an
/// occasional no-break space. Whether a stretch needs work is seen in one pass: the NFKC quick
/// check reads every character (unless it finds one that is not normalised), and the same pass
/// looks for characters to drop or replace.
pub fn normalize(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        return Cow::Borrowed(text);
    }
    let needs_work = non_ascii_stretches(text).any(|(s, e)| {
        let part = text.get(s..e).unwrap_or("");
        let mut replaced = false;
        let quick = is_nfkc_quick(part.chars().inspect(|&c| replaced |= is_replaced(c)));
        replaced || quick != IsNormalized::Yes
    });
    if !needs_work {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (s, e) in non_ascii_stretches(text) {
        out.push_str(text.get(copied..s).unwrap_or(""));
        let part = text.get(s..e).unwrap_or("");
        out.extend(
            part.chars()
                .filter(|&c| !is_invisible(c))
                .nfkc()
                .map(replace),
        );
        copied = e;
    }
    out.push_str(text.get(copied..).unwrap_or(""));
    Cow::Owned(out)
}

/// Byte ranges of the non-ASCII runs of `text`, each extended back over one ASCII character.
fn non_ascii_stretches(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let b = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        let j = i + b.get(i..)?.iter().position(|&c| c >= 0x80)?;
        let start = if j > i { j - 1 } else { j };
        let end = j + b
            .get(j..)
            .and_then(|r| r.iter().position(|&c| c < 0x80))
            .unwrap_or(b.len() - j);
        i = end;
        Some((start, end))
    })
}

//! Pattern files: the TOML format (see `patterns/README.md`), reading it, and errors that name
//! the file and line of the problem.

use super::PatternError;
use super::validate::Validator;
use crate::model::Confidence;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The built-in pattern files, compiled into the binary so it works from any directory.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "patterns/government_ids.toml",
        include_str!("../../patterns/government_ids.toml"),
    ),
    (
        "patterns/drivers_licenses.toml",
        include_str!("../../patterns/drivers_licenses.toml"),
    ),
    (
        "patterns/financial.toml",
        include_str!("../../patterns/financial.toml"),
    ),
    (
        "patterns/health.toml",
        include_str!("../../patterns/health.toml"),
    ),
    (
        "patterns/credentials.toml",
        include_str!("../../patterns/credentials.toml"),
    ),
    (
        "patterns/tokens.toml",
        include_str!("../../patterns/tokens.toml"),
    ),
    (
        "patterns/legal.toml",
        include_str!("../../patterns/legal.toml"),
    ),
    (
        "patterns/chain_letter.toml",
        include_str!("../../patterns/chain_letter.toml"),
    ),
    (
        "patterns/mass_solicitation.toml",
        include_str!("../../patterns/mass_solicitation.toml"),
    ),
    (
        "patterns/file_sharing.toml",
        include_str!("../../patterns/file_sharing.toml"),
    ),
];

/// The content rules that `[[phrase]]` tables score for (policy rule names).
pub const PHRASE_RULES: &[&str] = &["chain_letter", "mass_solicitation"];

/// How a pattern finds its candidates: the cheap step that decides where its regex runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// Near a keyword (one shared automaton finds all keywords of all patterns in one pass).
    Keyword,
    /// On runs of digits (with letters and single separators attached): numbers, IDs.
    Number,
    /// Over the whole text. Fine for a regex that starts with a literal; slow otherwise.
    Text,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    #[serde(default)]
    pub pattern: Vec<Spanned<PatternSpec>>,
    /// Weighted phrases of the content rules (`chain_letter`, `mass_solicitation`).
    #[serde(default)]
    pub phrase: Vec<Spanned<PhraseSpec>>,
    /// File-sharing and paste services (`unapproved_file_share`).
    #[serde(default)]
    pub service: Vec<Spanned<ServiceSpec>>,
}

/// One `[[phrase]]` table: evidence for a content rule, worth `weight` points per message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhraseSpec {
    pub name: Spanned<String>,
    /// The rule it scores for: one of [`PHRASE_RULES`].
    pub rule: Spanned<String>,
    /// Literal phrases (ASCII case-insensitive, whole words). Without a `regex` every
    /// occurrence counts; with one, the regex must match near them.
    pub keywords: Vec<Spanned<String>>,
    #[serde(default)]
    pub regex: Option<Spanned<String>>,
    #[serde(default)]
    pub search_before: Option<usize>,
    #[serde(default)]
    pub search_after: Option<usize>,
    /// Points when found (negative: evidence against, such as the City's own drive).
    pub weight: i32,
    /// Points instead of `weight` when a `context` word is within `window` bytes.
    #[serde(default)]
    pub context_weight: Option<i32>,
    #[serde(default)]
    pub context: Vec<String>,
    #[serde(default)]
    pub require_context: bool,
    #[serde(default)]
    pub window: Option<usize>,
    #[serde(default)]
    pub negative_context: Vec<String>,
    #[serde(default)]
    pub negative_window: Option<usize>,
    /// Occurrences that count in one message (default 1: a phrase is evidence once).
    #[serde(default)]
    pub max_count: Option<usize>,
}

/// One `[[service]]` table: a file-sharing or paste service, by its domains and the shapes of
/// its sharing links.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: Spanned<String>,
    /// Shown in reasons and reports ("Dropbox").
    #[serde(default)]
    pub display: Option<String>,
    /// Host names; their sub-domains are included (`sharepoint.com` takes in every tenant).
    pub domains: Vec<Spanned<String>>,
    /// Regexes over the link's path and query (from the `/` after the host). A link whose path
    /// matches none is not a shared file (a home page, a help article). Empty: any path other
    /// than `/`.
    #[serde(default)]
    pub paths: Vec<Spanned<String>>,
}

/// One `[[pattern]]` table, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternSpec {
    pub name: Spanned<String>,
    pub kind: Spanned<String>,
    #[serde(default)]
    pub trigger: Option<Trigger>,
    #[serde(default)]
    pub regex: Option<Spanned<String>>,
    #[serde(default)]
    pub keywords: Vec<Spanned<String>>,
    #[serde(default)]
    pub case_sensitive: bool,
    #[serde(default)]
    pub min_digits: Option<usize>,
    #[serde(default)]
    pub search_before: Option<usize>,
    #[serde(default)]
    pub search_after: Option<usize>,
    #[serde(default)]
    pub validator: Option<Validator>,
    #[serde(default)]
    pub context: Vec<String>,
    #[serde(default)]
    pub window: Option<usize>,
    #[serde(default)]
    pub negative_context: Vec<String>,
    #[serde(default)]
    pub negative_window: Option<usize>,
    pub confidence: Confidence,
    #[serde(default)]
    pub context_confidence: Option<Confidence>,
    #[serde(default)]
    pub require_context: bool,
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    #[serde(default)]
    pub min_count: Option<usize>,
    /// The value is a secret that works in part (a password inside a URL or a connection
    /// string): masked samples show no character of it.
    #[serde(default)]
    pub secret: bool,
    /// Keyword trigger, for keywords that start a web address (`https://`): a hit opens the
    /// search only when an `@` follows it within `search_after` bytes, before any `/`, space,
    /// quote or `<>`, that is when the address has a user-info part (`user:pass@host`).
    #[serde(default)]
    pub userinfo: bool,
}

/// A parsed file with what is needed to point at lines in it.
pub struct Loaded {
    pub file: String,
    pub source: String,
    pub spec: FileSpec,
}

impl Loaded {
    /// An error at byte offset `at` of this file.
    pub fn error(&self, at: usize, message: impl Into<String>) -> PatternError {
        PatternError {
            file: self.file.clone(),
            line: line_of(&self.source, at),
            message: message.into(),
        }
    }
}

/// 1-based line of byte offset `at`.
pub fn line_of(source: &str, at: usize) -> usize {
    let at = at.min(source.len());
    source
        .as_bytes()
        .get(..at)
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
        + 1
}

/// Parse one pattern file.
pub fn parse(file: &str, source: String) -> Result<Loaded, PatternError> {
    match toml::from_str::<FileSpec>(&source) {
        Ok(spec) => Ok(Loaded {
            file: file.to_string(),
            source,
            spec,
        }),
        Err(e) => Err(PatternError {
            file: file.to_string(),
            line: e.span().map_or(1, |s| line_of(&source, s.start)),
            message: e.message().trim().to_string(),
        }),
    }
}

/// The built-in files and then every `*.toml` (any case) of each extra directory (sorted by
/// name, so the order and thus duplicate-name errors are stable). A directory without one is
/// an error.
pub fn load_all(extra_dirs: &[PathBuf]) -> Result<Vec<Loaded>, PatternError> {
    let mut out = Vec::new();
    for (name, src) in BUILTIN {
        out.push(parse(name, (*src).to_string())?);
    }
    for dir in extra_dirs {
        for path in toml_files(dir)? {
            let file = path.display().to_string();
            let source = std::fs::read_to_string(&path).map_err(|e| PatternError {
                file: file.clone(),
                line: 0,
                message: format!("cannot read: {e}"),
            })?;
            out.push(parse(&file, source)?);
        }
    }
    Ok(out)
}

fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, PatternError> {
    let err = |e: std::io::Error| PatternError {
        file: dir.display().to_string(),
        line: 0,
        message: format!("cannot read pattern directory: {e}"),
    };
    let mut files = Vec::new();
    let mut others = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let path = entry.map_err(err)?.path();
        // `.toml` in any case: a file named CITY.TOML is loaded, not silently left out.
        let toml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        if toml && path.is_file() {
            files.push(path);
        } else if let Some(name) = path.file_name() {
            others.push(name.to_string_lossy().into_owned());
        }
    }
    // A directory without a pattern file is a mistake (a wrong path, files not copied yet):
    // starting without the City's own patterns would be silent.
    if files.is_empty() {
        others.sort();
        let found = if others.is_empty() {
            "it is empty".to_string()
        } else {
            let shown: Vec<&str> = others.iter().take(5).map(String::as_str).collect();
            let more = if others.len() > 5 { ", ..." } else { "" };
            format!("it holds {}{more}", shown.join(", "))
        };
        return Err(PatternError {
            file: dir.display().to_string(),
            line: 0,
            message: format!(
                "no pattern file (*.toml) in this pattern directory ({found}); \
                 check the --patterns path"
            ),
        });
    }
    files.sort();
    Ok(files)
}

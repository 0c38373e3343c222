//! Detection: normalised text → matches of sensitive kinds. (Engine being written.)

use crate::model::Confidence;
use std::borrow::Cow;
use std::path::PathBuf;

/// One match of a sensitive kind in a text, as a byte span of that (normalised) text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Kind name from `shared/policy-map.md`.
    pub kind: String,
    /// Name of the pattern that matched.
    pub pattern: String,
    pub confidence: Confidence,
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

/// The compiled recognisers.
#[derive(Debug)]
pub struct Detector {}

impl Detector {
    /// The built-in patterns (embedded from `patterns/`), plus every `*.toml` file of `extra_dirs`.
    pub fn new(_extra_dirs: &[PathBuf]) -> Result<Detector, PatternError> {
        Ok(Detector {})
    }

    /// All matches in `text`, which must have gone through [`normalize`].
    pub fn find(&self, _text: &str) -> Vec<Match> {
        Vec::new()
    }
}

/// Unicode NFKC (full-width digits become ASCII), zero-width characters and soft hyphens
/// removed. ASCII text is returned as it is, without a copy.
pub fn normalize(text: &str) -> Cow<'_, str> {
    Cow::Borrowed(text)
}

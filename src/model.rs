//! Types shared by the engine layers and its front ends.

use serde::{Deserialize, Serialize};

/// How sure a recogniser is that a match is the sensitive kind it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

impl std::str::FromStr for Confidence {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "low" => Ok(Confidence::Low),
            "medium" => Ok(Confidence::Medium),
            "high" => Ok(Confidence::High),
            other => Err(format!(
                "unknown confidence {other:?}: use one of low, medium, high"
            )),
        }
    }
}

/// One sensitive kind found in one place of a message, aggregated over its matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Kind name from `shared/policy-map.md` (`us_ssn`, `credit_card`, ...).
    pub kind: String,
    /// Highest confidence among the matches.
    pub confidence: Confidence,
    /// Number of distinct matches.
    pub count: usize,
    /// Where in the message: `subject`, `body`, `html`, `attachment:NAME`, nested with `/`.
    #[serde(rename = "where")]
    pub location: String,
    /// Up to a few samples, masked so that at most the last 4 characters are in clear.
    pub masked: Vec<String>,
}

/// A part that is encrypted, so its content cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedPart {
    #[serde(rename = "where")]
    pub location: String,
    /// What kind of encryption: `zip`, `pdf`, `office`, `pgp`, `smime`.
    pub kind: String,
}

/// A part that could not be scanned, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unscannable {
    #[serde(rename = "where")]
    pub location: String,
    pub reason: String,
}

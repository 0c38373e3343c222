//! Bounds on the work done for one message. Every one is configurable; the defaults are safe
//! for a mail server (a message that hits one is still judged on what was scanned, and the
//! part past the limit is reported `unscannable`).

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Nesting depth of containers (message/rfc822, archives, Office files) below the message.
    pub max_depth: usize,
    /// Total decoded bytes (text and container contents) per message.
    pub max_decoded_bytes: usize,
    /// Decoded bytes of any one part or archive entry.
    pub max_part_bytes: usize,
    /// Entries read from one archive.
    pub max_archive_entries: usize,
    /// Largest allowed ratio of uncompressed to compressed size for an archive entry.
    pub max_expansion_ratio: u64,
    /// Wall-clock time for one message, in milliseconds.
    pub max_scan_millis: u64,
    /// MIME parts per message.
    pub max_parts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 8,
            max_decoded_bytes: 64 * 1024 * 1024,
            max_part_bytes: 32 * 1024 * 1024,
            max_archive_entries: 2_000,
            max_expansion_ratio: 200,
            max_scan_millis: 10_000,
            max_parts: 2_000,
        }
    }
}

impl Limits {
    pub fn max_scan_time(&self) -> Duration {
        Duration::from_millis(self.max_scan_millis)
    }
}

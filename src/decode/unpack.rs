//! Reading entries out of compressed containers within the limits: the zip reader and the
//! capped decompression that [`super::archive`] (zip, gzip, tar) and [`super::office`] (OOXML,
//! ODF) share. It sits below both, so the dependency runs one way: archive → office → unpack.

use super::Ctx;
use super::bounded::{self, RATIO_FLOOR, read_bounded};
use std::io::{Cursor, Read};

/// Why reading an entry stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadStop {
    PartSize,
    Budget,
    Ratio,
    Corrupt(String),
}

impl ReadStop {
    pub fn reason(&self) -> String {
        match self {
            ReadStop::PartSize => "part size limit reached".to_string(),
            ReadStop::Budget => super::Stop::Budget.reason().to_string(),
            ReadStop::Ratio => "expansion ratio limit reached (possible archive bomb)".to_string(),
            ReadStop::Corrupt(e) => format!("corrupt data: {e}"),
        }
    }
}

/// Read a decompressing stream whose compressed size is `compressed`, within every limit. What
/// is read is capped by the message budget but not charged to it: the text taken out of it is
/// charged when it is handed to detection, once.
pub fn read_capped<R: Read>(
    ctx: &mut Ctx<'_>,
    location: &str,
    reader: R,
    compressed: u64,
) -> Result<Vec<u8>, ReadStop> {
    let limits = ctx.limits;
    let by_ratio = compressed
        .saturating_mul(limits.max_expansion_ratio)
        .max(RATIO_FLOOR as u64);
    let part = limits.max_part_bytes as u64;
    let budget = ctx.remaining_budget() as u64;
    let cap = by_ratio.min(part).min(budget);
    let mut reader = reader;
    let out = match read_bounded(
        &mut reader,
        usize::try_from(cap).unwrap_or(usize::MAX),
        None,
    ) {
        Ok(out) => out,
        Err(bounded::ReadStop::Size) => {
            return Err(if cap == by_ratio {
                ReadStop::Ratio
            } else if cap == part {
                ReadStop::PartSize
            } else {
                ReadStop::Budget
            });
        }
        Err(bounded::ReadStop::Ratio) => return Err(ReadStop::Ratio),
        Err(bounded::ReadStop::Io(e, out)) => {
            // A checksum error comes at the end, after the content: a wrong CRC must not
            // hide what was read. Scan what came out and report the part as corrupt as well.
            if out.is_empty() {
                return Err(ReadStop::Corrupt(e.to_string()));
            }
            ctx.unscannable(
                location,
                &format!(
                    "corrupt data: {e} (the {} bytes read were scanned)",
                    out.len()
                ),
            );
            out
        }
    };
    Ok(out)
}

pub type Zip<'d> = zip::ZipArchive<Cursor<&'d [u8]>>;

/// What one zip entry is, read from its central-directory record without decompressing.
pub struct EntryInfo {
    pub index: usize,
    pub name: String,
    pub encrypted: bool,
    pub is_dir: bool,
    pub compressed: u64,
}

/// The entries of a zip, up to the entry limit (`true` when more were left out).
pub fn zip_entries(ctx: &Ctx<'_>, archive: &mut Zip<'_>) -> (Vec<EntryInfo>, bool) {
    let total = archive.len();
    let n = total.min(ctx.limits.max_archive_entries);
    let mut out = Vec::with_capacity(n);
    for index in 0..n {
        if let Ok(f) = archive.by_index_raw(index) {
            out.push(EntryInfo {
                index,
                // A name that is not valid in its declared encoding is read as Latin-1
                // bytes rather than dropped: the entry is still scanned.
                name: match f.name() {
                    Ok(n) => n.to_string(),
                    Err(_) => f.name_raw().iter().map(|&b| char::from(b)).collect(),
                },
                encrypted: f.encrypted(),
                is_dir: f.is_dir(),
                compressed: f.compressed_size(),
            });
        }
    }
    (out, total > n)
}

/// Read one zip entry within the limits.
pub fn read_zip_entry(
    ctx: &mut Ctx<'_>,
    location: &str,
    archive: &mut Zip<'_>,
    entry: &EntryInfo,
) -> Result<Vec<u8>, ReadStop> {
    let file = archive
        .by_index(entry.index)
        .map_err(|e| ReadStop::Corrupt(e.to_string()))?;
    read_capped(ctx, location, file, entry.compressed)
}

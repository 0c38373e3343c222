//! Archives: zip (and the Office/OpenDocument files that are zips), gzip, tar.
//!
//! Every entry is read through [`read_capped`], so no declared size is trusted for
//! allocation: an entry is read at most up to the per-part limit, the message's remaining
//! budget, and its compressed size times the expansion ratio (zip bombs).

use super::bounded::{self, RATIO_FLOOR, read_bounded};
use super::{Ctx, office};
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
                name: f.name().to_string(),
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

/// A zip archive: Office Open XML and OpenDocument files go to [`office`], anything else has
/// its entries decoded one by one.
pub fn zip(ctx: &mut Ctx<'_>, location: &str, data: &[u8], depth: usize) {
    // The zip crate reads the whole central directory into memory (a few hundred bytes per
    // entry) before the entry limit can apply: refuse directories far beyond the limit.
    let most = ctx.limits.max_archive_entries.saturating_mul(8).max(10_000) as u64;
    if zip_entry_count(data).is_some_and(|n| n > most) {
        ctx.unscannable(location, "archive entry limit reached");
        return;
    }
    let mut archive = match zip::ZipArchive::new(Cursor::new(data)) {
        Ok(a) => a,
        Err(e) => {
            ctx.unscannable(location, &format!("corrupt zip: {e}"));
            return;
        }
    };
    let (entries, truncated) = zip_entries(ctx, &mut archive);
    if office::is_ooxml(&entries) {
        office::ooxml(ctx, location, &mut archive, &entries, depth);
        return;
    }
    if office::is_odf(&entries) {
        office::odf(ctx, location, &mut archive, &entries, depth);
        return;
    }
    // The expansion ratio applies to the archive as a whole too: many small, very compressible
    // entries (each under the 1 MiB floor of the per-entry check) are a bomb all the same.
    let (mut total_out, mut total_in) = (0u64, 0u64);
    for entry in &entries {
        if entry.is_dir {
            continue;
        }
        if total_out > RATIO_FLOOR as u64
            && total_out > total_in.saturating_mul(ctx.limits.max_expansion_ratio)
        {
            ctx.unscannable(
                location,
                "expansion ratio limit reached across its entries (possible archive bomb); the rest was not read",
            );
            return;
        }
        let entry_location = format!("{location}/{}", entry.name);
        ctx.emit_name(&entry_location, &entry.name);
        if entry.encrypted {
            ctx.encrypted(&entry_location, "zip");
            continue;
        }
        if let Err(stop) = ctx.check_time() {
            ctx.unscannable(&entry_location, stop.reason());
            return;
        }
        total_in += entry.compressed.max(1);
        match read_zip_entry(ctx, &entry_location, &mut archive, entry) {
            Ok(bytes) => {
                total_out += bytes.len() as u64;
                ctx.attachment(&entry_location, &entry.name, None, &bytes, depth + 1)
            }
            Err(stop) => ctx.unscannable(&entry_location, &stop.reason()),
        }
    }
    if truncated {
        ctx.unscannable(location, "archive entry limit reached");
    }
}

/// The entry count a zip declares in its end-of-central-directory record (zip64 included),
/// capped by what the file could hold (46 bytes per central-directory entry at least).
fn zip_entry_count(data: &[u8]) -> Option<u64> {
    const EOCD_LEN: usize = 22;
    let tail_start = data.len().saturating_sub(EOCD_LEN + u16::MAX as usize);
    let eocd = tail_start + memchr::memmem::rfind(data.get(tail_start..)?, b"PK\x05\x06")?;
    let u16_at = |at: usize| -> Option<u64> {
        Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?).into())
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(data.get(at..at + 8)?.try_into().ok()?))
    };
    let mut count = u16_at(eocd + 10)?;
    if count == 0xFFFF {
        // Zip64: the locator just before the record points to the zip64 record.
        let locator = eocd.checked_sub(20)?;
        if data.get(locator..locator + 4) == Some(b"PK\x06\x07") {
            let record = usize::try_from(u64_at(locator + 8)?).ok()?;
            if data.get(record..record + 4) == Some(b"PK\x06\x06") {
                count = u64_at(record + 32)?;
            }
        }
    }
    Some(count.min(data.len() as u64 / 46))
}

/// A gzip stream: its content is decoded as a file named like the archive without `.gz`.
pub fn gzip(ctx: &mut Ctx<'_>, location: &str, name: &str, data: &[u8], depth: usize) {
    let lower = name.to_ascii_lowercase();
    let inner = if lower.ends_with(".tgz") {
        format!("{}.tar", &name[..name.len() - 4])
    } else if lower.ends_with(".gz") {
        name[..name.len() - 3].to_string()
    } else {
        String::new()
    };
    let decoder = flate2::read::MultiGzDecoder::new(data);
    match read_capped(ctx, location, decoder, data.len() as u64) {
        Ok(bytes) => {
            let label = if inner.is_empty() { "content" } else { &inner };
            let inner_location = format!("{location}/{label}");
            ctx.attachment(&inner_location, &inner, None, &bytes, depth + 1);
        }
        Err(ReadStop::Corrupt(e)) => ctx.unscannable(location, &format!("corrupt gzip: {e}")),
        Err(stop) => ctx.unscannable(location, &stop.reason()),
    }
}

/// A tar archive: regular files are decoded one by one.
pub fn tar(ctx: &mut Ctx<'_>, location: &str, data: &[u8], depth: usize) {
    let mut archive = tar::Archive::new(Cursor::new(data));
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => {
            ctx.unscannable(location, &format!("corrupt tar: {e}"));
            return;
        }
    };
    for (count, entry) in entries.enumerate() {
        if count >= ctx.limits.max_archive_entries {
            ctx.unscannable(location, "archive entry limit reached");
            return;
        }
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                ctx.unscannable(location, &format!("corrupt tar: {e}"));
                return;
            }
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let entry_location = format!("{location}/{name}");
        ctx.emit_name(&entry_location, &name);
        if let Err(stop) = ctx.check_time() {
            ctx.unscannable(&entry_location, stop.reason());
            return;
        }
        // A tar entry is stored, not compressed: its own size is its "compressed" size.
        let size = entry.size();
        match read_capped(ctx, &entry_location, entry, size) {
            Ok(bytes) => ctx.attachment(&entry_location, &name, None, &bytes, depth + 1),
            Err(stop) => ctx.unscannable(&entry_location, &stop.reason()),
        }
    }
}

//! Archives: zip (and the Office/OpenDocument files that are zips), gzip, tar.
//!
//! Every entry is read through [`read_capped`], so no declared size is trusted for
//! allocation: an entry is read at most up to the per-part limit, the message's remaining
//! budget, and its compressed size times the expansion ratio (zip bombs).

use super::bounded::RATIO_FLOOR;
use super::unpack::{ReadStop, read_capped, read_zip_entry, zip_entries};
use super::{Ctx, Format, office, text};
use std::io::Cursor;

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

/// Bytes of each side looked at where two tar entries meet: a 2048-bit PEM key (1.7 KB) cut
/// anywhere fits, and a tar of many small text entries is charged at most 4 KiB more per entry.
const JOIN_WINDOW: usize = 2048;

/// A tar archive: regular files are decoded one by one. Consecutive text entries are also
/// read where they meet, as `cat` shows them: a file cut into parts (`split` makes `x.aa`,
/// `x.ab`; others `x.001`, `part1`) keeps a value across the cut. That place is
/// `LOCATION/first+second`, and only values that cross the cut count there.
pub fn tar(ctx: &mut Ctx<'_>, location: &str, data: &[u8], depth: usize) {
    let mut archive = tar::Archive::new(Cursor::new(data));
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => {
            ctx.unscannable(location, &format!("corrupt tar: {e}"));
            return;
        }
    };
    // The previous text entry: its name and the last bytes of the text up to its end.
    let mut tail: Option<(String, Vec<u8>)> = None;
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
            Ok(bytes) => {
                tail = join_text_entries(ctx, location, tail.take(), &name, &bytes);
                ctx.attachment(&entry_location, &name, None, &bytes, depth + 1)
            }
            Err(stop) => {
                tail = None;
                ctx.unscannable(&entry_location, &stop.reason())
            }
        }
    }
}

/// If `bytes` (entry `name`) is 8-bit text, read the place where the previous text entry
/// (`tail`) meets it, and return the new tail; `None` for anything else (a binary entry
/// breaks the run).
fn join_text_entries(
    ctx: &mut Ctx<'_>,
    location: &str,
    tail: Option<(String, Vec<u8>)>,
    name: &str,
    bytes: &[u8],
) -> Option<(String, Vec<u8>)> {
    let text = bytes.is_empty()
        || Format::sniff(name, None, bytes) == Format::Text
            && !bytes.starts_with(&[0xFF, 0xFE])
            && !bytes.starts_with(&[0xFE, 0xFF])
            && !text::is_wide_text(bytes);
    if !text {
        return None;
    }
    let mut before = tail.as_ref().map(|(_, b)| b.clone()).unwrap_or_default();
    if let Some((prev, _)) = &tail
        && !bytes.is_empty()
    {
        let mut after = bytes[..bytes.len().min(JOIN_WINDOW)].to_vec();
        // A character cut in two by the split belongs to the second piece.
        if let Err(e) = std::str::from_utf8(&before)
            && e.error_len().is_none()
        {
            let cut = before.split_off(e.valid_up_to());
            after.splice(0..0, cut);
        }
        // A character cut by the window's own end is left out.
        if let Err(e) = std::str::from_utf8(&after)
            && e.error_len().is_none()
        {
            after.truncate(e.valid_up_to());
        }
        let at = format!("{location}/{prev}+{name}");
        ctx.emit_across(
            &at,
            &String::from_utf8_lossy(&before),
            &String::from_utf8_lossy(&after),
        );
        before = tail.map(|(_, b)| b).unwrap_or_default();
    }
    // The new tail: the last bytes of everything read so far (a short entry extends the one
    // before it), starting on a character boundary.
    before.extend_from_slice(&bytes[bytes.len().saturating_sub(JOIN_WINDOW)..]);
    let mut start = before.len().saturating_sub(JOIN_WINDOW);
    while before.get(start).is_some_and(|b| b & 0xC0 == 0x80) {
        start += 1;
    }
    before.drain(..start);
    Some((name.to_string(), before))
}

//! A sink that records what decoding reports, and builders for test inputs.

use maildlp::decode::{Ctx, Sink};
use maildlp::limits::Limits;
use std::io::{Cursor, Write};

/// Everything a decode reported, in order.
#[derive(Default, Debug)]
pub struct Recorder {
    pub texts: Vec<(String, String)>,
    pub encrypted: Vec<(String, String)>,
    pub unscannable: Vec<(String, String)>,
    /// Bytes charged to the message budget when decoding finished.
    pub decoded_bytes: usize,
}

impl Sink for Recorder {
    fn text(&mut self, location: &str, text: &str) {
        self.texts.push((location.to_string(), text.to_string()));
    }
    fn encrypted(&mut self, location: &str, kind: &str) {
        self.encrypted
            .push((location.to_string(), kind.to_string()));
    }
    fn unscannable(&mut self, location: &str, reason: &str) {
        self.unscannable
            .push((location.to_string(), reason.to_string()));
    }
}

impl Recorder {
    /// All text reported at exactly `location`, joined by new lines.
    pub fn text_at(&self, location: &str) -> String {
        self.texts
            .iter()
            .filter(|(l, _)| l == location)
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Locations that received text (safe to print: no content).
    pub fn text_locations(&self) -> Vec<&str> {
        self.texts.iter().map(|(l, _)| l.as_str()).collect()
    }

    /// Assert that the text at `location` contains `needle`, without printing the text.
    #[track_caller]
    pub fn assert_text(&self, location: &str, needle: &str) {
        let text = self.text_at(location);
        assert!(
            text.contains(needle),
            "expected text not found at {location:?} ({} chars there); text locations: {:?}; \
             unscannable: {:?}",
            text.len(),
            self.text_locations(),
            self.unscannable
        );
    }

    /// Assert that no text at all contains `needle`.
    #[track_caller]
    pub fn assert_nowhere(&self, needle: &str) {
        let at: Vec<&str> = self
            .texts
            .iter()
            .filter(|(_, t)| t.contains(needle))
            .map(|(l, _)| l.as_str())
            .collect();
        assert!(at.is_empty(), "text that should be absent found at {at:?}");
    }

    /// Whether `location` was reported unscannable with a reason containing `reason`.
    pub fn has_unscannable(&self, location: &str, reason: &str) -> bool {
        self.unscannable
            .iter()
            .any(|(l, r)| l == location && r.contains(reason))
    }

    #[track_caller]
    pub fn assert_unscannable(&self, location: &str, reason: &str) {
        assert!(
            self.has_unscannable(location, reason),
            "expected unscannable {location:?} ({reason:?}); got {:?}",
            self.unscannable
        );
    }
}

/// Decode one attachment with the default limits.
pub fn decode(name: &str, data: &[u8]) -> Recorder {
    decode_with(&Limits::default(), name, None, data)
}

/// Decode one attachment named `name` (located at `attachment:{name}`).
pub fn decode_with(
    limits: &Limits,
    name: &str,
    content_type: Option<&str>,
    data: &[u8],
) -> Recorder {
    let mut recorder = Recorder::default();
    let decoded_bytes = {
        let mut ctx = Ctx::new(limits, &mut recorder);
        ctx.attachment(&format!("attachment:{name}"), name, content_type, data, 0);
        ctx.decoded_bytes()
    };
    recorder.decoded_bytes = decoded_bytes;
    recorder
}

/// A zip of `(name, content)` entries, deflated.
pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// A zip of `(name, content)` entries, stored (not compressed), so that byte mutations in
/// robustness tests reach the content and not only the deflate stream.
pub fn zip_stored(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, content) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// Mark every entry of a zip as encrypted (general purpose flag bit 0 in the local and central
/// headers). The zip crate (4.x) cannot write ZipCrypto entries (its writer for them is
/// crate-private), and our reader decides on that flag alone, as every reader must: the
/// encrypted bytes are never read.
pub fn mark_encrypted(mut zip: Vec<u8>) -> Vec<u8> {
    let mut i = 0;
    while i + 10 <= zip.len() {
        match &zip[i..i + 4] {
            b"PK\x03\x04" => zip[i + 6] |= 1,
            b"PK\x01\x02" => zip[i + 8] |= 1,
            _ => {}
        }
        i += 1;
    }
    zip
}

/// A zip written by hand around already-deflated data, with the sizes we choose to declare
/// (for bombs whose headers are honest or lie).
pub fn zip_raw_deflated(name: &str, deflated: &[u8], declared_size: u32, crc: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let header = |out: &mut Vec<u8>, central: bool| {
        out.extend_from_slice(if central {
            b"PK\x01\x02"
        } else {
            b"PK\x03\x04"
        });
        if central {
            out.extend_from_slice(&20u16.to_le_bytes()); // version made by
        }
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed
        out.extend_from_slice(&0u16.to_le_bytes()); // flags
        out.extend_from_slice(&8u16.to_le_bytes()); // deflate
        out.extend_from_slice(&0u32.to_le_bytes()); // time, date
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(deflated.len() as u32).to_le_bytes());
        out.extend_from_slice(&declared_size.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // extra
        if central {
            out.extend_from_slice(&[0; 6]); // comment len, disk, int attr
            out.extend_from_slice(&0u32.to_le_bytes()); // ext attr
            out.extend_from_slice(&0u32.to_le_bytes()); // local header offset
        }
        out.extend_from_slice(name.as_bytes());
    };
    header(&mut out, false);
    out.extend_from_slice(deflated);
    let central_start = out.len();
    header(&mut out, true);
    let central_len = out.len() - central_start;
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&(central_len as u32).to_le_bytes());
    out.extend_from_slice(&(central_start as u32).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A raw deflate stream of `mib` MiB of zeros, built without compressing them all: one MiB is
/// compressed after a zero-filled window, sync-flushed, and repeated (each copy decodes to the
/// same MiB of zeros given the zeros before it).
pub fn deflated_zeros(mib: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; 1 << 20];
    let mut c = Compress::new(Compression::best(), false);
    let mut chunk = |input: &[u8], flush| {
        let mut out = Vec::with_capacity(64 * 1024);
        let before = c.total_in();
        c.compress_vec(input, &mut out, flush).unwrap();
        assert_eq!(c.total_in() - before, input.len() as u64);
        out
    };
    let first = chunk(&zeros, FlushCompress::Sync);
    let repeat = chunk(&zeros, FlushCompress::Sync);
    let last = chunk(&[], FlushCompress::Finish);
    let mut out = first;
    for _ in 1..mib {
        out.extend_from_slice(&repeat);
    }
    out.extend_from_slice(&last);
    out
}

/// gzip of `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A tar of `(name, content)` files.
pub fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, *content).unwrap();
    }
    builder.into_inner().unwrap()
}

/// An OLE compound file with the given streams (paths like `/WordDocument`).
pub fn ole(streams: &[(&str, &[u8])]) -> Vec<u8> {
    let mut file = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
    for (path, data) in streams {
        let parent = std::path::Path::new(path).parent().unwrap();
        if parent != std::path::Path::new("/") {
            file.create_storage_all(parent).unwrap();
        }
        let mut stream = file.create_stream(path).unwrap();
        stream.write_all(data).unwrap();
    }
    file.flush().unwrap();
    file.into_inner().into_inner()
}

//! Decoding: a raw message becomes text segments, each with the place it came from.
//!
//! [`decode_message`] walks the MIME tree ([`mime`]); every attachment goes through
//! [`Ctx::attachment`], which sniffs its format and hands it to the extractor for it
//! (archives, Office and OpenDocument files, PDF, RTF, nested mail, plain text). Extractors
//! call back into [`Ctx::attachment`] for what they contain, so nesting is handled in one
//! place, where the depth, size, count and time limits are enforced.

pub mod archive;
pub mod bounded;
pub mod crypto;
pub mod formula;
pub mod legacy;
pub mod mime;
pub mod office;
pub mod pdf;
pub mod rtf;
pub mod text;
pub mod unpack;

use crate::limits::Limits;
use std::time::Instant;

pub use mime::{MessageInfo, decode_message};

/// Receives what decoding finds. The scan layer implements it to run the detectors.
pub trait Sink {
    /// Text to scan, from `location` (`subject`, `body`, `html`, `attachment:a.zip/b.csv`, ...).
    fn text(&mut self, location: &str, text: &str);
    /// An encrypted part: its content cannot be read. `kind` is `zip`, `pdf`, `office`, `pgp`
    /// or `smime`.
    fn encrypted(&mut self, location: &str, kind: &str);
    /// A part that was not scanned (limit reached, corrupt, unknown format), and why.
    fn unscannable(&mut self, location: &str, reason: &str);
    /// Text where two pieces meet: the end of one archive entry and the start of the next (a
    /// file split into parts reads as their concatenation). Only values that cross from
    /// `before` into `after` count here: those wholly inside one piece were found in it. This
    /// default scans the joined text whole.
    fn text_across(&mut self, location: &str, before: &str, after: &str) {
        self.text(location, &format!("{before}{after}"));
    }
}

/// The state of decoding one message: limits, what has been used of them, and the sink.
pub struct Ctx<'a> {
    pub limits: &'a Limits,
    sink: &'a mut dyn Sink,
    decoded_bytes: usize,
    parts: usize,
    started: Instant,
    /// Set once the time limit has passed, so it is reported once and nothing more is done.
    timed_out: bool,
}

/// Why an extractor stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The per-message decoded-bytes budget is used up.
    Budget,
    /// The per-message time limit has passed.
    Time,
}

impl<'a> Ctx<'a> {
    pub fn new(limits: &'a Limits, sink: &'a mut dyn Sink) -> Self {
        Ctx {
            limits,
            sink,
            decoded_bytes: 0,
            parts: 0,
            started: Instant::now(),
            timed_out: false,
        }
    }

    /// Bytes of decoded content accounted so far.
    pub fn decoded_bytes(&self) -> usize {
        self.decoded_bytes
    }

    /// Account `n` decoded bytes against the message budget. On `Err`, the caller stops
    /// decoding the current part (and reports it unscannable with [`Stop::reason`]).
    pub fn charge(&mut self, n: usize) -> Result<(), Stop> {
        self.check_time()?;
        if self.decoded_bytes.saturating_add(n) > self.limits.max_decoded_bytes {
            return Err(Stop::Budget);
        }
        self.decoded_bytes += n;
        Ok(())
    }

    /// Time still allowed for the message.
    pub fn time_left(&self) -> std::time::Duration {
        if self.timed_out {
            return std::time::Duration::ZERO;
        }
        self.limits
            .max_scan_time()
            .saturating_sub(self.started.elapsed())
    }

    /// Bytes still allowed for the message.
    pub fn remaining_budget(&self) -> usize {
        self.limits
            .max_decoded_bytes
            .saturating_sub(self.decoded_bytes)
    }

    /// `Err(Stop::Time)` once the time limit for the message has passed.
    pub fn check_time(&mut self) -> Result<(), Stop> {
        if self.timed_out || self.started.elapsed() > self.limits.max_scan_time() {
            self.timed_out = true;
            return Err(Stop::Time);
        }
        Ok(())
    }

    /// Count one more part; `false` when the per-message part limit is reached.
    pub fn count_part(&mut self) -> bool {
        self.parts += 1;
        self.parts <= self.limits.max_parts
    }

    /// Hand text to the sink (charging it to the budget). Returns `false` when the text was not
    /// passed on because a limit was reached; the location is then reported unscannable.
    pub fn emit_text(&mut self, location: &str, text: &str) -> bool {
        if text.is_empty() {
            return true;
        }
        match self.charge(text.len()) {
            Ok(()) => {
                self.sink.text(location, text);
                true
            }
            Err(stop) => {
                self.unscannable(location, stop.reason());
                false
            }
        }
    }

    /// Hand the sink the place where two pieces of text meet ([`Sink::text_across`]), charged
    /// to the budget like any text.
    pub fn emit_across(&mut self, location: &str, before: &str, after: &str) {
        if before.is_empty() || after.is_empty() {
            return;
        }
        match self.charge(before.len() + after.len()) {
            Ok(()) => self.sink.text_across(location, before, after),
            Err(stop) => self.unscannable(location, stop.reason()),
        }
    }

    pub fn encrypted(&mut self, location: &str, kind: &str) {
        self.sink.encrypted(location, kind);
    }

    pub fn unscannable(&mut self, location: &str, reason: &str) {
        self.sink.unscannable(location, reason);
    }

    /// A file name a person chose (an attachment, an archive entry): scanned like the subject,
    /// at `LOCATION/name`.
    pub fn emit_name(&mut self, location: &str, name: &str) {
        if !name.trim().is_empty() {
            self.emit_text(&format!("{location}/name"), &name_as_words(name));
        }
    }

    /// Decode an attachment (or an archive entry) of any supported format. `location` is its
    /// full location (`attachment:a.zip/b.docx`), `name` its file name (may be empty),
    /// `content_type` the declared MIME type if any, `depth` the container depth it sits at
    /// (0 for a direct attachment of the message).
    pub fn attachment(
        &mut self,
        location: &str,
        name: &str,
        content_type: Option<&str>,
        data: &[u8],
        depth: usize,
    ) {
        if depth > self.limits.max_depth {
            self.unscannable(location, "nesting depth limit reached");
            return;
        }
        if data.len() > self.limits.max_part_bytes {
            self.unscannable(location, "part size limit reached");
            return;
        }
        if let Err(stop) = self.check_time() {
            self.unscannable(location, stop.reason());
            return;
        }
        let format = Format::sniff(name, content_type, data);
        match format {
            Format::Zip => archive::zip(self, location, data, depth),
            Format::Gzip => archive::gzip(self, location, name, data, depth),
            Format::Tar => archive::tar(self, location, data, depth),
            Format::Pdf => pdf::extract_at(self, location, data, depth),
            Format::FlatOffice => office::flat_xml(self, location, data, depth),
            Format::Rtf => rtf::extract(self, location, data),
            Format::Ole => office::ole(self, location, data),
            Format::Message => mime::nested(self, location, data, depth + 1),
            Format::Html => text::html(self, location, data),
            Format::Text => text::plain(self, location, data),
            Format::BinaryPlist => text::binary_plist(self, location, data),
            Format::Pgp => self.encrypted(location, "pgp"),
            Format::Smime => self.encrypted(location, "smime"),
            Format::SignedOpaque => self.unscannable(
                location,
                "S/MIME opaque-signed data: the signed content is not unpacked",
            ),
            // A detached signature (S/MIME, PGP) carries no content of its own.
            Format::Signature => {}
            Format::Media(what) => {
                let reason = format!("{what} content is not scanned (no OCR or transcription)");
                self.unscannable(location, &reason)
            }
            Format::Unknown(what) => {
                let reason = format!("unknown format ({what})");
                self.unscannable(location, &reason)
            }
        }
    }
}

/// Is `reason` a limit of the whole message (not of one part), after which the rest of the
/// message went unread? The policy holds such mail more strictly.
pub fn is_message_limit(reason: &str) -> bool {
    reason == Stop::Budget.reason()
        || reason == Stop::Time.reason()
        || reason == "part count limit reached"
        || reason.starts_with("candidate limit")
}

impl Stop {
    pub fn reason(&self) -> &'static str {
        match self {
            Stop::Budget => "decoded size limit for the message reached",
            Stop::Time => "time limit for the message reached",
        }
    }
}

/// The formats the decoder knows, recognised by content first, then by name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Zip,
    Gzip,
    Tar,
    Pdf,
    Rtf,
    /// OLE compound file: legacy Office, or an encrypted OOXML package.
    Ole,
    Message,
    Html,
    Text,
    /// Apple binary property list (a `.webloc` link file, a `.plist`): its strings are read.
    BinaryPlist,
    Pgp,
    Smime,
    /// Detached S/MIME or PGP signature, or PGP/MIME's control part: no content of its own.
    Signature,
    /// Single-file Office XML: flat ODF (.fodt/.fods/.fodp), flat OPC, Word/Excel 2003 XML.
    FlatOffice,
    /// S/MIME opaque-signed data: the content is inside the signature structure and is not
    /// unpacked yet, so it is reported unscannable (never taken for encrypted or clean).
    SignedOpaque,
    /// Images, audio and video: no text to take out without OCR.
    Media(&'static str),
    Unknown(String),
}

impl Format {
    pub fn sniff(name: &str, content_type: Option<&str>, data: &[u8]) -> Format {
        let ext = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        let ctype = content_type.unwrap_or("").to_ascii_lowercase();
        if data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06") {
            return Format::Zip;
        }
        if data.starts_with(&[0x1f, 0x8b]) {
            return Format::Gzip;
        }
        if data.len() > 262 && &data[257..262] == b"ustar" {
            return Format::Tar;
        }
        if data.starts_with(b"%PDF-") || (data.len() < 1024 && ext == "pdf") {
            return Format::Pdf;
        }
        if data.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
            return Format::Ole;
        }
        // Media only when the bytes are media: a declared image/audio/video type is a label,
        // and a CSV labelled image/png is still a CSV.
        if let Some(what) = crypto::media_kind(data) {
            return Format::Media(what);
        }
        if data.starts_with(b"bplist00") {
            return Format::BinaryPlist;
        }
        if data.starts_with(b"{\\rtf") {
            return Format::Rtf;
        }
        // PGP/MIME's control part: exactly "Version: 1"; the encrypted data is the next part.
        if ctype == "application/pgp-encrypted" && crypto::is_pgp_mime_control(data) {
            return Format::Signature;
        }
        // Signatures and encrypted data only when the bytes are: a name or a label alone
        // (.p7s, .gpg, pkcs7-mime, an armour line over plain text) proves nothing.
        if crypto::is_signature(data) {
            return Format::Signature;
        }
        match crypto::smime_kind(data) {
            Some(crypto::Cms::Enveloped) => return Format::Smime,
            Some(crypto::Cms::Signed) => return Format::SignedOpaque,
            Some(crypto::Cms::DetachedSignature) => return Format::Signature,
            None => {}
        }
        if crypto::is_pgp_encrypted(data) {
            return Format::Pgp;
        }
        if ctype.starts_with("image/") || ctype.starts_with("audio/") || ctype.starts_with("video/")
        {
            // Labelled media that is not: read it as whatever it is (text below), or report
            // it, never exempt it.
            if !looks_like_text(data) {
                return Format::Unknown(format!(
                    "{ctype} declared, but the content is not {ctype}"
                ));
            }
        }
        if office::is_flat_xml(data) {
            return Format::FlatOffice;
        }
        if ctype == "message/rfc822" || ext == "eml" || looks_like_message(data) {
            return Format::Message;
        }
        if ctype == "text/html" || ext == "html" || ext == "htm" {
            return Format::Html;
        }
        const TEXT_EXT: &[&str] = &[
            "txt", "csv", "tsv", "json", "xml", "ics", "vcf", "md", "log", "text", "ini", "yaml",
            "yml", "conf", "cfg", "sql", "env", "pem", "key", "sh", "ps1", "py",
        ];
        if ctype.starts_with("text/") || TEXT_EXT.contains(&ext.as_str()) || looks_like_text(data) {
            return Format::Text;
        }
        let what = if !ctype.is_empty() {
            ctype
        } else if !ext.is_empty() {
            format!(".{ext}")
        } else {
            "binary data".to_string()
        };
        Format::Unknown(what)
    }
}

/// A file name read as a person reads it: `_`, `.`, `/` and `+` separate words
/// (`ssn_536-22-4817.csv` is "ssn 536-22-4817 csv"), so a value next to an extension or an
/// underscore is not taken for a fragment of a longer token. Same length, byte for byte.
pub fn name_as_words(name: &str) -> String {
    name.chars()
        .map(|c| {
            if matches!(c, '_' | '.' | '/' | '\\' | '+' | ':') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// An e-mail message without a name or label saying so (in a zip, or labelled image/jpeg):
/// its first line is a header field, and at least two of the fields every message carries
/// appear in its head.
pub fn looks_like_message(data: &[u8]) -> bool {
    let head = &data[..data.len().min(8192)];
    let Ok(text) =
        std::str::from_utf8(head).or_else(|e| std::str::from_utf8(&head[..e.valid_up_to()]))
    else {
        return false;
    };
    let first = text.lines().next().unwrap_or("");
    let is_field = |l: &str| {
        l.split_once(':').is_some_and(|(n, _)| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
    };
    if !is_field(first) {
        return false;
    }
    let header_end = text
        .find("\r\n\r\n")
        .or_else(|| text.find("\n\n"))
        .unwrap_or(text.len());
    let fields = text[..header_end].to_ascii_lowercase();
    [
        "\nfrom:",
        "\nto:",
        "\nsubject:",
        "\ndate:",
        "\nmessage-id:",
        "\nmime-version:",
        "\nreceived:",
    ]
    .iter()
    .filter(|f| fields.contains(*f) || fields.starts_with(&f[1..]))
    .count()
        >= 2
}

/// Heuristic for unnamed, untyped data: valid UTF-8 (or UTF-16 with a BOM) without control
/// bytes other than whitespace in its first 4 KiB.
pub fn looks_like_text(data: &[u8]) -> bool {
    if data.starts_with(&[0xFF, 0xFE])
        || data.starts_with(&[0xFE, 0xFF])
        || text::is_wide_text(data)
    {
        return true;
    }
    let head = &data[..data.len().min(4096)];
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        // A multi-byte character cut at the 4 KiB boundary is still text.
        Err(e) => e.error_len().is_none(),
    };
    valid
        && !head
            .iter()
            .any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
}

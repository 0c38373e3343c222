//! What a part's bytes really are, when its name or label claims media, a signature or
//! encryption: a CSV labelled `image/png`, a text file named `.gpg` or an armour line over plain
//! text must be read, not exempted. Each check looks at the structure the claim implies (a media
//! header, an OpenPGP packet tag, a CMS content type) and nothing more: no cryptography.
//! Hand-written: no crate parses just enough OpenPGP and CMS framing to say which is which
//! without pulling in a full implementation.

use mail_parser::decoders::base64::base64_decode;

/// The media kind of `data` by its magic number (`image`, `audio`, `video`), if it is media.
pub fn media_kind(data: &[u8]) -> Option<&'static str> {
    let at = |off: usize, magic: &[u8]| data.get(off..off + magic.len()) == Some(magic);
    if at(0, b"\x89PNG\r\n\x1a\n")
        || at(0, &[0xFF, 0xD8, 0xFF])
        || at(0, b"GIF87a")
        || at(0, b"GIF89a")
        || (at(0, b"BM") && data.len() > 26)
        || at(0, b"II*\0")
        || at(0, b"MM\0*")
        || (at(0, b"RIFF") && at(8, b"WEBP"))
        || (at(4, b"ftyp")
            && (at(8, b"heic") || at(8, b"heix") || at(8, b"avif") || at(8, b"mif1")))
        || at(0, &[0, 0, 1, 0]) && data.len() > 22
    {
        return Some("image");
    }
    if at(0, b"ID3")
        || (data.len() > 2 && data[0] == 0xFF && data[1] & 0xE0 == 0xE0 && data[1] & 0x06 != 0)
        || (at(0, b"RIFF") && at(8, b"WAVE"))
        || at(0, b"OggS")
        || at(0, b"fLaC")
        || at(0, b"#!AMR")
        || (at(4, b"ftyp") && (at(8, b"M4A ") || at(8, b"M4B ")))
    {
        return Some("audio");
    }
    if (at(4, b"ftyp"))
        || at(0, &[0x1A, 0x45, 0xDF, 0xA3])
        || (at(0, b"RIFF") && at(8, b"AVI "))
        || at(0, &[0, 0, 1, 0xBA])
        || at(0, &[0, 0, 1, 0xB3])
    {
        return Some("video");
    }
    None
}

/// PGP/MIME's control part: `Version: 1` and nothing else.
pub fn is_pgp_mime_control(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.len() == 1 && lines[0].replace(' ', "").eq_ignore_ascii_case("version:1")
}

/// An OpenPGP packet's tag, from its first byte (old or new format header).
fn pgp_tag(first: u8) -> Option<u8> {
    if first & 0x80 == 0 {
        return None;
    }
    Some(if first & 0x40 != 0 {
        first & 0x3F
    } else {
        (first >> 2) & 0x0F
    })
}

/// Packets that begin an encrypted OpenPGP message: session keys (1, 3) or encrypted data
/// (9, 18, 20).
fn is_encrypted_tag(tag: u8) -> bool {
    matches!(tag, 1 | 3 | 9 | 18 | 20)
}

/// The binary content of an ASCII-armoured block `kind` (`PGP MESSAGE`) that starts `text`
/// (after leading blank space), if the armour is well formed.
fn dearmor(text: &[u8], kind: &str) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(text).ok()?;
    let text = text.trim_start();
    let begin = format!("-----BEGIN {kind}-----");
    let end = format!("-----END {kind}-----");
    let rest = text.strip_prefix(&begin)?;
    let (body, _) = rest.split_once(&end)?;
    // What follows the BEGIN line on its own line is not part of the block.
    let body = body.split_once('\n').map(|(_, b)| b).unwrap_or("");
    let mut lines = body.lines().map(str::trim);
    // Armour headers (Version:, Comment:) up to a blank line; they are optional.
    let mut b64 = String::new();
    let mut in_headers = true;
    for line in lines.by_ref() {
        if in_headers {
            if line.is_empty() {
                in_headers = false;
                continue;
            }
            if line.contains(": ") {
                continue;
            }
            in_headers = false;
        }
        if line.starts_with('=') && line.len() == 5 {
            break; // the CRC-24 checksum line
        }
        if !line
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        {
            return None; // plain text under an armour line
        }
        b64.push_str(line);
    }
    let bin = base64_decode(b64.as_bytes())?;
    (!bin.is_empty()).then_some(bin)
}

/// Is `data` an encrypted OpenPGP message, binary or armoured?
pub fn is_pgp_encrypted(data: &[u8]) -> bool {
    let bin = match data.first() {
        Some(&b) if b & 0x80 != 0 => return pgp_tag(b).is_some_and(is_encrypted_tag),
        _ => dearmor(data, "PGP MESSAGE"),
    };
    bin.and_then(|b| b.first().copied())
        .and_then(pgp_tag)
        .is_some_and(is_encrypted_tag)
}

/// Does `text` hold a well-formed armoured, encrypted OpenPGP message (anywhere in it)?
pub fn text_has_pgp_message(text: &str) -> bool {
    let mut rest = text;
    while let Some(pos) = rest.find("-----BEGIN PGP MESSAGE-----") {
        if is_pgp_encrypted(&rest.as_bytes()[pos..]) {
            return true;
        }
        rest = &rest[pos + 1..];
    }
    false
}

/// Is `data` a detached signature (OpenPGP or CMS) with no content of its own?
pub fn is_signature(data: &[u8]) -> bool {
    if let Some(&b) = data.first()
        && b & 0x80 != 0
    {
        // A binary OpenPGP signature packet (tag 2), as a whole file.
        return pgp_tag(b) == Some(2) && data.len() < 16 * 1024;
    }
    if let Some(bin) = dearmor(data, "PGP SIGNATURE") {
        // Nothing but the armoured block.
        let text = String::from_utf8_lossy(data);
        let after = text
            .split_once("-----END PGP SIGNATURE-----")
            .map(|(_, a)| a.trim())
            .unwrap_or("");
        return after.is_empty() && bin.first().and_then(|&b| pgp_tag(b)) == Some(2);
    }
    smime_kind(data) == Some(Cms::DetachedSignature)
}

/// What a CMS (S/MIME) structure holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cms {
    /// Enveloped (encrypted) data: unreadable without the key.
    Enveloped,
    /// Signed data that carries its content inside (opaque signing).
    Signed,
    /// Signed data without content: a detached signature.
    DetachedSignature,
}

const OID_SIGNED: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02];
const OID_ENVELOPED: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03];
const OID_AUTH_ENVELOPED: &[u8] = &[
    0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x01, 0x17,
];

/// One BER/DER element: (tag, contents, rest after it). An indefinite length takes the rest
/// of the input as contents (enough to look at the first fields).
fn tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *data.first()?;
    let first = *data.get(1)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else if first == 0x80 {
        let contents = data.get(2..)?;
        return Some((tag, contents, &[]));
    } else {
        let n = (first & 0x7F) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *data.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let contents = data.get(header..header.checked_add(len)?)?;
    Some((tag, contents, &data[header + len..]))
}

/// The CMS content type of `data` (DER, or base64/PEM of it), if it is a CMS ContentInfo.
pub fn smime_kind(data: &[u8]) -> Option<Cms> {
    let decoded;
    let der = if data.first() == Some(&0x30) {
        data
    } else {
        let text = std::str::from_utf8(&data[..data.len().min(1 << 20)]).ok()?;
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .flat_map(|l| l.trim().chars())
            .collect();
        decoded = base64_decode(body.as_bytes())?;
        decoded.as_slice()
    };
    let (0x30, info, _) = tlv(der)? else {
        return None;
    };
    let (0x06, oid, rest) = tlv(info)? else {
        return None;
    };
    if oid == OID_ENVELOPED || oid == OID_AUTH_ENVELOPED {
        return Some(Cms::Enveloped);
    }
    if oid != OID_SIGNED {
        return None;
    }
    // [0] EXPLICIT SignedData ::= SEQUENCE { version, digestAlgorithms SET,
    //   encapContentInfo SEQUENCE { eContentType OID, eContent [0] EXPLICIT OPTIONAL }, ... }
    let (0xA0, explicit, _) = tlv(rest)? else {
        return None;
    };
    let (0x30, signed, _) = tlv(explicit)? else {
        return None;
    };
    let (0x02, _, rest) = tlv(signed)? else {
        return None;
    };
    let (0x31, _, rest) = tlv(rest)? else {
        return None;
    };
    let (0x30, encap, _) = tlv(rest)? else {
        return None;
    };
    let (0x06, _, rest) = tlv(encap)? else {
        return None;
    };
    Some(if rest.first() == Some(&0xA0) {
        Cms::Signed
    } else {
        Cms::DetachedSignature
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(data: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for c in data.chunks(3) {
            let n = (c[0] as u32) << 16
                | (*c.get(1).unwrap_or(&0) as u32) << 8
                | *c.get(2).unwrap_or(&0) as u32;
            for i in 0..4 {
                if i <= c.len() {
                    out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn media_by_bytes_not_by_label() {
        assert_eq!(media_kind(b"\x89PNG\r\n\x1a\n rest"), Some("image"));
        assert_eq!(media_kind(b"\xFF\xD8\xFF\xE0 jpeg"), Some("image"));
        assert_eq!(media_kind(b"ID3\x03 mp3"), Some("audio"));
        assert_eq!(media_kind(b"\0\0\0\x18ftypmp42 video"), Some("video"));
        assert_eq!(media_kind(b"name,ssn\n"), None);
        assert_eq!(media_kind(b"From: a@b\r\n"), None);
    }

    #[test]
    fn pgp_encrypted_only_with_an_encrypted_packet() {
        // SEIPD packet (new format, tag 18) and PKESK (old format, tag 1).
        assert!(is_pgp_encrypted(&[0xD2, 0x10, 1, 2, 3]));
        assert!(is_pgp_encrypted(&[0x84, 0x10, 1, 2, 3]));
        // A literal-data packet (tag 11) is not encrypted; nor is text.
        assert!(!is_pgp_encrypted(&[0xCB, 0x10, b'b']));
        assert!(!is_pgp_encrypted(b"SSN 536-22-4817"));
        let armoured = format!(
            "-----BEGIN PGP MESSAGE-----\nVersion: X\n\n{}\n=abcd\n-----END PGP MESSAGE-----\n",
            b64(&[0x84, 0x0C, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
        );
        assert!(is_pgp_encrypted(armoured.as_bytes()));
        assert!(text_has_pgp_message(&format!("Hi,\n\n{armoured}")));
        let fake = "-----BEGIN PGP MESSAGE-----\n\nEmployee SSN: 536-22-4817, see you Monday.\n-----END PGP MESSAGE-----\n";
        assert!(!is_pgp_encrypted(fake.as_bytes()));
        assert!(!text_has_pgp_message(fake));
        let no_end = "-----BEGIN PGP MESSAGE-----\nSSN 536-22-4817\n";
        assert!(!is_pgp_encrypted(no_end.as_bytes()));
    }

    #[test]
    fn signatures_only_when_they_are() {
        let sig = format!(
            "-----BEGIN PGP SIGNATURE-----\n\n{}\n=abcd\n-----END PGP SIGNATURE-----\n",
            b64(&[0x88, 0x5E, 4, 0, 1, 2, 3])
        );
        assert!(is_signature(sig.as_bytes()));
        let with_csv = format!("{sig}name,ssn\nPat,536-22-4817\n");
        assert!(!is_signature(with_csv.as_bytes()));
        assert!(!is_signature(b"name,ssn\nPat,536-22-4817\n"));
        assert!(is_pgp_mime_control(b"Version: 1\r\n"));
        assert!(!is_pgp_mime_control(b"Version: 1\nSSN 536-22-4817\n"));
    }

    #[test]
    fn cms_content_types() {
        // ContentInfo { envelopedData, [0] { ... } }
        let mut env = vec![0x30, 0x0F, 0x06, 0x09];
        env.extend_from_slice(OID_ENVELOPED);
        env.extend_from_slice(&[0xA0, 0x02, 0x30, 0x00]);
        assert_eq!(smime_kind(&env), Some(Cms::Enveloped));
        // signedData with and without eContent.
        let signed = |with_content: bool| {
            let mut encap = vec![0x06, 0x09];
            encap.extend_from_slice(&[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01]);
            if with_content {
                encap.extend_from_slice(&[0xA0, 0x05, 0x04, 0x03, b'h', b'i', b'!']);
            }
            let mut sd = vec![0x02, 0x01, 0x01, 0x31, 0x00, 0x30, encap.len() as u8];
            sd.extend_from_slice(&encap);
            let mut explicit = vec![0x30, sd.len() as u8];
            explicit.extend_from_slice(&sd);
            let mut body = vec![0x06, 0x09];
            body.extend_from_slice(OID_SIGNED);
            body.push(0xA0);
            body.push(explicit.len() as u8);
            body.extend_from_slice(&explicit);
            let mut ci = vec![0x30, body.len() as u8];
            ci.extend_from_slice(&body);
            ci
        };
        assert_eq!(smime_kind(&signed(true)), Some(Cms::Signed));
        assert_eq!(smime_kind(&signed(false)), Some(Cms::DetachedSignature));
        assert!(is_signature(&signed(false)));
        let pem = format!(
            "-----BEGIN PKCS7-----\n{}\n-----END PKCS7-----\n",
            b64(&env)
        );
        assert_eq!(smime_kind(pem.as_bytes()), Some(Cms::Enveloped));
        assert_eq!(smime_kind(b"name,ssn\nPat,536-22-4817\n"), None);
        assert_eq!(smime_kind(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]), None);
    }
}

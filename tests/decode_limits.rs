//! Limits and bad input in the decoders: every case gives a defined result, never a panic,
//! and the rest of the message is still scanned.

use maildlp::decode::Ctx;
use maildlp::limits::Limits;
use std::io::{Cursor, Write};
use zip::write::SimpleFileOptions;

// The recording sink shared with the PDF decoder tests.
#[allow(dead_code)]
#[path = "decode_pdf/common.rs"]
mod common;
use common::Recorder as Record;

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(*name, SimpleFileOptions::default())
            .expect("start entry");
        w.write_all(data).expect("write entry");
    }
    w.finish().expect("finish zip").into_inner()
}

fn decode(limits: &Limits, name: &str, data: &[u8]) -> Record {
    let mut rec = Record::default();
    let mut ctx = Ctx::new(limits, &mut rec);
    ctx.attachment(&format!("attachment:{name}"), name, None, data, 0);
    rec
}

#[test]
fn nesting_past_the_depth_limit_is_reported_and_shallower_text_kept() {
    let mut data = zip_of(&[("note.txt", b"innermost")]);
    for i in 0..12 {
        let name = format!("level{i}.zip");
        data = zip_of(&[(name.as_str(), &data), ("top.txt", b"shallow text")]);
    }
    let rec = decode(&Limits::default(), "deep.zip", &data);
    assert!(
        rec.unscannable
            .iter()
            .any(|(_, r)| r.contains("nesting depth")),
        "{:?}",
        rec.unscannable
    );
    assert!(rec.texts.iter().any(|(_, t)| t == "shallow text"));
    assert!(!rec.texts.iter().any(|(_, t)| t == "innermost"));
}

#[test]
fn archive_entry_limit_keeps_what_was_read() {
    let names: Vec<String> = (0..50).map(|i| format!("f{i:02}.txt")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let data = zip_of(&entries);
    let limits = Limits {
        max_archive_entries: 10,
        ..Limits::default()
    };
    let rec = decode(&limits, "many.zip", &data);
    // Ten entries read, and the name of each (names are scanned too).
    let contents = rec.texts.iter().filter(|(l, _)| !l.ends_with("/name"));
    assert_eq!(contents.count(), 10);
    assert_eq!(rec.texts.len(), 20);
    assert!(
        rec.unscannable
            .iter()
            .any(|(l, r)| l == "attachment:many.zip" && r.contains("entry limit"))
    );
}

#[test]
fn decoded_budget_bounds_the_message() {
    let big = vec![b'a'; 400_000];
    let data = zip_of(&[("a.txt", &big), ("b.txt", &big), ("c.txt", &big)]);
    let limits = Limits {
        max_decoded_bytes: 1_000_000,
        ..Limits::default()
    };
    let rec = decode(&limits, "big.zip", &data);
    let total: usize = rec.texts.iter().map(|(_, t)| t.len()).sum();
    assert!(total <= 1_000_000);
    assert!(
        rec.unscannable
            .iter()
            .any(|(_, r)| r.contains("decoded size limit"))
    );
}

#[test]
fn corrupt_containers_are_unscannable_not_panics() {
    let mut truncated = zip_of(&[("a.txt", b"hello world hello world")]);
    truncated.truncate(truncated.len() / 2);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("broken.zip", truncated),
        (
            "broken.pdf",
            b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ntrailer <<".to_vec(),
        ),
        ("broken.doc", {
            let mut d = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
            d.extend_from_slice(&[0xFF; 600]);
            d
        }),
        (
            "broken.gz",
            vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad],
        ),
        (
            "random.bin",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
        ),
    ];
    for (name, data) in cases {
        let rec = decode(&Limits::default(), name, &data);
        assert!(
            !rec.unscannable.is_empty(),
            "{name}: expected an unscannable report, got texts {:?}",
            rec.texts.len()
        );
    }
}

#[test]
fn time_limit_stops_work() {
    let names: Vec<String> = (0..200).map(|i| format!("f{i}.txt")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let data = zip_of(&entries);
    let limits = Limits {
        max_scan_millis: 0,
        ..Limits::default()
    };
    let rec = decode(&limits, "slow.zip", &data);
    assert!(
        rec.unscannable
            .iter()
            .any(|(_, r)| r.contains("time limit"))
    );
}

#[test]
fn truncated_and_corrupted_fixtures_never_panic() {
    use maildlp::detect::Detector;
    use maildlp::scan::Scanner;
    let scanner = Scanner::new(Detector::new(&[]).expect("patterns"), Limits::default());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scan");
    let mut scanned = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        let raw = std::fs::read(&path).expect("fixture");
        if raw.len() > 200_000 {
            continue;
        }
        for i in 1..12 {
            let cut = raw.len() * i / 12;
            scanner.scan(&raw[..cut]);
            // Flip bytes through the second half (base64 bodies, archive headers).
            let mut bad = raw.clone();
            let mut pos = raw.len() / 2 + i * 7;
            while pos < bad.len() {
                bad[pos] ^= 0x5a;
                pos += 97;
            }
            scanner.scan(&bad);
            scanned += 2;
        }
    }
    assert!(scanned > 1000, "scanned {scanned} variants");
}

fn stored_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        w.start_file(*name, opts).expect("start entry");
        w.write_all(data).expect("write entry");
    }
    w.finish().expect("finish zip").into_inner()
}

#[test]
fn a_wrong_checksum_does_not_hide_the_content() {
    let mut data = stored_zip(&[("note.txt", b"hidden text behind a bad crc")]);
    // Flip the CRC in the local header (offset 14) and in the central directory (offset 16).
    data[14] ^= 0xFF;
    let central = data
        .windows(4)
        .position(|w| w == b"PK\x01\x02")
        .expect("central directory");
    data[central + 16] ^= 0xFF;
    let rec = decode(&Limits::default(), "crc.zip", &data);
    assert!(
        rec.texts
            .iter()
            .any(|(_, t)| t.contains("behind a bad crc")),
        "content must still be scanned"
    );
    assert!(rec.unscannable.iter().any(|(_, r)| r.contains("corrupt")));
}

#[test]
fn a_zip_declaring_a_huge_directory_is_refused_before_parsing() {
    let mut data = stored_zip(&[("pad.bin", &vec![0u8; 3_200_000])]);
    let eocd = data.len() - 22;
    assert_eq!(&data[eocd..eocd + 4], b"PK\x05\x06");
    for off in [8, 10] {
        data[eocd + off] = 0xFE;
        data[eocd + off + 1] = 0xFF;
    }
    let rec = decode(&Limits::default(), "huge.zip", &data);
    assert!(
        rec.unscannable
            .iter()
            .any(|(_, r)| r.contains("entry limit")),
        "{:?}",
        rec.unscannable
    );
}

#[test]
fn pgp_mime_is_one_encrypted_part_not_two() {
    let raw = b"From: a@city.test\r\nTo: b@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"pgp-boundary-42\"\r\n\r\n\
--pgp-boundary-42\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\
--pgp-boundary-42\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\r\n\
-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA0xyz\r\n-----END PGP MESSAGE-----\r\n--pgp-boundary-42--\r\n";
    let scanner = maildlp::scan::Scanner::new(
        maildlp::detect::Detector::new(&[]).expect("patterns"),
        Limits::default(),
    );
    let report = scanner.scan(raw);
    let kinds: Vec<(&str, &str)> = report
        .encrypted
        .iter()
        .map(|e| (e.kind.as_str(), e.location.as_str()))
        .collect();
    assert_eq!(kinds, vec![("pgp", "attachment:encrypted.asc")]);
    assert!(report.unscannable.is_empty(), "{:?}", report.unscannable);
}

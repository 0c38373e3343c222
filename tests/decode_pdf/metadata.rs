//! PDF parts outside the pages (issue 13, class 6): the document information dictionary, XMP
//! metadata streams and embedded files.

use crate::common::*;
use crate::pdf::stream_obj;
use std::io::Write;

/// A PDF of `objects` (object 1 is the catalog) with a trailer naming `/Info 2 0 R` when
/// `info` is set.
fn pdf_with(objects: &[Vec<u8>], info: bool) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n".to_vec();
    for (i, body) in objects.iter().enumerate() {
        writeln!(out, "{} 0 obj", i + 1).unwrap();
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let info = if info { " /Info 2 0 R" } else { "" };
    write!(
        out,
        "trailer\n<< /Size {} /Root 1 0 R{info} >>\n%%EOF\n",
        objects.len() + 1
    )
    .unwrap();
    out
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Catalog (1), info (2), pages (3), one page (4) with `page_text` (5), then `more` from 6.
fn doc(page_text: &str, catalog_extra: &str, info: &str, more: Vec<Vec<u8>>) -> Vec<u8> {
    let mut objects = vec![
        format!("<< /Type /Catalog /Pages 3 0 R {catalog_extra} >>").into_bytes(),
        format!("<< {info} >>").into_bytes(),
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 3 0 R /Contents 5 0 R >>".to_vec(),
        stream_obj("", format!("BT 10 10 Td ({page_text}) Tj ET").as_bytes()),
    ];
    objects.extend(more);
    pdf_with(&objects, true)
}

#[test]
fn info_dictionary_entries_are_read() {
    let data = doc(
        "Quarterly review",
        "",
        "/Title (Roster) /Keywords (Employee SSN: 536-22-4817) /Custom <FEFF00530053004E003A0020003500330036> /CreationDate (D:20261130)",
        vec![],
    );
    let r = decode("info.pdf", &data);
    r.assert_text("attachment:info.pdf", "Quarterly review");
    r.assert_text("attachment:info.pdf", "Keywords: Employee SSN: 536-22-4817");
    r.assert_text("attachment:info.pdf", "Custom: SSN: 536");
    r.assert_nowhere("D:20261130");
}

#[test]
fn xmp_metadata_element_and_attribute_values_are_read() {
    let xmp = br#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/" pdf:Keywords="Employee SSN: 536-22-4817" xmpMM:DocumentID="uuid:1234">
<dc:description><rdf:Alt><rdf:li xml:lang="x-default">Payroll &amp; benefits 2026</rdf:li></rdf:Alt></dc:description>
</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>"#;
    let data = doc(
        "Quarterly review",
        "/Metadata 6 0 R",
        "",
        vec![stream_obj(
            "/Type /Metadata /Subtype /XML /Filter /FlateDecode",
            &deflate(xmp),
        )],
    );
    let r = decode("xmp.pdf", &data);
    r.assert_text("attachment:xmp.pdf", "Employee SSN: 536-22-4817");
    r.assert_text("attachment:xmp.pdf", "Payroll & benefits 2026");
    r.assert_nowhere("uuid:1234");
    r.assert_nowhere("http://ns.adobe.com");
}

#[test]
fn embedded_files_are_decoded_as_attachments() {
    let csv = b"name,ssn\nPat,536-22-4817\n";
    let data = doc(
        "See the attached file",
        "/Names << /EmbeddedFiles << /Names [(roster.csv) 6 0 R] >> >>",
        "",
        vec![
            b"<< /Type /Filespec /F (old.csv) /UF (dir/roster.csv) /EF << /F 7 0 R >> >>".to_vec(),
            stream_obj("/Type /EmbeddedFile /Filter /FlateDecode", &deflate(csv)),
            // A stream typed as an embedded file but named by no file specification.
            stream_obj("/Type /EmbeddedFile", b"Employee SSN: 536-22-4817\n"),
            // One this reader cannot decode: reported, not silent.
            stream_obj("/Type /EmbeddedFile /Filter /JBIG2Decode", b"\x00\x01\x02"),
        ],
    );
    let r = decode("portfolio.pdf", &data);
    r.assert_text("attachment:portfolio.pdf", "See the attached file");
    r.assert_text("attachment:portfolio.pdf/roster.csv", "Pat,536-22-4817");
    r.assert_text(
        "attachment:portfolio.pdf/embedded-2",
        "Employee SSN: 536-22-4817",
    );
    r.assert_unscannable(
        "attachment:portfolio.pdf",
        "embedded file with an unsupported filter",
    );
}

#[test]
fn pdfs_embedded_in_pdfs_stop_at_the_depth_limit() {
    let mut data = doc("innermost", "", "", vec![]);
    for level in 0..12 {
        data = doc(
            &format!("level {level}"),
            "",
            "",
            vec![
                b"<< /Type /Filespec /F (inner.pdf) /EF << /F 7 0 R >> >>".to_vec(),
                stream_obj("/Type /EmbeddedFile", &data),
            ],
        );
    }
    let r = decode("outer.pdf", &data);
    r.assert_text("attachment:outer.pdf", "level 11");
    r.assert_text("attachment:outer.pdf/inner.pdf", "level 10");
    assert!(
        r.text_locations().iter().all(|l| !l.contains("innermost")),
        "the innermost file is beyond the depth limit"
    );
    let deep = r
        .text_locations()
        .iter()
        .filter(|l| !l.ends_with("/name"))
        .map(|l| l.matches('/').count())
        .max()
        .unwrap();
    assert_eq!(
        deep, 8,
        "read {deep} levels deep (the default depth limit is 8)"
    );
    assert!(r.has_unscannable(
        "attachment:outer.pdf/inner.pdf/inner.pdf/inner.pdf/inner.pdf/inner.pdf/inner.pdf/inner.pdf/inner.pdf/inner.pdf",
        "nesting depth limit reached"
    ));
}

#[test]
fn bookmarks_and_link_addresses_are_read() {
    let data = doc(
        "Quarterly review",
        "/Outlines 6 0 R",
        "",
        vec![
            b"<< /Type /Outlines /First 7 0 R /Last 8 0 R >>".to_vec(),
            b"<< /Title (Chapter one) /Parent 6 0 R /Next 8 0 R /First 9 0 R >>".to_vec(),
            b"<< /Title (Employee SSN: 536-22-4817) /Parent 6 0 R /Prev 7 0 R /Next 7 0 R >>".to_vec(),
            b"<< /Title (Section 1.1) /Parent 7 0 R >>".to_vec(),
            b"<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] /A << /S /URI /URI (https://hr.city.test/?id=8842) >> >>".to_vec(),
        ],
    );
    let r = decode("book.pdf", &data);
    r.assert_text(
        "attachment:book.pdf",
        "Chapter one\nSection 1.1\nEmployee SSN: 536-22-4817",
    );
    r.assert_text("attachment:book.pdf", "https://hr.city.test/?id=8842");
}

//! PDF text: documents written with lopdf and by hand (for what lopdf will not write:
//! hostile nesting, bombs, broken structure).

use crate::common::*;
use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};
use std::io::Write;
use std::time::{Duration, Instant};

fn op(name: &str, operands: Vec<Object>) -> Operation {
    Operation::new(name, operands)
}

fn s(text: &str) -> Object {
    Object::string_literal(text)
}

/// A document of one page per content, with font F1 (Helvetica, WinAnsi), written by lopdf.
fn lopdf_doc(
    pages: Vec<Vec<Operation>>,
    extra: impl FnOnce(&mut Document, lopdf::ObjectId),
) -> Document {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    let mut kids = Vec::new();
    for operations in pages {
        let content = Content { operations };
        let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        });
        kids.push(page_id.into());
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    doc.trailer.set("Root", catalog_id);
    extra(&mut doc, catalog_id);
    doc
}

fn save(doc: &mut Document) -> Vec<u8> {
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

fn line(x: i64, y: i64, text: &str) -> Vec<Operation> {
    vec![
        op("BT", vec![]),
        op("Tf", vec!["F1".into(), 12.into()]),
        op("Td", vec![x.into(), y.into()]),
        op("Tj", vec![s(text)]),
        op("ET", vec![]),
    ]
}

#[test]
fn text_of_pages_in_order_with_lines_and_word_gaps() {
    let page1 = vec![
        op("BT", vec![]),
        op("Tf", vec!["F1".into(), 12.into()]),
        op("Td", vec![72.into(), 700.into()]),
        op("Tj", vec![s("Employee")]),
        // Next line.
        op("Td", vec![0.into(), (-14).into()]),
        op("Tj", vec![s("SSN")]),
        // Same line, a gap: a space.
        op("Td", vec![40.into(), 0.into()]),
        op("Tj", vec![s("123-45-")]),
        // Kerning inside a number is not a gap; a large adjustment is.
        op(
            "TJ",
            vec![Object::Array(vec![
                s("67"),
                (-20).into(),
                s("80"),
                (-600).into(),
                s("ok"),
            ])],
        ),
        op("ET", vec![]),
    ];
    let page2 = line(72, 700, "Second page caf\u{e9}");
    let mut doc = lopdf_doc(vec![page1, page2], |_, _| {});
    doc.compress();
    let r = decode("scan.pdf", &save(&mut doc));
    let loc = "attachment:scan.pdf";
    r.assert_text(loc, "Employee\nSSN 123-45-6780 ok");
    r.assert_text(loc, "Second page");
    let text = r.text_at(loc);
    assert!(text.find("Employee").unwrap() < text.find("Second page").unwrap());
    assert!(r.unscannable.is_empty(), "{:?}", r.unscannable);
}

#[test]
fn object_streams_and_xref_streams() {
    let mut doc = lopdf_doc(vec![line(72, 700, "SSN 123-45-6780")], |_, _| {});
    let mut out = Vec::new();
    let options = lopdf::SaveOptions::builder()
        .use_object_streams(true)
        .use_xref_streams(true)
        .build();
    doc.save_with_options(&mut out, options).unwrap();
    assert!(
        memchr::memmem::find(&out, b"/ObjStm").is_some(),
        "the test needs an object stream"
    );
    let r = decode("modern.pdf", &out);
    r.assert_text("attachment:modern.pdf", "SSN 123-45-6780");
}

#[test]
fn encrypted_pdf_is_reported_not_read() {
    let mut doc = lopdf_doc(vec![line(72, 700, "SSN 123-45-6780")], |doc, _| {
        let encrypt = doc.add_object(dictionary! {
            "Filter" => "Standard", "V" => 2, "R" => 3, "Length" => 128, "P" => -4,
        });
        doc.trailer.set("Encrypt", encrypt);
    });
    let r = decode("locked.pdf", &save(&mut doc));
    assert_eq!(
        r.encrypted,
        vec![("attachment:locked.pdf".into(), "pdf".into())]
    );
    assert!(r.texts.is_empty());
}

#[test]
fn form_fields_annotations_and_form_xobjects() {
    let form_content = Content {
        operations: line(10, 10, "Stamp: APPROVED"),
    };
    let mut doc = lopdf_doc(vec![vec![op("Do", vec!["X1".into()])]], |doc, catalog| {
        let font = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Courier",
        });
        let form = doc.add_object(Stream::new(
            dictionary! {
                "Type" => "XObject", "Subtype" => "Form",
                "BBox" => vec![0.into(), 0.into(), 100.into(), 100.into()],
                "Resources" => dictionary! { "Font" => dictionary! { "F1" => font } },
            },
            form_content.encode().unwrap(),
        ));
        let field = doc.add_object(dictionary! {
            "FT" => "Tx", "T" => s("ssn"), "V" => s("123-45-6780"),
        });
        let note = doc.add_object(dictionary! {
            "Type" => "Annot", "Subtype" => "Text",
            "Contents" => Object::String(
                lopdf::encode_utf16_be("Reviewer: card 4111 1111 1111 1111"),
                lopdf::StringFormat::Hexadecimal,
            ),
        });
        let page_id = doc.get_pages()[&1];
        let page = doc.get_dictionary_mut(page_id).unwrap();
        page.set("Annots", vec![note.into()]);
        page.set(
            "Resources",
            dictionary! { "XObject" => dictionary! { "X1" => form } },
        );
        let acroform = doc.add_object(dictionary! { "Fields" => vec![field.into()] });
        doc.get_dictionary_mut(catalog)
            .unwrap()
            .set("AcroForm", acroform);
    });
    let r = decode("form.pdf", &save(&mut doc));
    let loc = "attachment:form.pdf";
    r.assert_text(loc, "Stamp: APPROVED");
    r.assert_text(loc, "ssn: 123-45-6780");
    r.assert_text(loc, "Reviewer: card 4111 1111 1111 1111");
}

/// A PDF written by hand: objects numbered from 1, an xref table, `/Root 1 0 R`.
pub(crate) fn hand_pdf(objects: &[Vec<u8>], with_xref: bool) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        writeln!(out, "{} 0 obj", i + 1).unwrap();
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    if with_xref {
        let xref = out.len();
        write!(out, "xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).unwrap();
        for o in &offsets {
            writeln!(out, "{o:010} 00000 n ").unwrap();
        }
        write!(
            out,
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .unwrap();
    }
    out
}

pub(crate) fn stream_obj(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut out = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\nendstream");
    out
}

/// Catalog, pages, one page with `content` (object 4) and fonts from object 5 on.
pub(crate) fn one_page(content: Vec<u8>, fonts: &str, more: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        format!(
            "<< /Type /Page /Parent 2 0 R /Contents 4 0 R /Resources << /Font << {fonts} >> >> >>"
        )
        .into_bytes(),
        content,
    ];
    objects.extend(more);
    objects
}

#[test]
fn type0_font_with_tounicode_cmap() {
    let cmap = b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap
1 begincodespacerange <0000> <FFFF> endcodespacerange
2 beginbfchar <0003> <0020> <0010> <002D> endbfchar
2 beginbfrange <0013> <001C> <0030> <0036> <0038> [<0053> <0053> <004E>] endbfrange
1 beginbfrange <00000000> <FFFFFFFF> <0041> endbfrange
endcmap CMapName currentdict /CMap defineresource pop end end";
    // Glyph ids: S S N space 1 2 3 - 4 5 - 6 7 8 0 (digits 0-9 are 0x13-0x1C).
    let content = b"BT /F1 11 Tf 72 700 Td <003600370038000300140015001600100017001800100019001A001B0013> Tj ET";
    let objects = one_page(
        stream_obj("", content),
        "/F1 5 0 R",
        vec![
            b"<< /Type /Font /Subtype /Type0 /BaseFont /ABCDEF+Arial /Encoding /Identity-H /DescendantFonts [6 0 R] /ToUnicode 7 0 R >>".to_vec(),
            b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /ABCDEF+Arial /DW 500 /W [3 [278] 16 18 333] >>".to_vec(),
            stream_obj("", cmap),
        ],
    );
    let started = Instant::now();
    let r = decode("cid.pdf", &hand_pdf(&objects, true));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "ranges are not expanded"
    );
    r.assert_text("attachment:cid.pdf", "SSN 123-45-6780");
}

#[test]
fn differences_encoding_and_missing_xref() {
    let content = b"BT /F1 10 Tf 50 50 Td (\x01\x02\x03 \x04\x05\x06) Tj ET";
    let objects = one_page(
        stream_obj("", content),
        "/F1 5 0 R",
        vec![b"<< /Type /Font /Subtype /Type1 /BaseFont /X /Encoding << /BaseEncoding /WinAnsiEncoding /Differences [1 /S /S /N 4 /one /two /uni0033] >> >>".to_vec()],
    );
    // No xref table and no trailer at all: objects are found by scanning.
    let r = decode("nox.pdf", &hand_pdf(&objects, false));
    r.assert_text("attachment:nox.pdf", "SSN 123");
}

#[test]
fn deep_nesting_does_not_overflow() {
    let depth = 500_000;
    let mut nested = Vec::new();
    nested.extend(std::iter::repeat_n(b'[', depth));
    nested.extend(std::iter::repeat_n(b']', depth));
    let content = b"BT /F1 12 Tf 10 10 Td (SSN 123-45-6780) Tj ET".to_vec();
    let mut deep_content = content.clone();
    deep_content.extend(std::iter::repeat_n(b'[', depth));
    let objects = one_page(
        stream_obj("", &deep_content),
        "/F1 5 0 R",
        vec![
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
            nested,
        ],
    );
    let started = Instant::now();
    let r = decode("deep.pdf", &hand_pdf(&objects, true));
    assert!(started.elapsed() < Duration::from_secs(10));
    r.assert_text("attachment:deep.pdf", "SSN 123-45-6780");
    r.assert_unscannable("attachment:deep.pdf", "nesting depth limit");
}

#[test]
fn content_stream_bomb_is_stopped() {
    let deflated = deflated_zeros(200);
    let objects = one_page(
        stream_obj("/Filter /FlateDecode", &{
            // zlib wrapper around the raw deflate data.
            let mut z = vec![0x78, 0xDA];
            z.extend_from_slice(&deflated);
            z
        }),
        "",
        vec![],
    );
    let started = Instant::now();
    let r = decode("bomb.pdf", &hand_pdf(&objects, true));
    assert!(started.elapsed() < Duration::from_secs(5));
    r.assert_unscannable("attachment:bomb.pdf", "expansion ratio limit reached");
}

#[test]
fn image_only_and_corrupt_pdfs() {
    let objects = one_page(
        stream_obj("", b"q 100 0 0 100 0 0 cm /Im1 Do Q"),
        "",
        vec![],
    );
    let r = decode("scan.pdf", &hand_pdf(&objects, true));
    r.assert_unscannable("attachment:scan.pdf", "no text layer");

    let r = decode("junk.pdf", b"%PDF-1.4\nthis is not a pdf at all");
    r.assert_unscannable("attachment:junk.pdf", "corrupt PDF: no objects");

    // Truncated in the middle of its last object: the page text before it is still read.
    let objects = one_page(
        stream_obj("", b"BT (SSN 123-45-6780) Tj ET"),
        "",
        vec![b"<< /Broken [1 2 (unterminated".to_vec()],
    );
    let mut data = hand_pdf(&objects, false);
    data.truncate(data.len() - 10);
    let r = decode("cut.pdf", &data);
    r.assert_text("attachment:cut.pdf", "SSN 123-45-6780");
}

#[test]
fn object_stream_bomb_is_skipped_and_the_rest_read() {
    let mut bomb = vec![0x78, 0xDA];
    bomb.extend_from_slice(&deflated_zeros(100));
    let objects = one_page(
        stream_obj("", b"BT (SSN 123-45-6780) Tj ET"),
        "",
        vec![stream_obj(
            "/Type /ObjStm /N 1 /First 4 /Filter /FlateDecode",
            &bomb,
        )],
    );
    let started = Instant::now();
    let r = decode("objstm.pdf", &hand_pdf(&objects, true));
    assert!(started.elapsed() < Duration::from_secs(5));
    r.assert_text("attachment:objstm.pdf", "SSN 123-45-6780");
    r.assert_unscannable("attachment:objstm.pdf", "expansion ratio limit reached");
}

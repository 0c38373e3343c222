//! PDF: encryption is reported, text is extracted page by page with lopdf.

use super::Ctx;
use std::panic::{AssertUnwindSafe, catch_unwind};

pub fn extract(ctx: &mut Ctx<'_>, location: &str, data: &[u8]) {
    // lopdf can panic on hostile input: a panic is a corrupt file, never a crash of the filter.
    let loaded = catch_unwind(AssertUnwindSafe(|| lopdf::Document::load_mem(data)));
    let doc = match loaded {
        Ok(Ok(doc)) => doc,
        Ok(Err(e)) => {
            if has_encrypt_entry(data) {
                ctx.encrypted(location, "pdf");
            } else {
                ctx.unscannable(location, &format!("corrupt PDF: {e}"));
            }
            return;
        }
        Err(_) => {
            ctx.unscannable(location, "corrupt PDF (the PDF reader failed on it)");
            return;
        }
    };
    if doc.is_encrypted() || has_encrypt_entry(data) {
        // Reported as encrypted even when it opens with an empty user password: the policy
        // judges encrypted attachments; what could be read is still scanned below.
        ctx.encrypted(location, "pdf");
    }
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    let mut text = String::new();
    for page in pages {
        if let Err(stop) = ctx.check_time() {
            ctx.unscannable(location, stop.reason());
            break;
        }
        // A page whose text cannot be extracted is skipped; the others are still scanned.
        if let Ok(Ok(t)) = catch_unwind(AssertUnwindSafe(|| doc.extract_text(&[page]))) {
            text.push_str(&t);
            text.push('\n');
        }
        if text.len() > ctx.remaining_budget() {
            break;
        }
    }
    ctx.emit_text(location, &text);
}

/// An `/Encrypt` key in the trailer (looked for in the raw bytes when parsing failed).
fn has_encrypt_entry(data: &[u8]) -> bool {
    memchr::memmem::find(data, b"/Encrypt").is_some()
}

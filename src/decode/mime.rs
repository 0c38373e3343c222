//! The MIME walk: headers we report, the subject, bodies, and attachments handed to the
//! format dispatcher in [`super::Ctx::attachment`].

use super::Ctx;
use mail_parser::{
    Address, HeaderName, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};
use serde::Serialize;

/// What the message says about itself: who sent it and to how many.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MessageInfo {
    pub message_id: Option<String>,
    /// The From address (address only, lower-case).
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    /// The decoded Subject. Never printed: it may hold a sensitive value (the quarantine keeps
    /// it sealed and shows it only when no finding is in it).
    #[serde(skip)]
    pub subject: Option<String>,
    /// Whether mail-parser could make a message of the bytes at all.
    pub parsed: bool,
}

/// Decode a whole message: reports the subject, every body and every attachment to the sink
/// through `ctx`, and returns the header information.
pub fn decode_message(ctx: &mut Ctx<'_>, raw: &[u8]) -> MessageInfo {
    let Some(message) = MessageParser::default().parse(raw) else {
        ctx.unscannable("message", "not a parseable e-mail message");
        return MessageInfo::default();
    };
    let info = MessageInfo {
        message_id: message.message_id().map(str::to_string),
        from: message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(|a| a.trim().to_ascii_lowercase()),
        // Every To/Cc/Bcc header counts: a second To: must not hide half of a mass mailing.
        to: addresses(message.all_to()),
        cc: addresses(message.all_cc()),
        bcc: addresses(message.all_bcc()),
        subject: message.subject().map(str::to_string),
        parsed: true,
    };
    walk(ctx, &message, "", 0);
    info
}

/// Decode a nested message found as an attachment (or inside an archive) at `location`.
pub fn nested(ctx: &mut Ctx<'_>, location: &str, raw: &[u8], depth: usize) {
    if depth > ctx.limits.max_depth {
        ctx.unscannable(location, "nesting depth limit reached");
        return;
    }
    match MessageParser::default().parse(raw) {
        Some(message) => walk(ctx, &message, location, depth),
        None => ctx.unscannable(location, "corrupt nested message"),
    }
}

fn addresses<'a>(headers: impl Iterator<Item = &'a Address<'a>>) -> Vec<String> {
    headers
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address())
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// When a part declared as text decoded to something that is not text (replacement characters
/// or NUL bytes), its bytes as transferred, if they are a binary format the decoder knows: a
/// label must not turn an archive into garbled text that hides what it holds.
fn binary_behind_text(
    message: &Message<'_>,
    part: &MessagePart<'_>,
    text: &str,
) -> Option<Vec<u8>> {
    if !text.contains(['\u{FFFD}', '\0']) {
        return None;
    }
    let raw = message.raw_message();
    let body = raw.get(part.raw_body_offset() as usize..part.raw_end_offset() as usize)?;
    let encoding = part
        .content_transfer_encoding()
        .unwrap_or("")
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "base64" => lenient_base64(body)?,
        "quoted-printable" => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(body)?
        }
        _ => body.to_vec(),
    };
    match super::Format::sniff("", None, &bytes) {
        super::Format::Text | super::Format::Html | super::Format::Unknown(_) => None,
        _ => Some(bytes),
    }
}

/// The body of a part whose transfer encoding mail-parser could not undo, decoded leniently.
fn lenient_transfer_decode(part: &MessagePart<'_>) -> Option<Vec<u8>> {
    let encoding = part
        .content_transfer_encoding()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if encoding != "base64" {
        return None;
    }
    let raw = match &part.body {
        PartType::Text(t) | PartType::Html(t) => t.as_bytes(),
        PartType::Binary(b) | PartType::InlineBinary(b) => b.as_ref(),
        _ => return None,
    };
    lenient_base64(raw).filter(|b| !b.is_empty())
}

/// Base64 as RFC 2045 says to read it: characters outside the alphabet are ignored.
pub fn lenient_base64(data: &[u8]) -> Option<Vec<u8>> {
    let clean: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        .collect();
    mail_parser::decoders::base64::base64_decode(&clean)
}

/// `prefix` + `/` + `leaf`, or `leaf` at the top level.
fn join(prefix: &str, leaf: &str) -> String {
    if prefix.is_empty() {
        leaf.to_string()
    } else {
        format!("{prefix}/{leaf}")
    }
}

/// Walk one (possibly nested) message. `prefix` is the location of the message itself (empty
/// for the top-level message), `depth` its container depth.
fn walk(ctx: &mut Ctx<'_>, message: &Message<'_>, prefix: &str, depth: usize) {
    // Display names and the subject are text a person wrote, so they are scanned too.
    if let Some(subject) = message.subject() {
        ctx.emit_text(&join(prefix, "subject"), subject);
    }
    // Every address header, each instance (a second To:, Reply-To, Sender).
    let names: Vec<&str> = [
        HeaderName::From,
        HeaderName::Sender,
        HeaderName::ReplyTo,
        HeaderName::To,
        HeaderName::Cc,
        HeaderName::Bcc,
    ]
    .into_iter()
    .flat_map(|h| message.header_values(h))
    .filter_map(|v| v.as_address())
    .flat_map(|a| a.iter())
    .filter_map(|a| a.name())
    .collect();
    if !names.is_empty() {
        ctx.emit_text(&join(prefix, "display-names"), &names.join("\n"));
    }
    // Free-text headers a person can fill in: Comments, Keywords, and each part's
    // Content-Description.
    let mut free: Vec<&str> = [HeaderName::Comments, HeaderName::Keywords]
        .into_iter()
        .flat_map(|h| message.header_values(h))
        .filter_map(|v| v.as_text_list())
        .flatten()
        .map(|t| t.as_ref())
        .collect();
    free.extend(message.parts.iter().filter_map(|p| p.content_description()));
    if !free.is_empty() {
        ctx.emit_text(&join(prefix, "headers"), &free.join("\n"));
    }

    for (index, part) in message.parts.iter().enumerate() {
        if let Err(stop) = ctx.check_time() {
            ctx.unscannable(&join(prefix, "message"), stop.reason());
            return;
        }
        if matches!(part.body, PartType::Multipart(_)) {
            continue;
        }
        if !ctx.count_part() {
            ctx.unscannable(&join(prefix, "message"), "part count limit reached");
            return;
        }
        let is_attachment = message.attachments.contains(&(index as u32));
        let name = part.attachment_name().unwrap_or("");
        let content_type = part.content_type().map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        });
        let attachment_location = || {
            let label = if name.is_empty() {
                format!("part{}", index + 1)
            } else {
                name.replace('/', "_")
            };
            join(prefix, &format!("attachment:{label}"))
        };
        if !name.is_empty() {
            ctx.emit_name(&attachment_location(), name);
        }
        // mail-parser gives up on base64 with a stray character and hands over the encoded
        // text; RFC 2045 says to ignore characters outside the alphabet, as a reader's mail
        // program does. Decode it that way and read the bytes for what they are.
        if part.is_encoding_problem
            && let Some(bytes) = lenient_transfer_decode(part)
        {
            let location =
                if is_attachment || !matches!(part.body, PartType::Text(_) | PartType::Html(_)) {
                    attachment_location()
                } else {
                    join(prefix, "body")
                };
            ctx.attachment(&location, name, content_type.as_deref(), &bytes, depth);
            continue;
        }
        match &part.body {
            PartType::Text(text) if content_type.as_deref() == Some("text/rtf") => {
                // RTF sent as a text part: its text, not its control words.
                let location = if is_attachment {
                    attachment_location()
                } else {
                    join(prefix, "body")
                };
                super::rtf::extract(ctx, &location, text.as_bytes());
            }
            PartType::Text(text) => {
                let location = if is_attachment {
                    attachment_location()
                } else {
                    join(prefix, "body")
                };
                // A zip, PDF or image labelled text/plain: read the bytes for what they are.
                if let Some(bytes) = binary_behind_text(message, part, text) {
                    ctx.attachment(&location, name, None, &bytes, depth);
                } else {
                    super::text::text_str(ctx, &location, text);
                }
            }
            PartType::Html(html) => {
                let location = if is_attachment {
                    attachment_location()
                } else {
                    join(prefix, "html")
                };
                super::text::html_str(ctx, &location, html);
            }
            PartType::Binary(data) | PartType::InlineBinary(data) => {
                let location = attachment_location();
                if part.is_encoding_problem && content_type.as_deref() == Some("message/rfc822") {
                    // mail-parser stops parsing nested messages past its own depth; parse again.
                    nested(ctx, &location, data, depth + 1);
                } else {
                    ctx.attachment(&location, name, content_type.as_deref(), data, depth);
                }
            }
            PartType::Message(inner) => {
                let location = if name.is_empty() {
                    join(prefix, &format!("attachment:message{}.eml", index + 1))
                } else {
                    attachment_location()
                };
                if depth + 1 > ctx.limits.max_depth {
                    ctx.unscannable(&location, "nesting depth limit reached");
                } else {
                    walk(ctx, inner, &location, depth + 1);
                }
            }
            PartType::Multipart(_) => {}
        }
    }
}

//! Encodings older mail programs still send inside text: uuencode (`begin 644 name` ... `end`,
//! in a body or as `Content-Transfer-Encoding: x-uuencode`) and yEnc (`=ybegin` ... `=yend`).
//! mail-parser does not decode them; a reader's mail program does, so the filter must too.
//! Hand-written: a few lines each, and no maintained crate decodes them from a text.

/// Blocks of uuencoded or yEnc data found in `text`: (file name, decoded bytes). At most
/// `max_blocks`, each at most `max_bytes`.
pub fn blocks(text: &str, max_blocks: usize, max_bytes: usize) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if out.len() >= max_blocks {
            break;
        }
        if let Some(name) = uu_begin(line) {
            let mut data = Vec::new();
            for l in lines.by_ref() {
                let l = l.trim_end_matches('\r');
                if l == "end" || l == "`" && data.len() > max_bytes {
                    break;
                }
                if data.len() < max_bytes {
                    uu_line(l, &mut data);
                }
                if l == "end" {
                    break;
                }
            }
            data.truncate(max_bytes);
            if !data.is_empty() {
                out.push((name, data));
            }
        } else if let Some(rest) = line.strip_prefix("=ybegin ") {
            let name = rest
                .split_once("name=")
                .map(|(_, n)| n.trim().to_string())
                .unwrap_or_default();
            let mut data = Vec::new();
            for l in lines.by_ref() {
                if l.starts_with("=yend") {
                    break;
                }
                if l.starts_with("=ypart ") || data.len() >= max_bytes {
                    continue;
                }
                yenc_line(l.trim_end_matches('\r'), &mut data);
            }
            data.truncate(max_bytes);
            if !data.is_empty() {
                out.push((name, data));
            }
        }
    }
    out
}

/// `begin MODE NAME` (MODE in octal).
fn uu_begin(line: &str) -> Option<String> {
    let rest = line.strip_prefix("begin ")?;
    let (mode, name) = rest.split_once(' ')?;
    if !(3..=4).contains(&mode.len()) || !mode.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    Some(name.trim().to_string())
}

fn uu_line(line: &str, out: &mut Vec<u8>) {
    let b = line.as_bytes();
    let Some(&first) = b.first() else {
        return;
    };
    let n = ((first.wrapping_sub(b' ')) & 63) as usize;
    let val = |c: u8| (c.wrapping_sub(b' ')) & 63;
    let mut got = Vec::with_capacity(n + 3);
    for quad in b[1..].chunks(4) {
        let q: Vec<u8> = (0..4).map(|i| val(*quad.get(i).unwrap_or(&b'`'))).collect();
        got.push((q[0] << 2) | (q[1] >> 4));
        got.push((q[1] << 4) | (q[2] >> 2));
        got.push((q[2] << 6) | q[3]);
    }
    got.truncate(n);
    out.extend_from_slice(&got);
}

fn yenc_line(line: &str, out: &mut Vec<u8>) {
    // The text reached us as characters; yEnc's bytes above 127 came through as Latin-1.
    let mut escaped = false;
    for c in line.chars() {
        let Ok(b) = u8::try_from(c as u32) else {
            continue;
        };
        if escaped {
            out.push(b.wrapping_sub(64).wrapping_sub(42));
            escaped = false;
        } else if b == b'=' {
            escaped = true;
        } else {
            out.push(b.wrapping_sub(42));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::blocks;

    #[test]
    fn uuencode_and_yenc() {
        // "Employee SSN: 536-22-4817\n" uuencoded (as `uuencode` writes it).
        let uu = "Hello\nbegin 644 ssn.txt\n:16UP;&]Y964@4U-..B`U,S8M,C(M-#@Q-PH`\n`\nend\nBye\n";
        let b = blocks(uu, 10, 1 << 20);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].0, "ssn.txt");
        assert_eq!(b[0].1, b"Employee SSN: 536-22-4817\n");
        let plain = b"SSN 536-22-4817";
        let enc: String = plain
            .iter()
            .map(|&x| x.wrapping_add(42))
            .map(|x| {
                if matches!(x, 0 | b'\n' | b'\r' | b'=') {
                    format!("={}", (x.wrapping_add(64)) as char)
                } else {
                    (x as char).to_string()
                }
            })
            .collect();
        let y = format!("=ybegin line=128 size=15 name=ssn.txt\n{enc}\n=yend size=15\n");
        let b = blocks(&y, 10, 1 << 20);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].1, plain);
        assert!(blocks("begin the meeting at 10\nend\n", 10, 100).is_empty());
    }
}

//! Stream filters: Flate, LZW, ASCIIHex, ASCII85, RunLength, all bounded.

use super::*;

pub(super) enum DecodeError {
    /// A filter we do not decode (images, encryption): the stream is skipped.
    Unsupported,
    /// A limit was reached: the reason.
    Limit(&'static str),
}

/// Decode a stream through its filters, charging the output to the budget. Each stage is
/// bounded by what is left of the budget, and inflation by the expansion ratio too.
pub(super) fn decode_stream(
    doc: &Pdf,
    dict: &Dict,
    raw: &[u8],
    budget: &mut Budget,
) -> Result<Vec<u8>, DecodeError> {
    let filters: Vec<Vec<u8>> = match dict.get(&b"Filter"[..]).map(|f| doc.resolve(f)) {
        None | Some(Obj::Null) => Vec::new(),
        Some(Obj::Name(n)) => vec![n.clone()],
        Some(Obj::Array(items)) => items
            .iter()
            .filter_map(|i| doc.resolve(i).as_name().map(<[u8]>::to_vec))
            .collect(),
        Some(_) => return Err(DecodeError::Unsupported),
    };
    if filters.len() > 4 {
        return Err(DecodeError::Unsupported);
    }
    let mut data: Vec<u8> = Vec::new();
    let mut input: &[u8] = raw;
    let left = budget.cap.saturating_sub(budget.used);
    for filter in &filters {
        let output = match filter.as_slice() {
            b"FlateDecode" | b"Fl" => inflate(input, left, budget.ratio)?,
            b"LZWDecode" | b"LZW" => lzw(input, left, budget.ratio)?,
            b"ASCIIHexDecode" | b"AHx" => ascii_hex(input),
            b"ASCII85Decode" | b"A85" => ascii85(input),
            b"RunLengthDecode" | b"RL" => run_length(input, left)?,
            _ => return Err(DecodeError::Unsupported),
        };
        if output.len() > left {
            return Err(DecodeError::Limit(budget.size_reason()));
        }
        data = output;
        input = &data;
    }
    if filters.is_empty() {
        if raw.len() > left {
            return Err(DecodeError::Limit(budget.size_reason()));
        }
        data = raw.to_vec();
    }
    budget.used += data.len();
    Ok(data)
}

/// zlib (or, for damaged files, raw deflate) with the cap and ratio. A stream damaged near its
/// end keeps what was decoded before the damage.
pub(super) fn inflate(input: &[u8], cap: usize, ratio: u64) -> Result<Vec<u8>, DecodeError> {
    let zlib_header = input.len() >= 2
        && input[0] & 0x0F == 8
        && (u16::from(input[0]) << 8 | u16::from(input[1])) % 31 == 0;
    let result = if zlib_header {
        let mut dec = flate2::read::ZlibDecoder::new(Counted::new(input));
        let consumed = |d: &flate2::read::ZlibDecoder<Counted<&[u8]>>| d.get_ref().count();
        read_bounded(&mut dec, cap, Some((ratio, &consumed)))
    } else {
        let mut dec = flate2::read::DeflateDecoder::new(Counted::new(input));
        let consumed = |d: &flate2::read::DeflateDecoder<Counted<&[u8]>>| d.get_ref().count();
        read_bounded(&mut dec, cap, Some((ratio, &consumed)))
    };
    match result {
        Ok(out) => Ok(out),
        Err(ReadStop::Io(_, partial)) => Ok(partial),
        Err(ReadStop::Size) => Err(DecodeError::Limit("part size limit reached")),
        Err(ReadStop::Ratio) => Err(DecodeError::Limit("expansion ratio limit reached")),
    }
}

/// LZW (early change, as PDF writers use), bounded like [`inflate`].
pub(super) fn lzw(input: &[u8], cap: usize, ratio: u64) -> Result<Vec<u8>, DecodeError> {
    let mut decoder = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut consumed = 0usize;
    loop {
        let rest = input.get(consumed..).unwrap_or(&[]);
        let result = decoder.decode_bytes(rest, &mut chunk);
        consumed += result.consumed_in;
        let produced = chunk.get(..result.consumed_out).unwrap_or(&[]);
        if out.len() + produced.len() > cap {
            return Err(DecodeError::Limit("part size limit reached"));
        }
        out.extend_from_slice(produced);
        if out.len() > crate::decode::bounded::RATIO_FLOOR
            && out.len() as u64 > (consumed as u64).saturating_mul(ratio)
        {
            return Err(DecodeError::Limit("expansion ratio limit reached"));
        }
        match result.status {
            Ok(weezl::LzwStatus::Ok) if result.consumed_in + result.consumed_out > 0 => {}
            _ => return Ok(out),
        }
    }
}

/// ASCIIHexDecode: hex digit pairs up to `>`, white space ignored, an odd last digit padded.
pub(super) fn ascii_hex(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 2);
    let mut high: Option<u8> = None;
    for &b in input {
        if b == b'>' {
            break;
        }
        let Some(v) = (b as char).to_digit(16) else {
            continue;
        };
        match high.take() {
            Some(h) => out.push(h << 4 | v as u8),
            None => high = Some(v as u8),
        }
    }
    if let Some(h) = high {
        out.push(h << 4);
    }
    out
}

pub(super) fn ascii85(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 4 / 5);
    let mut group = [0u8; 5];
    let mut n = 0;
    let data = input.strip_prefix(b"<~").unwrap_or(input);
    for &b in data {
        match b {
            b'~' => break,
            b'z' if n == 0 => out.extend_from_slice(&[0; 4]),
            b'!'..=b'u' => {
                group[n] = b - b'!';
                n += 1;
                if n == 5 {
                    let v = group.iter().fold(0u64, |v, &d| v * 85 + u64::from(d));
                    out.extend_from_slice(&(v as u32).to_be_bytes());
                    n = 0;
                }
            }
            _ => {}
        }
    }
    if n > 1 {
        for slot in group.iter_mut().skip(n) {
            *slot = 84;
        }
        let v = group.iter().fold(0u64, |v, &d| v * 85 + u64::from(d));
        out.extend_from_slice(&(v as u32).to_be_bytes()[..n - 1]);
    }
    out
}

pub(super) fn run_length(input: &[u8], cap: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&len) = input.get(i) {
        i += 1;
        match len {
            128 => break,
            0..=127 => {
                let n = usize::from(len) + 1;
                out.extend_from_slice(input.get(i..i + n).unwrap_or(&input[i.min(input.len())..]));
                i += n;
            }
            _ => {
                let Some(&b) = input.get(i) else { break };
                i += 1;
                out.extend(std::iter::repeat_n(b, 257 - usize::from(len)));
            }
        }
        if out.len() > cap {
            return Err(DecodeError::Limit("part size limit reached"));
        }
    }
    Ok(out)
}

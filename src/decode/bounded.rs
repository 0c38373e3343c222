//! Reading decompressed data with hard bounds, for every extractor that inflates something
//! (zip and gzip entries, PDF streams). Declared sizes are never trusted: output is read in
//! small chunks and stops at a cap, and compressed input is counted as it is consumed so that
//! a decompression bomb is recognised by its ratio long before it fills memory.

use std::io::{self, Read};

/// Below this much output the expansion ratio is not enforced: small, very repetitive files
/// (a page of spaces, a sparse table) legitimately compress far better than the ratio, and
/// their size is harmless.
pub const RATIO_FLOOR: usize = 1024 * 1024;

/// Why bounded reading stopped.
#[derive(Debug)]
pub enum ReadStop {
    /// The output would exceed the cap.
    Size,
    /// The output grew more than the allowed ratio times the compressed input consumed.
    Ratio,
    /// The input is corrupt (or ended early); what was decoded before the error is kept, as
    /// some formats (PDF streams) are often slightly damaged at their end.
    Io(io::Error, Vec<u8>),
}

/// A reader that counts the bytes taken from it, so the compressed input consumed by a
/// decoder can be compared with what it produced.
pub struct Counted<R> {
    inner: R,
    count: u64,
}

impl<R> Counted<R> {
    pub fn new(inner: R) -> Self {
        Counted { inner, count: 0 }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// How to enforce an expansion ratio: the largest allowed ratio, and how to ask the reader
/// how many compressed bytes it has consumed so far.
pub type RatioCheck<'a, R> = (u64, &'a dyn Fn(&R) -> u64);

/// Read `reader` to its end, keeping at most `cap` bytes. With a `ratio`, stop once the
/// output is larger than [`RATIO_FLOOR`] and more than `ratio` times `consumed(reader)` (the
/// compressed bytes the decoder has taken so far). Memory used is bounded by `cap` whatever the
/// input claims.
pub fn read_bounded<R: Read>(
    reader: &mut R,
    cap: usize,
    ratio: Option<RatioCheck<'_, R>>,
) -> Result<Vec<u8>, ReadStop> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadStop::Io(e, out)),
        };
        if out.len() + n > cap {
            return Err(ReadStop::Size);
        }
        out.extend_from_slice(&chunk[..n]);
        if let Some((ratio, consumed)) = ratio
            && out.len() > RATIO_FLOOR
            && out.len() as u64 > consumed(reader).saturating_mul(ratio)
        {
            return Err(ReadStop::Ratio);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, read::DeflateDecoder, write::DeflateEncoder};
    use std::io::Write;

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut enc = DeflateEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn reads_ordinary_data_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let compressed = deflate(&data);
        let mut dec = DeflateDecoder::new(Counted::new(&compressed[..]));
        let count = |d: &DeflateDecoder<Counted<&[u8]>>| d.get_ref().count();
        let out = read_bounded(&mut dec, 1 << 20, Some((200, &count))).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn stops_at_cap() {
        let data = vec![b'a'; 100_000];
        let mut reader = &data[..];
        assert!(matches!(
            read_bounded(&mut reader, 50_000, None),
            Err(ReadStop::Size)
        ));
    }

    #[test]
    fn stops_a_bomb_by_ratio_early() {
        let data = vec![0u8; 64 * 1024 * 1024];
        let compressed = deflate(&data);
        // Count the output too, to see where it stopped.
        let mut reader = Counted::new(DeflateDecoder::new(Counted::new(&compressed[..])));
        let consumed = |r: &Counted<DeflateDecoder<Counted<&[u8]>>>| r.inner.get_ref().count();
        let result = read_bounded(&mut reader, usize::MAX, Some((200, &consumed)));
        assert!(matches!(result, Err(ReadStop::Ratio)));
        // At most 200 times the compressed input (~64 KiB) came out, not 64 MiB.
        assert!(reader.count() <= 200 * compressed.len() as u64 + 16 * 1024);
    }
}

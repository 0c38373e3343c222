//! Tables in a text: a column header labels every cell below it, however many rows down.
//!
//! The decoders keep tables tabular (spreadsheet rows are lines with tab-separated cells, HTML
//! `<td>` become tabs), and CSV, TSV, `|` and space-aligned text tables are tabular as written.
//! [`Tables`] finds their regions block by block (a block is the lines between blank or
//! over-long lines, which end every table), only for the block around a candidate that needs
//! it (see `Detector::header_says` and `Detector::table_candidates` in `mod.rs`), and each
//! block once: a text without tables pays nothing, and one table-shaped line does not make the
//! whole text be read. Offsets are those of the text given: nothing is rewritten or copied.
//!
//! A region is a header line followed by at least one data row, split into cells by one
//! separator: tab, `|`, `;`, `,` (a cell in double quotes may hold the separator), or columns
//! aligned with two or more spaces. The first line is a header only if it looks like one: every
//! non-empty cell at most [`MAX_HEADER_CELL`] bytes with no run of 4 digits, and a letter in
//! the line. A table without such a line gives no labels.
//!
//! Bounded: lines longer than [`MAX_LINE`] are not table rows, rows have at most [`MAX_CELLS`]
//! cells, at most [`MAX_REGIONS`] regions are kept, and each block is read once, in one pass
//! over its lines (each line split at most a few times), so work is linear in the text.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Lines longer than this are not table rows.
pub const MAX_LINE: usize = 4_096;
/// Cells per row; a line with more is not a table row.
pub const MAX_CELLS: usize = 256;
/// Longest header cell (bytes, trimmed).
pub const MAX_HEADER_CELL: usize = 40;
/// Regions kept per text.
pub const MAX_REGIONS: usize = 10_000;

/// How the cells of a region's lines are separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    Byte(u8),
    /// Columns aligned with spaces: cells start at the header's column positions.
    Aligned,
}

/// Separators tried, in this order.
const SEPARATORS: [u8; 4] = [b'\t', b'|', b';', b','];

#[derive(Debug, PartialEq)]
struct Region {
    /// The header line, without its line break.
    header: (usize, usize),
    /// From the first data row's start to the end of the last data row.
    data: (usize, usize),
    sep: Sep,
    /// Header cells (trimmed byte spans of the text), in column order.
    cells: Vec<(usize, usize)>,
    /// Aligned: where each column starts, in bytes from the start of a line.
    cols: Vec<usize>,
}

/// A data row split into cells: (line start, cell spans, whether they line up with the header).
type SplitRow = (usize, Vec<(usize, usize)>, bool);

/// A run of lines between blank (or over-long) lines, and its table regions.
#[derive(Debug)]
struct Block {
    start: usize,
    end: usize,
    /// Sorted by position.
    regions: Vec<Region>,
}

/// The table regions of one text, found block by block as candidates ask for them: only the
/// lines around a value or keyword are read, never the whole text for one value.
#[derive(Debug, Default)]
pub struct Tables {
    /// Blocks read so far, sorted by start, disjoint.
    blocks: RefCell<Vec<Rc<Block>>>,
    /// Regions kept so far in all blocks (at most [`MAX_REGIONS`]).
    kept: Cell<usize>,
    /// The last data row split by [`Tables::header`]: (line start, cells, fits the header).
    /// Candidates come sorted, so a row is split once per pattern however many values it holds.
    cache: RefCell<Option<SplitRow>>,
}

/// A header cell holding a keyword: which column of which table, and the cell's span.
#[derive(Debug)]
pub struct HeaderCell {
    block: Rc<Block>,
    region: usize,
    col: usize,
    pub span: (usize, usize),
}

impl HeaderCell {
    /// Identifies the column within the text.
    pub fn key(&self) -> (usize, usize, usize) {
        (self.block.start, self.region, self.col)
    }
}

/// The line holding byte `at`: (start, end without `\r\n`, start of the next line).
fn line_around(b: &[u8], at: usize) -> (usize, usize, usize) {
    let at = at.min(b.len());
    let start = memchr::memrchr(b'\n', b.get(..at).unwrap_or(&[])).map_or(0, |p| p + 1);
    line_from(b, start)
}

/// The line holding byte `at` if it is at most [`MAX_LINE`] bytes long (only that far is
/// searched either way).
fn short_line_around(b: &[u8], at: usize) -> Option<(usize, usize, usize)> {
    let at = at.min(b.len());
    let from = at.saturating_sub(MAX_LINE + 1);
    let start = match memchr::memrchr(b'\n', b.get(from..at).unwrap_or(&[])) {
        Some(p) => from + p + 1,
        None if from == 0 => 0,
        None => return None,
    };
    let to = (start + MAX_LINE + 2).min(b.len());
    let (end, next) = match memchr::memchr(b'\n', b.get(start..to).unwrap_or(&[])) {
        Some(p) => (start + p, start + p + 1),
        None if to == b.len() => (b.len(), b.len()),
        None => return None,
    };
    let end = if end > start && b.get(end - 1) == Some(&b'\r') {
        end - 1
    } else {
        end
    };
    (end - start <= MAX_LINE).then_some((start, end, next))
}

/// The line starting at `start`: (start, end without `\r\n`, start of the next line).
fn line_from(b: &[u8], start: usize) -> (usize, usize, usize) {
    let rest = b.get(start..).unwrap_or(&[]);
    let (mut end, next) = match memchr::memchr(b'\n', rest) {
        Some(p) => (start + p, start + p + 1),
        None => (b.len(), b.len()),
    };
    if end > start && b.get(end - 1) == Some(&b'\r') {
        end -= 1;
    }
    (start, end, next)
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c')
}

fn blank(line: &[u8]) -> bool {
    line.iter().all(|&c| is_space(c))
}

/// A rule line of a text or Markdown table: `----+----`, `|---|:--|`, `=====  ====`.
fn is_rule(line: &[u8]) -> bool {
    // `all` first: it stops at the first letter of an ordinary line.
    line.iter()
        .all(|&c| matches!(c, b'-' | b'=' | b'+' | b'|' | b':' | b' ' | b'\t'))
        && line.iter().any(|&c| matches!(c, b'-' | b'='))
}

/// Could `b[s..e]` be inside a header cell? Within [`MAX_HEADER_CELL`] bytes on each side
/// there is a cell edge: a line break, the text's end, a separator, or two spaces. A word in a
/// long run of prose is not (the usual case, decided in a few dozen bytes, before any line is
/// looked for).
fn short_cell_around(b: &[u8], s: usize, e: usize) -> bool {
    // One tight loop per side (this runs for many keywords of ordinary prose).
    let edge_in = |part: &[u8]| {
        let mut space = false;
        for &c in part {
            if matches!(c, b'\t' | b'|' | b';' | b',' | b'\n' | b'\r') || (space && c == b' ') {
                return true;
            }
            space = c == b' ';
        }
        false
    };
    let from = s.saturating_sub(MAX_HEADER_CELL);
    let to = e.saturating_add(MAX_HEADER_CELL).min(b.len());
    e.saturating_sub(s) <= MAX_HEADER_CELL
        && (from == 0 || edge_in(b.get(from..s).unwrap_or(&[])))
        && (to == b.len() || edge_in(b.get(e..to).unwrap_or(&[])))
}

/// `b[s..e]` without surrounding white space.
fn trim(b: &[u8], mut s: usize, mut e: usize) -> (usize, usize) {
    while s < e && b.get(s).is_some_and(|&c| is_space(c)) {
        s += 1;
    }
    while e > s && b.get(e - 1).is_some_and(|&c| is_space(c)) {
        e -= 1;
    }
    (s, e)
}

/// Cells of the line `b[s..e]` separated by `sep` (trimmed spans; a cell in double quotes is
/// its inside, and may hold the separator; `""` inside stays as written). False when the line
/// has more than [`MAX_CELLS`] cells.
fn split_bytes(b: &[u8], s: usize, e: usize, sep: u8, out: &mut Vec<(usize, usize)>) -> bool {
    out.clear();
    let quotes = sep != b'|';
    let mut cell = s;
    loop {
        if out.len() >= MAX_CELLS {
            return false;
        }
        let (ts, _) = trim(b, cell, e);
        let rest = |from: usize| b.get(from..e).unwrap_or(&[]);
        if quotes && b.get(ts) == Some(&b'"') && ts < e {
            // Closing quote: a `"` not followed by another one.
            let mut k = ts + 1;
            let close = loop {
                match memchr::memchr(b'"', rest(k)) {
                    Some(p) if b.get(k + p + 1) == Some(&b'"') && k + p + 1 < e => k += p + 2,
                    Some(p) => break Some(k + p),
                    None => break None,
                }
            };
            if let Some(close) = close {
                out.push((ts + 1, close));
                match memchr::memchr(sep, rest(close + 1)) {
                    Some(p) => cell = close + 1 + p + 1,
                    None => return true,
                }
                continue;
            }
        }
        match memchr::memchr(sep, rest(cell)) {
            Some(p) => {
                out.push(trim(b, cell, cell + p));
                cell += p + 1;
            }
            None => {
                out.push(trim(b, cell, e));
                return true;
            }
        }
    }
}

/// Cells of an aligned header line `b[s..e]`: runs separated by two or more spaces (or a
/// tab). Returns false when there are more than [`MAX_CELLS`].
fn split_aligned(b: &[u8], s: usize, e: usize, out: &mut Vec<(usize, usize)>) -> bool {
    out.clear();
    let line = b.get(s..e).unwrap_or(&[]);
    let mut i = 0;
    while i < line.len() {
        while line.get(i).is_some_and(|&c| is_space(c)) {
            i += 1;
        }
        if i >= line.len() {
            break;
        }
        let start = i;
        // A cell ends at two spaces or a tab.
        while let Some(&c) = line.get(i) {
            let gap = c == b'\t' || (c == b' ' && line.get(i + 1).is_some_and(|&n| is_space(n)));
            if gap {
                break;
            }
            i += 1;
        }
        if out.len() >= MAX_CELLS {
            return false;
        }
        out.push(trim(b, s + start, s + i));
    }
    true
}

/// Does the data line `b[s..e]` fit the aligned columns `cols`? Every column boundary falls on
/// white space (no value crosses it), and a field starts at the column or after a wide gap.
fn fits_aligned(b: &[u8], s: usize, e: usize, cols: &[usize]) -> bool {
    let line = b.get(s..e).unwrap_or(&[]);
    let cols = byte_columns(line, cols);
    let cols = cols.as_ref();
    let at = |i: usize| line.get(i).copied();
    let mut filled = 0;
    for (k, &c) in cols.iter().enumerate() {
        if k > 0 && c < line.len() {
            let before = at(c - 1).is_some_and(is_space);
            let wide = c < 2 || at(c - 2).is_some_and(is_space);
            let starts = at(c).is_some_and(|x| !is_space(x));
            if !before || !(wide || starts) {
                return false;
            }
        }
        let end = cols.get(k + 1).map_or(line.len(), |&n| n.min(line.len()));
        if line.get(c.min(end)..end).is_some_and(|f| !blank(f)) {
            filled += 1;
        }
    }
    // Text before the first column is not a field of the table.
    filled >= 2
        && cols
            .first()
            .is_none_or(|&c| blank(line.get(..c.min(line.len())).unwrap_or(&[])))
}

/// Characters (not bytes) in `b[s..e]`: aligned columns line up by characters, so a name with
/// an accent ("José") does not push the cells after it out of their columns.
fn chars_in(b: &[u8], s: usize, e: usize) -> usize {
    b.get(s..e)
        .unwrap_or(&[])
        .iter()
        .filter(|&&c| c & 0xC0 != 0x80)
        .count()
}

/// Aligned columns (character positions) as byte positions in `line`; past its end, its
/// length. An ASCII line needs no change.
fn byte_columns<'c>(line: &[u8], cols: &'c [usize]) -> std::borrow::Cow<'c, [usize]> {
    if line.is_ascii() {
        return std::borrow::Cow::Borrowed(cols);
    }
    let starts: Vec<usize> = (0..line.len())
        .filter(|&i| line.get(i).is_some_and(|&c| c & 0xC0 != 0x80))
        .collect();
    std::borrow::Cow::Owned(
        cols.iter()
            .map(|&c| starts.get(c).copied().unwrap_or(line.len()))
            .collect(),
    )
}

/// Cells of an aligned data line: the trimmed part of each column.
fn aligned_cells(b: &[u8], s: usize, e: usize, cols: &[usize], out: &mut Vec<(usize, usize)>) {
    out.clear();
    let cols = byte_columns(b.get(s..e).unwrap_or(&[]), cols);
    let cols = cols.as_ref();
    let len = e.saturating_sub(s);
    for (k, &c) in cols.iter().enumerate() {
        let end = cols
            .get(k + 1)
            .map_or(len, |&n| n.saturating_sub(1).min(len));
        let c = c.min(len);
        out.push(trim(b, s + c, s + end.max(c)));
    }
}

/// Does this header line look like a header? Every non-empty cell short, without a run of 4
/// digits; at least two non-empty cells; a letter somewhere.
fn looks_like_header(b: &[u8], cells: &[(usize, usize)]) -> bool {
    let mut named = 0;
    let mut letter = false;
    for &(s, e) in cells {
        let cell = b.get(s..e).unwrap_or(&[]);
        if cell.is_empty() {
            continue;
        }
        if cell.len() > MAX_HEADER_CELL {
            return false;
        }
        let mut run = 0;
        for &c in cell {
            run = if c.is_ascii_digit() { run + 1 } else { 0 };
            if run >= 4 {
                return false;
            }
            letter |= c.is_ascii_alphabetic() || c >= 0x80;
        }
        named += 1;
    }
    named >= 2 && letter
}

/// The table regions of the block `b[start..end]` that have a header line (at most `budget`).
/// Blocks are separated by blank lines and lines longer than [`MAX_LINE`], which end every
/// table, so a block is read the same whether the text around it is read or not.
fn build_regions(b: &[u8], start: usize, end: usize, budget: usize) -> Vec<Region> {
    let mut regions = Vec::new();
    let mut head = Vec::new();
    let mut row = Vec::new();
    let mut pos = start;
    while pos < end && regions.len() < budget {
        let (hs, he, next) = line_from(b, pos);
        let hline = b.get(hs..he).unwrap_or(&[]);
        if he - hs > MAX_LINE || blank(hline) || is_rule(hline) {
            pos = next;
            continue;
        }
        // The first data row: the next line, after a rule line if there is one.
        let (mut ds, mut de, mut dnext) = line_from(b, next);
        if next < b.len() && is_rule(b.get(ds..de).unwrap_or(&[])) {
            (ds, de, dnext) = line_from(b, dnext);
        }
        let dline = b.get(ds..de).unwrap_or(&[]);
        if ds >= b.len() || de - ds > MAX_LINE || blank(dline) {
            pos = next;
            continue;
        }
        let Some((sep, cols)) = Tables::separator(b, (hs, he), (ds, de), &mut head, &mut row)
        else {
            pos = next;
            continue;
        };
        // Data rows: while lines are split by the same separator (rule lines skipped).
        let mut last = de;
        let mut p = dnext;
        while p < b.len() {
            let (ls, le, ln) = line_from(b, p);
            let line = b.get(ls..le).unwrap_or(&[]);
            if le - ls > MAX_LINE || blank(line) {
                break;
            }
            let more = match sep {
                _ if is_rule(line) => true,
                Sep::Byte(d) => split_bytes(b, ls, le, d, &mut row) && row.len() >= 2,
                Sep::Aligned => fits_aligned(b, ls, le, &cols),
            };
            if !more {
                break;
            }
            last = le;
            p = ln;
        }
        if looks_like_header(b, &head) {
            regions.push(Region {
                header: (hs, he),
                data: (ds, last),
                sep,
                cells: head.clone(),
                cols,
            });
        }
        // The rows of this region are not headers of another.
        pos = if p > pos { p } else { next };
    }
    regions
}

/// The block of lines around byte `at`: from the first line after a blank or over-long line
/// (or the text's start) to the start of the next such line (or the text's end). None when
/// the line of `at` is itself blank or over-long. Only the block is read.
fn block_bounds(b: &[u8], at: usize) -> Option<(usize, usize)> {
    let (ls, le, next) = short_line_around(b, at)?;
    if blank(b.get(ls..le).unwrap_or(&[])) {
        return None;
    }
    let mut start = ls;
    while start > 0 {
        match short_line_around(b, start - 1) {
            Some((s, e, _)) if !blank(b.get(s..e).unwrap_or(&[])) && s < start => start = s,
            _ => break,
        }
    }
    let mut end = next;
    while end < b.len() {
        match short_line_around(b, end) {
            Some((s, e, n)) if !blank(b.get(s..e).unwrap_or(&[])) && n > end => end = n,
            _ => break,
        }
    }
    Some((start, end))
}

impl Tables {
    /// Could the value at byte `at` be in a data row? Its line splits like the line above it
    /// (or the line above a rule line): the same separator, as many cells, 2 or more. A cheap
    /// local test, so that a text without tables never builds them.
    pub fn may_be_row(b: &[u8], at: usize) -> bool {
        let Some((s, e, _)) = short_line_around(b, at) else {
            return false;
        };
        let mut above = match s.checked_sub(1).and_then(|p| short_line_around(b, p)) {
            Some(l) => l,
            None => return false,
        };
        if is_rule(b.get(above.0..above.1).unwrap_or(&[])) {
            above = match above.0.checked_sub(1).and_then(|p| short_line_around(b, p)) {
                Some(l) => l,
                None => return false,
            };
        }
        let line = b.get(s..e).unwrap_or(&[]);
        let prev = b.get(above.0..above.1).unwrap_or(&[]);
        if blank(line) || blank(prev) {
            return false;
        }
        let (mut x, mut y) = (Vec::new(), Vec::new());
        Self::separator(b, (above.0, above.1), (s, e), &mut x, &mut y).is_some()
    }

    /// Could a keyword at `b[s..e]` be a header cell? Its line looks like a header and the
    /// line below (after a rule line) splits the same way. Local and cheap, as above.
    #[cfg(test)]
    pub fn may_be_header(b: &[u8], s: usize, e: usize) -> bool {
        Self::header_check(b, s, e) == Ok(true)
    }

    /// [`Tables::may_be_header`], and when the answer holds for the whole line of `s` (the
    /// line is no header line), `Err(end of that line)`: later keywords before it need no
    /// second look.
    pub fn header_check(b: &[u8], s: usize, e: usize) -> Result<bool, usize> {
        if !short_cell_around(b, s, e) {
            return Ok(false);
        }
        let Some((hs, he, next)) = short_line_around(b, s) else {
            return Ok(false);
        };
        if e > he {
            return Ok(false);
        }
        let not_header = Err(he);
        let Some(mut below) = (next < b.len())
            .then(|| short_line_around(b, next))
            .flatten()
        else {
            return not_header;
        };
        if is_rule(b.get(below.0..below.1).unwrap_or(&[])) && below.2 < b.len() {
            below = match short_line_around(b, below.2) {
                Some(l) => l,
                None => return not_header,
            };
        }
        if blank(b.get(below.0..below.1).unwrap_or(&[])) {
            return not_header;
        }
        let (mut head, mut row) = (Vec::new(), Vec::new());
        if Self::separator(b, (hs, he), (below.0, below.1), &mut head, &mut row).is_none()
            || !looks_like_header(b, &head)
        {
            return not_header;
        }
        Ok(head.iter().any(|&(cs, ce)| cs <= s && e <= ce))
    }

    /// Every table region of `b` (all blocks built at once; detection builds them lazily).
    #[cfg(test)]
    pub fn build(b: &[u8]) -> Tables {
        let t = Tables::default();
        let mut pos = 0;
        while pos < b.len() {
            pos = match t.block(b, pos) {
                Some(block) => block.end.max(pos + 1),
                None => short_line_around(b, pos).map_or(pos + 1, |l| l.2.max(pos + 1)),
            };
        }
        t
    }

    /// The block of lines holding byte `at`, its regions built on first use. None when the
    /// line of `at` is blank or longer than [`MAX_LINE`] (never part of a table).
    fn block(&self, b: &[u8], at: usize) -> Option<Rc<Block>> {
        {
            let blocks = self.blocks.borrow();
            let i = blocks.partition_point(|k| k.start <= at);
            if let Some(k) = i.checked_sub(1).and_then(|i| blocks.get(i))
                && at < k.end
            {
                return Some(Rc::clone(k));
            }
        }
        let (start, end) = block_bounds(b, at)?;
        let budget = MAX_REGIONS.saturating_sub(self.kept.get());
        let regions = build_regions(b, start, end, budget);
        self.kept.set(self.kept.get() + regions.len());
        let block = Rc::new(Block {
            start,
            end,
            regions,
        });
        let mut blocks = self.blocks.borrow_mut();
        let i = blocks.partition_point(|k| k.start <= start);
        blocks.insert(i, Rc::clone(&block));
        Some(block)
    }

    /// How a header line and the line below it are both split: the first separator that
    /// splits both into the same number (2 or more) of cells, else aligned columns. `head`
    /// gets the header's cells.
    fn separator(
        b: &[u8],
        (hs, he): (usize, usize),
        (ds, de): (usize, usize),
        head: &mut Vec<(usize, usize)>,
        row: &mut Vec<(usize, usize)>,
    ) -> Option<(Sep, Vec<usize>)> {
        let hline = b.get(hs..he).unwrap_or(&[]);
        let dline = b.get(ds..de).unwrap_or(&[]);
        for d in SEPARATORS {
            if memchr::memchr(d, hline).is_none() || memchr::memchr(d, dline).is_none() {
                continue;
            }
            if split_bytes(b, hs, he, d, head)
                && split_bytes(b, ds, de, d, row)
                && head.len() >= 2
                && head.len() == row.len()
            {
                return Some((Sep::Byte(d), Vec::new()));
            }
        }
        // Aligned: two or more cells in the header, a wide gap in the data row too.
        if memchr::memmem::find(hline, b"  ").is_none()
            || memchr::memmem::find(dline, b"  ").is_none()
            || !split_aligned(b, hs, he, head)
            || head.len() < 2
        {
            return None;
        }
        let cols: Vec<usize> = head.iter().map(|&(s, _)| chars_in(b, hs, s)).collect();
        fits_aligned(b, ds, de, &cols).then_some((Sep::Aligned, cols))
    }

    /// Number of table regions with a header.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.kept.get()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cells of the data row starting at `ls` (ending at `le`) of region `r`, and whether
    /// they line up with the header's.
    fn row_cells(
        b: &[u8],
        r: &Region,
        ls: usize,
        le: usize,
        out: &mut Vec<(usize, usize)>,
    ) -> bool {
        match r.sep {
            Sep::Byte(d) => split_bytes(b, ls, le, d, out) && out.len() == r.cells.len(),
            Sep::Aligned => {
                aligned_cells(b, ls, le, &r.cols, out);
                fits_aligned(b, ls, le, &r.cols)
            }
        }
    }

    /// For a value at `b[s..e]` in a data row of a table, the span of its column's header
    /// cell. None when the value is not in a table with a header, spans several cells, or its
    /// row does not line up with the header.
    pub fn header(&self, b: &[u8], s: usize, e: usize) -> Option<(usize, usize)> {
        let block = self.block(b, s)?;
        let region = block.regions.get(region_of(&block, s)?)?;
        if e > region.data.1 {
            return None;
        }
        let (ls, le, _) = line_around(b, s);
        if e > le {
            return None;
        }
        let mut cache = self.cache.borrow_mut();
        if cache.as_ref().is_none_or(|c| c.0 != ls) {
            let mut cells = cache.take().map(|c| c.1).unwrap_or_default();
            let fits = Self::row_cells(b, region, ls, le, &mut cells);
            *cache = Some((ls, cells, fits));
        }
        let (_, cells, fits) = cache.as_ref()?;
        if !fits {
            return None;
        }
        let k = cells.iter().position(|&(cs, ce)| cs <= s && e <= ce)?;
        let h = *region.cells.get(k)?;
        (h.1 > h.0).then_some(h)
    }

    /// The header line of the region whose data rows hold byte `s`.
    pub fn header_line(&self, b: &[u8], s: usize) -> Option<(usize, usize)> {
        let block = self.block(b, s)?;
        Some(block.regions.get(region_of(&block, s)?)?.header)
    }

    /// For a keyword at `b[s..e]` inside a header cell: its column.
    pub fn header_cell_at(&self, b: &[u8], s: usize, e: usize) -> Option<HeaderCell> {
        let block = self.block(b, s)?;
        let i = block
            .regions
            .partition_point(|r| r.header.0 <= s)
            .checked_sub(1)?;
        let r = block.regions.get(i)?;
        if e > r.header.1 {
            return None;
        }
        let k = r.cells.iter().position(|&(cs, ce)| cs <= s && e <= ce)?;
        let span = *r.cells.get(k)?;
        Some(HeaderCell {
            block,
            region: i,
            col: k,
            span,
        })
    }

    /// Every data cell of the column of `cell` (rows that line up with the header), as spans
    /// of the text, in order.
    pub fn column_cells(b: &[u8], cell: &HeaderCell, mut f: impl FnMut(usize, usize)) {
        let Some(r) = cell.block.regions.get(cell.region) else {
            return;
        };
        let mut cells = Vec::new();
        let mut p = r.data.0;
        while p < r.data.1 {
            let (ls, le, next) = line_from(b, p);
            if Self::row_cells(b, r, ls, le, &mut cells)
                && let Some(&(cs, ce)) = cells.get(cell.col)
                && ce > cs
            {
                f(cs, ce);
            }
            if next <= p {
                break;
            }
            p = next;
        }
    }
}

/// Index of the region of `block` whose data rows hold byte `s`.
fn region_of(block: &Block, s: usize) -> Option<usize> {
    let i = block
        .regions
        .partition_point(|r| r.data.0 <= s)
        .checked_sub(1)?;
    (s < block.regions.get(i)?.data.1).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label<'a>(text: &'a str, value: &str, nth: usize) -> Option<&'a str> {
        let b = text.as_bytes();
        let s = text.match_indices(value).nth(nth)?.0;
        let t = Tables::build(b);
        t.header(b, s, s + value.len())
            .map(|(hs, he)| &text[hs..he])
    }

    fn roster(sep: &str, rows: usize) -> String {
        let mut t = format!("Name{sep}Routing{sep}Bin\n");
        for i in 0..rows {
            t.push_str(&format!(
                "Person {i}{sep}0210000{:02}{sep}4{:08}\n",
                i % 100,
                i
            ));
        }
        t
    }

    #[test]
    fn each_separator_labels_rows_far_below() {
        for sep in ["\t", "|", ";", ",", " | "] {
            let t = roster(sep, 60);
            assert_eq!(label(&t, "021000055", 0), Some("Routing"), "{sep:?}");
            assert_eq!(label(&t, "400000055", 0), Some("Bin"), "{sep:?}");
            assert_eq!(label(&t, "Person 59", 0), Some("Name"), "{sep:?}");
        }
    }

    #[test]
    fn markdown_and_bordered_tables() {
        let t = "| Name | SSN |\n|------|-----|\n| Ann | 536228714 |\n| Bo | 536228715 |\n";
        assert_eq!(label(t, "536228715", 0), Some("SSN"));
        let t = "+------+-----------+\n| Name | SSN       |\n+------+-----------+\n| Ann  | 536228714 |\n";
        assert_eq!(label(t, "536228714", 0), Some("SSN"));
    }

    #[test]
    fn aligned_columns() {
        let mut t = String::from("Name        Routing      Account\n");
        t.push_str("----        -------      -------\n");
        for i in 0..55 {
            t.push_str(&format!("Person {i:<5}021000{i:03}    88{i:06}\n"));
        }
        assert_eq!(label(&t, "021000054", 0), Some("Routing"));
        assert_eq!(label(&t, "88000054", 0), Some("Account"));
        // Right-aligned numbers under a left-aligned header still fall in the column.
        let t = "Item      Amount     SSN\nPaper       12.00    536228714\nInk          8.50    536228715\n";
        assert_eq!(label(t, "536228715", 0), Some("SSN"));
        // Prose with double spaces is not a table.
        let t = "Hello  there, this is  a note.\nWe met at 536228714 on  Monday.\n";
        assert_eq!(label(t, "536228714", 0), None);
    }

    #[test]
    fn aligned_columns_count_characters() {
        let mut t = String::from("Prénom      Routing      SSN\n");
        for (i, name) in ["José", "Zoë Núñez", "Ann"].iter().enumerate() {
            t.push_str(&format!("{name:<12}021000{i:03}    53622871{i}\n"));
        }
        assert_eq!(label(&t, "021000001", 0), Some("Routing"));
        assert_eq!(label(&t, "536228711", 0), Some("SSN"));
        assert_eq!(label(&t, "Zoë Núñez", 0), Some("Prénom"));
        assert_eq!(label(&t, "536228712", 0), Some("SSN"));
    }

    #[test]
    fn quoted_csv_cells() {
        let t = "\"Last, First\",\"SSN\",Note\n\"Doe, Jane\",\"536228714\",ok\n\"Roe, Ray\",536228715,\"a, b\"\n";
        assert_eq!(label(t, "536228714", 0), Some("SSN"));
        assert_eq!(label(t, "536228715", 0), Some("SSN"));
        assert_eq!(label(t, "Roe, Ray", 0), Some("Last, First"));
        assert_eq!(label(t, "a, b", 0), Some("Note"));
        // An escaped quote stays inside its cell.
        let t = "Name,SSN\n\"say \"\"hi\"\", ok\",536228714\n";
        assert_eq!(label(t, "536228714", 0), Some("SSN"));
    }

    #[test]
    fn header_detection() {
        // No header: the first line is data.
        let t = "Jane,536228714,4821\nJohn,536228715,4822\n";
        assert_eq!(label(t, "536228715", 0), None);
        assert!(Tables::build(t.as_bytes()).is_empty());
        // A long first cell is a sentence, not a header.
        let t = "This line is a sentence that is far too long to be a header,SSN\nx,536228714\n";
        assert_eq!(label(t, "536228714", 0), None);
        // Rows that do not line up get no label; the rows after them still do.
        let t = "Name,SSN\nAnn,536228714\nDoe, Jane,536228715\nBo,536228716\n";
        assert_eq!(label(t, "536228715", 0), None);
        assert_eq!(label(t, "536228716", 0), Some("SSN"));
        // A blank line ends the table.
        let t = "Name,SSN\nAnn,536228714\n\nBo,536228716\n";
        assert_eq!(label(t, "536228716", 0), None);
        // Values on the header line, and values spanning two cells, have no header.
        let t = "Name,SSN 536228714\nAnn,536228715\n";
        assert_eq!(label(t, "536228714", 0), None);
        let t = "Name,SSN\nAnn,536228715\n";
        assert_eq!(label(t, "Ann,536228715", 0), None);
    }

    #[test]
    fn header_cells_and_columns() {
        let t = "Employee,MRN,Note\r\nAnn,MR4821,x\r\nBo,MR4822,y\r\n";
        let b = t.as_bytes();
        let tables = Tables::build(b);
        let s = t.find("MRN").unwrap_or(0);
        let cell = tables.header_cell_at(b, s, s + 3).expect("header cell");
        let (hs, he) = cell.span;
        assert_eq!(&t[hs..he], "MRN");
        let mut got = Vec::new();
        Tables::column_cells(b, &cell, |s, e| got.push(&t[s..e]));
        assert_eq!(got, ["MR4821", "MR4822"]);
        assert_eq!(
            tables.header_line(b, t.find("MR4822").unwrap_or(0)),
            Some((0, 17))
        );
        let ann = t.find("Ann").unwrap_or(0);
        assert!(tables.header_cell_at(b, ann, ann + 3).is_none());
    }

    #[test]
    fn local_tests_are_local() {
        let t = "Just a line of prose, with a comma.\nAnother one.\n";
        assert!(!Tables::may_be_row(t.as_bytes(), 40));
        assert!(!Tables::may_be_header(t.as_bytes(), 0, 4));
        let t = "Name,SSN\nAnn,536228714\nBo,536228715\n";
        assert!(Tables::may_be_row(t.as_bytes(), 12));
        assert!(Tables::may_be_row(t.as_bytes(), 28));
        assert!(!Tables::may_be_row(t.as_bytes(), 2));
        assert!(Tables::may_be_header(t.as_bytes(), 5, 8));
        assert!(!Tables::may_be_header(t.as_bytes(), 9, 12));
        let t = "| Name | SSN |\n|---|---|\n| Ann | 536228714 |\n";
        assert!(Tables::may_be_row(t.as_bytes(), 35));
        assert!(Tables::may_be_header(t.as_bytes(), 9, 12));
        // A line longer than MAX_LINE is never a row, and is not read to its ends.
        let long = format!("a,b\n{}\nc,d\n", ",".repeat(MAX_LINE + 10));
        assert!(!Tables::may_be_row(long.as_bytes(), 100));
        assert!(!Tables::may_be_header(long.as_bytes(), 0, 1));
        assert!(!Tables::may_be_row(b"", 0));
    }

    #[test]
    fn blocks_read_like_the_whole_text() {
        // Tables of every kind, prose, blank and over-long lines, CRLF, in one text.
        let mut t = String::from("Dear team,\nplease see below, thanks.\n");
        t.push_str(&roster(",", 5));
        t.push_str("Notes follow, in prose, after the table.\n\n");
        t.push_str(&roster("\t", 4).replace('\n', "\r\n"));
        t.push_str(&format!("{}\n", "x,".repeat(MAX_LINE)));
        t.push_str(&roster("|", 3));
        t.push_str("| Name | SSN |\n|------|-----|\n| Ann | 536228714 |\n");
        t.push_str("Name        Routing      Account\n");
        t.push_str("Person 1    021000001    88000001\n\n\n");
        t.push_str(&roster(";", 2));
        let b = t.as_bytes();
        let whole = build_regions(b, 0, b.len(), MAX_REGIONS);
        assert!(whole.len() >= 4, "{}", whole.len());
        let lazy = Tables::build(b);
        let blocks = lazy.blocks.borrow();
        let got: Vec<&Region> = blocks.iter().flat_map(|k| k.regions.iter()).collect();
        assert_eq!(got, whole.iter().collect::<Vec<_>>());
        // Asked one offset at a time, in any order, a fresh lazy table says what the whole
        // text says.
        for at in (0..b.len()).rev() {
            let one = Tables::default();
            assert_eq!(
                one.header(b, at, at + 1),
                lazy.header(b, at, at + 1),
                "at {at}"
            );
            assert_eq!(one.header_line(b, at), lazy.header_line(b, at), "at {at}");
        }
    }

    #[test]
    fn hostile_input_is_bounded() {
        let started = std::time::Instant::now();
        // 1 MB of pipes: lines of more than MAX_CELLS cells are not rows.
        let pipes = "|".repeat(1 << 20);
        let t = Tables::build(pipes.as_bytes());
        assert!(t.is_empty());
        // Many short lines of pipes: cells, but no header.
        let short = "|||\n".repeat(1 << 18);
        assert!(Tables::build(short.as_bytes()).is_empty());
        // One huge line.
        let huge = format!("Name,SSN{}\n1,2\n", ",x".repeat(1 << 19));
        assert!(Tables::build(huge.as_bytes()).is_empty());
        // An unclosed quote on every line.
        let quotes = "A,\"B\n\"1,2\n".repeat(1 << 16);
        let _ = Tables::build(quotes.as_bytes());
        // Many tiny tables: regions are capped.
        let many = "A,B\n1,2\n\n".repeat(MAX_REGIONS + 100);
        assert_eq!(Tables::build(many.as_bytes()).len(), MAX_REGIONS);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}

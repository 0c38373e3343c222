//! One pass over the text for every keyword of every pattern.
//!
//! The keywords are compiled once into an Aho-Corasick DFA (ASCII case-insensitive), which is
//! then copied into a flat table of our own: `next = trans[state + class[byte]]`, state ids
//! multiplied by the row width, a flag bit ([`MATCH`]) on every transition into a match state
//! so "did any of the four lanes match?" is one OR and one test, and the table padded to a
//! power of two so the index is masked instead of bounds-checked. A step is then five
//! instructions with no branch.
//!
//! Each step waits for the previous table lookup, so a single stream runs at the speed of
//! memory latency. The text is cut into blocks, and each block into four lanes that are
//! stepped together: the lookups of the four lanes overlap. Each lane starts a little before
//! its share so a keyword that crosses the cut is still seen, and reports only the matches that
//! end inside its share, so nothing is reported twice. The matches of the later lanes of a
//! block are held until the first lanes are done, so the caller sees every match in the order
//! of its end, as from a single pass (a block bounds what is held).

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind};
use std::collections::HashMap;

/// Texts (and blocks) shorter than this are scanned in one lane (the set-up costs more than it
/// saves).
const LANE_MIN: usize = 96;
/// Bytes per block of four lanes: bounds the matches held back to keep them in order.
const BLOCK: usize = 1 << 16;
/// Set in a stored next state when that state is a match state: one OR of the four lanes'
/// states and one test say whether any lane matched. Above every index (the table is kept
/// smaller than 2^31 entries), so the index mask drops it.
const MATCH: u32 = 1 << 31;

#[derive(Debug)]
pub struct KeywordScanner {
    /// `trans[state + class]`: the next state (premultiplied by `stride`). Its length is a
    /// power of two, `mask + 1`.
    trans: Vec<u32>,
    mask: usize,
    /// Byte → column (bytes that no keyword holds, in either case, share one column).
    classes: [u8; 256],
    stride: u32,
    start: u32,
    /// Keyword ids matched in match state `i` (`state / stride`): `match_ids[match_at[i]..match_at[i + 1]]`.
    match_at: Vec<u32>,
    match_ids: Vec<u32>,
    /// Byte length of each keyword, by keyword id.
    lens: Vec<usize>,
    max_len: usize,
}

impl KeywordScanner {
    /// Keywords are matched without regard to ASCII case.
    pub fn new(keywords: &[Vec<u8>]) -> Result<KeywordScanner, String> {
        let dfa = DFA::builder()
            .ascii_case_insensitive(true)
            .prefilter(false)
            .match_kind(MatchKind::Standard)
            .build(keywords)
            .map_err(|e| e.to_string())?;
        let lens: Vec<usize> = keywords.iter().map(Vec::len).collect();
        let max_len = lens.iter().copied().max().unwrap_or(1).max(1);

        // Columns: one per byte that a keyword holds (upper and lower case together), one for
        // all other bytes, which every state treats alike (no keyword goes on with them).
        let mut used = [false; 256];
        for k in keywords {
            for &c in k {
                used[usize::from(c.to_ascii_lowercase())] = true;
            }
        }
        let mut classes = [0u8; 256];
        let mut reps: Vec<u8> = Vec::new();
        let mut by_key: HashMap<Option<u8>, u8> = HashMap::new();
        for b in 0..=255u8 {
            let low = b.to_ascii_lowercase();
            let key = used[usize::from(low)].then_some(low);
            let class = match by_key.get(&key) {
                Some(&c) => c,
                None => {
                    let c = u8::try_from(reps.len()).map_err(|_| "too many byte classes")?;
                    reps.push(b);
                    by_key.insert(key, c);
                    c
                }
            };
            classes[usize::from(b)] = class;
        }

        // Every state reachable from the start, breadth first.
        let start = dfa.start_state(Anchored::No).map_err(|e| e.to_string())?;
        let mut order: Vec<StateID> = vec![start];
        let mut seen: HashMap<StateID, usize> = HashMap::from([(start, 0)]);
        let mut i = 0;
        while let Some(&s) = order.get(i) {
            for &r in &reps {
                let n = dfa.next_state(Anchored::No, s, r);
                if let std::collections::hash_map::Entry::Vacant(v) = seen.entry(n) {
                    v.insert(order.len());
                    order.push(n);
                }
            }
            i += 1;
        }
        // Match states first.
        let (mut matching, rest): (Vec<StateID>, Vec<StateID>) =
            order.into_iter().partition(|&s| dfa.is_match(s));
        let match_count = matching.len();
        matching.extend(rest);
        let states = matching;
        let stride = reps.len();
        let cells = states
            .len()
            .checked_mul(stride)
            .filter(|&n| u32::try_from(n).is_ok())
            .ok_or("keyword automaton too large")?;
        let new_id: HashMap<StateID, u32> = states
            .iter()
            .enumerate()
            .map(|(i, &s)| (s, (i * stride) as u32))
            .collect();
        if cells.next_power_of_two() > MATCH as usize {
            return Err("keyword automaton too large".into());
        }
        let mut trans = vec![0u32; cells.next_power_of_two()];
        let mut match_at = vec![0u32];
        let mut match_ids = Vec::new();
        for (i, &s) in states.iter().enumerate() {
            for (c, &r) in reps.iter().enumerate() {
                let n = dfa.next_state(Anchored::No, s, r);
                let id = new_id.get(&n).copied().unwrap_or(0);
                trans[i * stride + c] = if dfa.is_match(n) { id | MATCH } else { id };
            }
            if i < match_count {
                for m in 0..dfa.match_len(s) {
                    match_ids.push(dfa.match_pattern(s, m).as_u32());
                }
                match_at.push(u32::try_from(match_ids.len()).map_err(|e| e.to_string())?);
            }
        }
        Ok(KeywordScanner {
            mask: trans.len() - 1,
            trans,
            classes,
            stride: stride as u32,
            // The start state is never a match state (no keyword is empty).
            start: new_id.get(&start).copied().unwrap_or(0),
            match_at,
            match_ids,
            lens,
            max_len,
        })
    }

    /// Call `f(keyword_id, start, end)` for every occurrence of every keyword (overlapping ones
    /// included), in the order of their ends (several ending at the same byte: in the
    /// automaton's order).
    pub fn scan(&self, hay: &[u8], mut f: impl FnMut(usize, usize, usize)) {
        let mut held: [Vec<(u32, usize)>; 3] = Default::default();
        let mut at = 0;
        while at < hay.len() {
            let end = (at + BLOCK).min(hay.len());
            self.block(hay, at, end, &mut held, &mut f);
            at = end;
        }
    }

    /// Report the matches ending in `hay[at..end]`.
    fn block(
        &self,
        hay: &[u8],
        at: usize,
        end: usize,
        held: &mut [Vec<(u32, usize)>; 3],
        f: &mut impl FnMut(usize, usize, usize),
    ) {
        let warm = self.max_len - 1;
        let len = end - at;
        if len < LANE_MIN {
            self.run(hay, at.saturating_sub(warm), end, at, self.start, f);
            return;
        }
        let share = len / 4;
        // Lane k is responsible for matches ending in (bounds[k], bounds[k+1]] and starts
        // `warm` bytes early.
        let bounds = [at, at + share, at + 2 * share, at + 3 * share, end];
        let starts = [0, 1, 2, 3].map(|k| bounds[k].saturating_sub(warm));
        let common = (0..4).map(|k| bounds[k + 1] - starts[k]).min().unwrap_or(0);
        let lane = |k: usize| hay.get(starts[k]..starts[k] + common).unwrap_or(&[]);
        let (l0, l1, l2, l3) = (lane(0), lane(1), lane(2), lane(3));
        // Equal lengths, known to the compiler: one counter, no bounds checks in the loop.
        let common = l0.len().min(l1.len()).min(l2.len()).min(l3.len());
        let (l0, l1, l2, l3) = (&l0[..common], &l1[..common], &l2[..common], &l3[..common]);
        let t = self.trans.get(..=self.mask).unwrap_or(&[]);
        if t.is_empty() {
            return;
        }
        let mask = self.mask;
        let cls = &self.classes;
        for h in held.iter_mut() {
            h.clear();
        }
        let [h1, h2, h3] = held;
        let mut st = [self.start; 4];
        let mut i = 0;
        while i < common {
            // The hot loop runs alone until a lane matches; matches are handled out of it.
            (i, st) = lanes(t, cls, mask, [l0, l1, l2, l3], i, st);
            if (st[0] | st[1] | st[2] | st[3]) & MATCH == 0 {
                continue;
            }
            // The flag says which lanes matched; without it, the state's id.
            let [s0, s1, s2, s3] = st;
            if s0 & MATCH != 0 {
                self.report(s0 & !MATCH, starts[0] + i, bounds[0], f);
            }
            if s1 & MATCH != 0 {
                h1.push((s1 & !MATCH, starts[1] + i));
            }
            if s2 & MATCH != 0 {
                h2.push((s2 & !MATCH, starts[2] + i));
            }
            if s3 & MATCH != 0 {
                h3.push((s3 & !MATCH, starts[3] + i));
            }
        }
        let [s0, s1, s2, s3] = st.map(|s| s & !MATCH);
        self.run(hay, starts[0] + common, bounds[1], bounds[0], s0, f);
        for (k, (h, s)) in [(h1, s1), (h2, s2), (h3, s3)].into_iter().enumerate() {
            let k = k + 1;
            for &(state, e) in h.iter() {
                self.report(state, e, bounds[k], f);
            }
            self.run(hay, starts[k] + common, bounds[k + 1], bounds[k], s, f);
        }
    }

    /// Single-lane scan of `hay[from..to]` from state `s`, reporting matches ending after
    /// `floor`; the state at the end.
    fn run(
        &self,
        hay: &[u8],
        from: usize,
        to: usize,
        floor: usize,
        mut s: u32,
        f: &mut impl FnMut(usize, usize, usize),
    ) -> u32 {
        let Some(bytes) = hay.get(from..to) else {
            return s;
        };
        let Some(t) = self.trans.get(..=self.mask) else {
            return s;
        };
        for (i, &b) in bytes.iter().enumerate() {
            s = t[(s as usize + usize::from(self.classes[usize::from(b)])) & self.mask];
            if s & MATCH != 0 {
                s &= !MATCH;
                self.report(s, from + i + 1, floor, f);
            }
        }
        s
    }

    #[inline]
    fn report(&self, s: u32, end: usize, floor: usize, f: &mut impl FnMut(usize, usize, usize)) {
        if end <= floor {
            return;
        }
        let i = (s / self.stride.max(1)) as usize;
        let (Some(&a), Some(&b)) = (self.match_at.get(i), self.match_at.get(i + 1)) else {
            return;
        };
        for &id in self.match_ids.get(a as usize..b as usize).unwrap_or(&[]) {
            let id = id as usize;
            let klen = self.lens.get(id).copied().unwrap_or(0);
            f(id, end.saturating_sub(klen), end);
        }
    }
}

/// Step four lanes from byte `i` until a lane enters a match state (the states then carry
/// [`MATCH`]) or the lanes end; the index after the last step, and the states. Kept apart
/// from the match handling so its dozen live values stay in registers.
#[inline(never)]
fn lanes(
    t: &[u32],
    cls: &[u8; 256],
    mask: usize,
    [l0, l1, l2, l3]: [&[u8]; 4],
    mut i: usize,
    st: [u32; 4],
) -> (usize, [u32; 4]) {
    // Widened once: a state loaded from the table is then used as an index with no
    // conversion in the loop.
    let [mut s0, mut s1, mut s2, mut s3] = st.map(|s| s as usize);
    let flag = MATCH as usize;
    let n = l0.len().min(l1.len()).min(l2.len()).min(l3.len());
    let (l0, l1, l2, l3) = (&l0[..n], &l1[..n], &l2[..n], &l3[..n]);
    // `mask + 1` entries, so a masked index needs no bounds check.
    let Some(t) = t.get(..=mask) else {
        return (n, st);
    };
    let step = |s: usize, b: u8| t[(s + usize::from(cls[usize::from(b)])) & mask] as usize;
    while i < n {
        s0 = step(s0, l0[i]);
        s1 = step(s1, l1[i]);
        s2 = step(s2, l2[i]);
        s3 = step(s3, l3[i]);
        i += 1;
        if (s0 | s1 | s2 | s3) & flag != 0 {
            break;
        }
    }
    (i, [s0, s1, s2, s3].map(|s| s as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(kws: &[&str], hay: &str) -> Vec<(usize, usize, usize)> {
        let kws: Vec<Vec<u8>> = kws.iter().map(|k| k.as_bytes().to_vec()).collect();
        let sc = KeywordScanner::new(&kws).unwrap();
        let mut out = Vec::new();
        sc.scan(hay.as_bytes(), |id, s, e| out.push((id, s, e)));
        out.sort();
        out
    }

    #[test]
    fn lanes_find_every_occurrence_once() {
        // Keywords placed across all lane cuts of a long text.
        let mut hay = String::new();
        let mut expected = Vec::new();
        for i in 0..2000 {
            if i % 7 == 3 {
                expected.push((0, hay.len(), hay.len() + 8));
                hay.push_str("PassWord");
            } else {
                hay.push_str("abc ");
            }
        }
        let got: Vec<_> = hits(&["password", "sword"], &hay)
            .into_iter()
            .filter(|h| h.0 == 0)
            .collect();
        assert_eq!(got, expected);
        // every cut position
        for cut in 0..40 {
            let mut hay = "x".repeat(4000 + cut);
            hay.replace_range(1000 + cut - 4..1000 + cut + 4, "password");
            hay.replace_range(2000..2008, "password");
            hay.replace_range(3001..3009, "password");
            assert_eq!(hits(&["password"], &hay).len(), 3, "cut {cut}");
        }
    }

    /// The lanes, blocks and table give exactly what the Aho-Corasick automaton gives in one
    /// pass (overlapping matches, ASCII case-insensitive), in the order of their ends.
    #[test]
    fn same_matches_as_aho_corasick_in_end_order() {
        let kws: Vec<&str> = vec![
            "password",
            "pass",
            "word",
            "sk",
            "pw:",
            "q~",
            "SSN",
            "a/c",
            "dl ",
            "Ab",
            "b",
            "xyz",
            "routing number",
            "\u{e9}t\u{e9}",
            "ss#",
        ];
        let bytes: Vec<Vec<u8>> = kws.iter().map(|k| k.as_bytes().to_vec()).collect();
        let sc = KeywordScanner::new(&bytes).unwrap();
        let ac = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&kws)
            .unwrap();
        let pieces: Vec<&[u8]> = vec![
            b"PassWord",
            b"pass",
            b"word",
            b"sk",
            b"pw:",
            b"q~",
            b"ssn",
            b"A/C",
            b"dl ",
            b"ab",
            b"xy",
            b"z",
            b" ",
            b"\n",
            b"routing ",
            b"number",
            b"\xc3\xa9t\xc3\xa9",
            b"\xff",
            b"12",
            b"-",
            b"SS#",
            b"filler text ",
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..60 {
            // Lengths around the lane minimum, odd lane cuts, and over several blocks.
            let target = match round % 4 {
                0 => (next() % 200) as usize,
                1 => 96 + (next() % 40) as usize,
                2 => (next() % 5000) as usize,
                _ => BLOCK * 2 + (next() % 3000) as usize,
            };
            let mut hay = Vec::new();
            while hay.len() < target {
                hay.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
            }
            let mut got = Vec::new();
            sc.scan(&hay, |id, s, e| got.push((e, id, s)));
            let mut want: Vec<(usize, usize, usize)> = ac
                .find_overlapping_iter(&hay)
                .map(|m| (m.end(), m.pattern().as_usize(), m.start()))
                .collect();
            assert!(got.windows(2).all(|w| w[0].0 <= w[1].0), "not in end order");
            got.sort();
            want.sort();
            assert_eq!(got, want, "round {round}, {} bytes", hay.len());
        }
    }

    #[test]
    fn overlapping_keywords_all_reported() {
        let h = hits(&["pass", "password", "word"], "my password");
        assert_eq!(h, vec![(0, 3, 7), (1, 3, 11), (2, 7, 11)]);
    }
}

//! Which labels a value has: how far a context word reaches, and which value it belongs to.
//!
//! A person reads a label ("SSN", "card", "routing number") as naming the value next to it in the
//! same sentence or line, however long the sentence is, and not a number on the next line or
//! one that another number stands between. The rules, in the order a reviewer applies them:
//!
//! - **Reach.** A label before a value reaches it within the same line and sentence, up to
//!   [`FAR`] bytes. A label that ends its line ("SSN:" and then a line break) reaches the value
//!   that starts the next line.
//! - **Direction.** A label after the value ("536228714 (SSN)") counts only on the same line, a
//!   little further away than the same gap before it, and not when it introduces something else
//!   ("... SSN: 536228714" does not label the number before "SSN").
//! - **Ownership.** A label does not reach across another number of five digits or more: it
//!   names that one ("bin code 412587391 and SSN 536228714").
//! - **Distance.** Confidence falls as the label gets further: within the pattern's `window` the
//!   full `context_confidence`, up to [`MID`] bytes one step less, up to [`FAR`] two steps less.
//! - **Nearest wins.** A `negative_context` word within `negative_window` drops the value only
//!   when no positive label is nearer ("card 5425 2334 3010 9903, invoice to follow" is a card).
//!
//! Negative words keep their plain window (a conference-call word two lines above a passcode
//! still counts), because they describe the situation rather than name the value.

use super::keywords::KeywordScanner;
use crate::model::Confidence;

/// Up to here a label keeps its full confidence less one step (at least the pattern's window).
pub const MID: usize = 150;
/// No label reaches further than this (or the pattern's window, if larger).
pub const FAR: usize = 300;
/// Extra distance of a label written after its value: labels come first in the City's prose.
const AFTER: usize = 8;
/// The longest label looked for beyond the reach (labels are words and short phrases).
const LABEL_MAX: usize = 64;
/// A number of this many digits between a label and a value takes the label for itself.
const OWN_DIGITS: usize = 5;

/// The confidence a label at `distance` bytes gives: `full` within `window`, one step less up to
/// [`MID`], two steps less up to [`FAR`] (never below `Low`).
pub fn graded(full: Confidence, distance: usize, window: usize) -> Confidence {
    let steps = if distance <= window {
        0
    } else if distance <= MID.max(window) {
        1
    } else {
        2
    };
    match (full, steps) {
        (c, 0) => c,
        (Confidence::High, 1) => Confidence::Medium,
        _ => Confidence::Low,
    }
}

/// Is `b[s..e]` a whole word at both ends?
fn whole_word(b: &[u8], s: usize, e: usize) -> bool {
    let alnum = |i: Option<&u8>| i.is_some_and(u8::is_ascii_alphanumeric);
    let glued_before = alnum(b.get(s)) && alnum(s.checked_sub(1).and_then(|i| b.get(i)));
    let glued_after = alnum(e.checked_sub(1).and_then(|i| b.get(i))) && alnum(b.get(e));
    !(glued_before || glued_after)
}

/// Call `f(start, end)` for every occurrence of a word of `set` in `b[from..to]` that is a
/// whole word, in the order of their ends.
fn whole_words(
    set: &KeywordScanner,
    b: &[u8],
    from: usize,
    to: usize,
    mut f: impl FnMut(usize, usize),
) {
    let Some(hay) = b.get(from..to) else {
        return;
    };
    set.scan(hay, |_, ms, me| {
        let (ms, me) = (from + ms, from + me);
        if whole_word(b, ms, me) {
            f(ms, me);
        }
    });
}

/// Distance from `b[s..e]` to the nearest whole word of `set` within `window` bytes on either
/// side, whatever stands between (the plain window of negative words).
pub fn nearest_word(
    set: &KeywordScanner,
    b: &[u8],
    s: usize,
    e: usize,
    window: usize,
) -> Option<usize> {
    let from = s.saturating_sub(window);
    let to = e.saturating_add(window).min(b.len());
    let mut best: Option<usize> = None;
    whole_words(set, b, from, to, |ms, me| {
        let d = if me <= s {
            s - me
        } else {
            ms.saturating_sub(e)
        };
        if best.is_none_or(|x| d < x) {
            best = Some(d);
        }
    });
    best
}

/// Distance from `b[s..e]` to the nearest label of `set` that reaches it by the rules above,
/// if it is at most `limit` bytes; with `before_only`, only labels written before the value.
pub fn nearest_label(
    set: &KeywordScanner,
    b: &[u8],
    s: usize,
    e: usize,
    limit: usize,
    before_only: bool,
) -> Option<usize> {
    let e = e.min(b.len());
    if s >= e {
        return None;
    }
    // The search reaches a label's full length beyond `limit`; distance is checked per label.
    let floor = s.saturating_sub(limit + LABEL_MAX);
    let before = &b[floor..s];
    // The line the value is in, and the line before when the value starts its own line.
    let from = match memchr::memrchr(b'\n', before) {
        Some(nl) => {
            let line_start = floor + nl + 1;
            if b[line_start..s]
                .iter()
                .all(|c| matches!(c, b' ' | b'\t' | b'\r' | b'>' | b'"' | b'\'' | b'(' | b'['))
            {
                match memchr::memrchr(b'\n', &b[floor..floor + nl]) {
                    Some(prev) => floor + prev + 1,
                    None => floor,
                }
            } else {
                line_start
            }
        }
        None => floor,
    };
    let ceiling = e.saturating_add(limit + LABEL_MAX).min(b.len());
    let to = memchr::memchr(b'\n', &b[e..ceiling]).map_or(ceiling, |nl| e + nl);
    let mut best: Option<usize> = None;
    whole_words(set, b, from, to, |ms, me| {
        let d = if me <= s {
            let gap = &b[me..s];
            if !line_break_ok(gap) || sentence_ends(b, me, s) || owned_number(gap) {
                return;
            }
            s - me
        } else if before_only {
            return;
        } else if ms >= e {
            let gap = &b[e..ms];
            if sentence_ends(b, e, ms) || owned_number(gap) || introduces(b, me) {
                return;
            }
            ms - e + AFTER
        } else {
            0
        };
        if d <= limit && best.is_none_or(|x| d < x) {
            best = Some(d);
        }
    });
    best
}

/// A gap before the value may hold one line break, when the label ends its line ("Social
/// Security Number:" and a break): what stands between the label and the break is a few words
/// without digits ("Number:", "no. #").
fn line_break_ok(gap: &[u8]) -> bool {
    match memchr::memchr(b'\n', gap) {
        None => true,
        Some(nl) => {
            nl <= 40 && !gap[..nl].iter().any(u8::is_ascii_digit) && !gap[nl + 1..].contains(&b'\n')
        }
    }
}

/// Does a sentence end in `b[from..to]`? `!` or `?` followed by a space; `.` after a word of four
/// letters or more, followed by a space and a capital ("last week. It is"), so that "No.",
/// "Soc. Sec." and "e.g." do not end one.
fn sentence_ends(b: &[u8], from: usize, to: usize) -> bool {
    let mut i = from;
    while i < to {
        let c = b[i];
        if matches!(c, b'.' | b'!' | b'?') {
            let mut j = i + 1;
            let mut spaced = false;
            while j < to && matches!(b[j], b' ' | b'\t') {
                spaced = true;
                j += 1;
            }
            if spaced && j < to {
                let next = b[j];
                let ends = match c {
                    b'.' => {
                        let word = b[..i]
                            .iter()
                            .rev()
                            .take_while(|c| c.is_ascii_alphabetic())
                            .count();
                        word >= 4 && next.is_ascii_uppercase()
                    }
                    _ => true,
                };
                if ends {
                    return true;
                }
            }
        }
        i += 1;
    }
    false
}

/// Does the gap hold a number of [`OWN_DIGITS`] digits or more (digits joined by single `-`,
/// `.` or spaces)? Then the label names that number, not the value beyond it.
fn owned_number(gap: &[u8]) -> bool {
    let mut digits = 0;
    let mut i = 0;
    while i < gap.len() {
        let c = gap[i];
        if c.is_ascii_digit() {
            digits += 1;
            if digits >= OWN_DIGITS {
                return true;
            }
        } else {
            let joins = matches!(c, b'-' | b'.' | b' ')
                && digits > 0
                && gap.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !joins {
                digits = 0;
            }
        }
        i += 1;
    }
    false
}

/// Does the label ending at `me` introduce what follows it ("SSN:", "card #", "PIN =")?
fn introduces(b: &[u8], me: usize) -> bool {
    let rest = &b[me.min(b.len())..];
    let skip = rest
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t'))
        .count();
    matches!(rest.get(skip), Some(b':' | b'=' | b'#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(words: &[&str]) -> KeywordScanner {
        let words: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        KeywordScanner::new(&words).unwrap()
    }

    fn label(text: &str, value: &str, words: &[&str]) -> Option<usize> {
        let s = text.find(value).unwrap();
        nearest_label(&set(words), text.as_bytes(), s, s + value.len(), FAR, false)
    }

    const SSN: &[&str] = &["ssn", "social security"];

    #[test]
    fn a_label_reaches_across_its_sentence() {
        let t = "the employee's social security number, as it appears on the enrolment form we \
                 received last week, is 536228714";
        let d = label(t, "536228714", SSN).unwrap();
        assert!(d > 60 && d <= MID, "{d}");
        assert_eq!(graded(Confidence::High, d, 40), Confidence::Medium);
    }

    #[test]
    fn a_label_stops_at_the_end_of_its_sentence() {
        let t = "We filed the social security paperwork for the whole team last month. \
                 Reference 536228714 is the bin.";
        assert_eq!(label(t, "536228714", SSN), None);
        // Abbreviations do not end a sentence.
        let t = "Soc. Sec. No. 536228714";
        assert!(label(t, "536228714", &["soc. sec"]).is_some());
    }

    #[test]
    fn a_label_on_the_next_line_names_the_next_value() {
        let t = "Warehouse bin code 412587391\nSSN: 536228714";
        assert_eq!(label(t, "412587391", SSN), None);
        assert_eq!(label(t, "536228714", SSN), Some(2));
    }

    #[test]
    fn a_label_that_ends_its_line_reaches_the_next_line() {
        let t = "Employee SSN:\n   536228714\n";
        assert!(label(t, "536228714", SSN).is_some());
        // But not two lines down, nor when the value does not start its line.
        assert_eq!(label("SSN:\n\n536228714", "536228714", SSN), None);
        assert_eq!(label("SSN:\nbin 536228714", "536228714", SSN), None);
    }

    #[test]
    fn another_number_takes_the_label() {
        let t = "SSN 412587391 and the bin 536228714";
        assert_eq!(label(t, "536228714", SSN), None);
        assert_eq!(label(t, "412587391", SSN), Some(1));
        // A short number (a year, a count) does not.
        let t = "SSN (updated 2023): 536228714";
        assert!(label(t, "536228714", SSN).is_some());
    }

    #[test]
    fn a_label_after_the_value() {
        assert_eq!(label("536228714 (SSN)", "536228714", SSN), Some(2 + AFTER));
        // Not when it introduces the next value, nor on the next line.
        assert_eq!(label("536228714 and SSN: 123", "536228714", SSN), None);
        assert_eq!(label("536228714\nSSN", "536228714", SSN), None);
    }

    #[test]
    fn confidence_falls_with_distance() {
        assert_eq!(graded(Confidence::High, 10, 40), Confidence::High);
        assert_eq!(graded(Confidence::High, 100, 40), Confidence::Medium);
        assert_eq!(graded(Confidence::High, 250, 40), Confidence::Low);
        assert_eq!(graded(Confidence::Medium, 100, 40), Confidence::Low);
        // A wide window keeps its full confidence.
        assert_eq!(graded(Confidence::High, 200, 250), Confidence::High);
    }

    /// Every occurrence is seen: a longer word that is not whole ("routing number" inside
    /// "routing numbers") does not hide a shorter one that is ("routing").
    #[test]
    fn a_longer_partial_word_does_not_hide_a_whole_one() {
        let words = &["routing number", "routing"];
        let t = "routing numbers: 021000021";
        assert!(label(t, "021000021", words).is_some());
        let s = t.find("021000021").unwrap();
        assert_eq!(
            nearest_word(&set(words), t.as_bytes(), s, s + 9, 40),
            Some(s - "routing".len())
        );
    }

    #[test]
    fn nearest_word_is_symmetric() {
        let t = b"card 5425 2334 3010 9903, invoice to follow";
        let inv = set(&["invoice"]);
        assert_eq!(nearest_word(&inv, t, 5, 24, 40), Some(2));
        assert_eq!(nearest_word(&inv, t, 5, 24, 1), None);
    }
}

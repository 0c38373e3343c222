//! Charts for the dashboard, drawn on the server as inline SVG (no JavaScript, prints well).
//! Labels are escaped here, as the SVG goes into the page as markup.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Colours for actions, in the order a security officer reads them (worst first).
pub const ACTION_COLOURS: &[(&str, &str)] = &[
    ("reject", "#a8321f"),
    ("quarantine", "#e08a1e"),
    ("tag", "#d8c23a"),
    ("accept", "#5b9b6b"),
];

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn colour_of(action: &str) -> &'static str {
    ACTION_COLOURS
        .iter()
        .find(|(a, _)| *a == action)
        .map(|(_, c)| *c)
        .unwrap_or("#7d8797")
}

/// A rounded-up axis maximum (1, 2, 5 × 10^n).
fn nice_max(v: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            if v <= step.saturating_mul(m) {
                return step.saturating_mul(m).max(1);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// Stacked columns: one per day, stacked by action. `counts[day][action]`.
pub fn stacked_days(days: &[String], counts: &BTreeMap<String, BTreeMap<String, u64>>) -> String {
    let (w, h, left, bottom, top) = (900.0f64, 240.0f64, 48.0f64, 36.0f64, 10.0f64);
    let n = days.len().max(1) as f64;
    let slot = (w - left - 10.0) / n;
    let bar = (slot * 0.7).max(2.0);
    let max = days
        .iter()
        .map(|d| counts.get(d).map(|m| m.values().sum::<u64>()).unwrap_or(0))
        .max()
        .unwrap_or(0);
    let axis = nice_max(max) as f64;
    let plot_h = h - top - bottom;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="chart-days" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="Messages judged per day, by action" xmlns="http://www.w3.org/2000/svg">"#
    );
    // Gridlines on round values: 5 steps for 1 or 5 × 10^n, 4 for 2 × 10^n; never below 1.
    let lead = axis as u64 / 10u64.pow((axis as u64).ilog10());
    let steps = match lead {
        2 => 4,
        _ => 5,
    }
    .min(axis as u64) as usize;
    for i in 0..=steps {
        let v = axis * i as f64 / steps as f64;
        let y = top + plot_h - plot_h * i as f64 / steps as f64;
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e6eb"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            w - 10.0,
            left - 4.0,
            y + 4.0,
            v.round() as u64
        );
    }
    for (i, day) in days.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = top + plot_h;
        if let Some(by_action) = counts.get(day) {
            for (action, _) in ACTION_COLOURS.iter().rev() {
                let v = by_action.get(*action).copied().unwrap_or(0);
                if v == 0 {
                    continue;
                }
                let bh = plot_h * v as f64 / axis;
                y -= bh;
                let _ = write!(
                    svg,
                    r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{bh:.1}" fill="{}"><title>{} {}: {v}</title></rect>"#,
                    colour_of(action),
                    esc(day),
                    esc(action)
                );
            }
        }
        // Label every day when few, else every seventh.
        let last = i + 1 == days.len();
        if days.len() <= 10 || last || (i % 7 == 0 && days.len() - i > 4) {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + bar / 2.0,
                h - bottom + 14.0,
                esc(day.get(5..).unwrap_or(day))
            );
        }
    }
    let mut lx = left;
    for (action, colour) in ACTION_COLOURS {
        let _ = write!(
            svg,
            r#"<rect x="{lx}" y="{}" width="10" height="10" fill="{colour}"/><text x="{}" y="{}">{action}</text>"#,
            h - 12.0,
            lx + 14.0,
            h - 3.0
        );
        lx += 90.0;
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars, largest first (at most `max_rows`).
pub fn hbars(id: &str, rows: &[(String, u64)], max_rows: usize) -> String {
    if rows.is_empty() {
        return r#"<p class="muted">Nothing yet.</p>"#.to_string();
    }
    let mut rows: Vec<&(String, u64)> = rows.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    rows.truncate(max_rows);
    let (w, row_h, label_w) = (440.0f64, 22.0f64, 170.0f64);
    let h = row_h * rows.len() as f64 + 8.0;
    let max = rows.first().map(|r| r.1).unwrap_or(1).max(1) as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="{}" viewBox="0 0 {w} {h}" width="100%" role="img" xmlns="http://www.w3.org/2000/svg">"#,
        esc(id)
    );
    for (i, (label, v)) in rows.iter().enumerate() {
        let y = 4.0 + row_h * i as f64;
        let bw = ((w - label_w - 60.0) * *v as f64 / max).max(1.0);
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect x="{label_w}" y="{:.1}" width="{bw:.1}" height="{:.1}" fill="#1f5fa8"/><text x="{:.1}" y="{:.1}">{v}</text>"##,
            label_w - 6.0,
            y + 14.0,
            esc(label),
            y + 3.0,
            row_h - 6.0,
            label_w + bw + 4.0,
            y + 14.0
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        let svg = hbars("x", &[("<script>alert(1)</script>".into(), 3)], 10);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"), "{svg}");
    }

    #[test]
    fn axis_is_round() {
        assert_eq!(nice_max(0), 1);
        assert_eq!(nice_max(7), 10);
        assert_eq!(nice_max(11), 20);
        assert_eq!(nice_max(1234), 2000);
    }

    #[test]
    fn days_draw_a_bar_per_action() {
        let mut counts = BTreeMap::new();
        counts.insert(
            "2026-11-30".to_string(),
            BTreeMap::from([("accept".to_string(), 10), ("reject".to_string(), 2)]),
        );
        let svg = stacked_days(&["2026-11-30".to_string()], &counts);
        assert!(svg.contains("2026-11-30 reject: 2"), "{svg}");
        assert!(svg.contains("2026-11-30 accept: 10"), "{svg}");
    }
}

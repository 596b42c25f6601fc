//! Charts as inline SVG with axes, ticks and labels, drawn to a view box that scales to the
//! width of a phone. Each bar carries its value as a tooltip, and the page has the same numbers
//! in a table for a screen reader.
use maud::{Markup, html};

/// A "nice" upper bound for an axis (1, 2 or 5 times a power of ten) at or above `max`.
pub fn nice_max(max: i64) -> i64 {
    let max = max.max(1);
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if m * step >= max {
                return m * step;
            }
        }
        step *= 10;
    }
}

const W: f64 = 480.0;

/// Vertical bars, one per `(label, value)` in order (days), with a value axis and the first,
/// middle and last labels under the bars.
pub fn columns(id: &str, title: &str, axis: &str, items: &[(String, i64)]) -> Markup {
    let (left, right, top, bottom, h) = (52.0, 8.0, 12.0, 44.0, 240.0);
    let plot_w = W - left - right;
    let plot_h = h - top - bottom;
    let top_value = nice_max(items.iter().map(|(_, v)| *v).max().unwrap_or(0));
    let n = items.len().max(1) as f64;
    let slot = plot_w / n;
    let y = |v: i64| top + plot_h - v as f64 / top_value as f64 * plot_h;
    let ticks = [0, top_value / 2, top_value];
    let shown: Vec<usize> = match items.len() {
        0 => vec![],
        1 => vec![0],
        2 => vec![0, 1],
        k => vec![0, k / 2, k - 1],
    };
    html! {
        svg viewBox={ "0 0 " (W) " " (h) } role="img" aria-labelledby=(format!("{id}-t")) font-size="13" {
            title id=(format!("{id}-t")) { (title) }
            @for t in ticks {
                line x1=(left) x2=(W - right) y1=(y(t)) y2=(y(t)) stroke="#d0d0d0" {}
                text x=(left - 6.0) y=(y(t) + 4.0) text-anchor="end" { (t) }
            }
            @for (i, (label, v)) in items.iter().enumerate() {
                rect x=(format!("{:.1}", left + i as f64 * slot + slot * 0.1))
                    y=(format!("{:.1}", y(*v)))
                    width=(format!("{:.1}", (slot * 0.8).max(0.5)))
                    height=(format!("{:.1}", top + plot_h - y(*v)))
                    fill="#0b57d0" {
                    title { (label) ": " (v) }
                }
            }
            line x1=(left) x2=(left) y1=(top) y2=(top + plot_h) stroke="#1b1b1b" {}
            line x1=(left) x2=(W - right) y1=(top + plot_h) y2=(top + plot_h) stroke="#1b1b1b" {}
            @for i in &shown {
                @let cx = left + (*i as f64 + 0.5) * slot;
                @let anchor = if *i == 0 && items.len() > 1 { "start" } else if *i + 1 == items.len() && items.len() > 1 { "end" } else { "middle" };
                @let x = if anchor == "start" { left } else if anchor == "end" { W - right } else { cx };
                text x=(format!("{x:.1}")) y=(top + plot_h + 16.0) text-anchor=(anchor) { (items[*i].0) }
            }
            text x=(left + plot_w / 2.0) y=(h - 6.0) text-anchor="middle" { "Day (local)" }
            text x="12" y=(top + plot_h / 2.0) text-anchor="middle"
                transform=(format!("rotate(-90 12 {})", top + plot_h / 2.0)) { (axis) }
        }
    }
}

/// Horizontal bars, one per `(label, value)`, labels on the left and values at the bars' ends,
/// with a value axis under them.
pub fn bars(id: &str, title: &str, axis: &str, items: &[(&str, i64)]) -> Markup {
    let (left, right, top, row) = (214.0, 36.0, 8.0, 30.0);
    let plot_w = W - left - right;
    let h = top + row * items.len() as f64 + 44.0;
    let base = top + row * items.len() as f64;
    let top_value = nice_max(items.iter().map(|(_, v)| *v).max().unwrap_or(0));
    let x = |v: i64| left + v as f64 / top_value as f64 * plot_w;
    html! {
        svg viewBox={ "0 0 " (W) " " (h) } role="img" aria-labelledby=(format!("{id}-t")) font-size="13" {
            title id=(format!("{id}-t")) { (title) }
            @for (i, (label, v)) in items.iter().enumerate() {
                @let y0 = top + i as f64 * row;
                text x=(left - 6.0) y=(y0 + 19.0) text-anchor="end" { (label) }
                rect x=(left) y=(y0 + 5.0) width=(format!("{:.1}", x(*v) - left)) height="18"
                    fill="#9a3412" { title { (label) ": " (v) } }
                text x=(format!("{:.1}", x(*v) + 4.0)) y=(y0 + 19.0) { (v) }
            }
            line x1=(left) x2=(left) y1=(top) y2=(base) stroke="#1b1b1b" {}
            line x1=(left) x2=(left + plot_w) y1=(base) y2=(base) stroke="#1b1b1b" {}
            @for t in [0, top_value / 2, top_value] {
                text x=(x(t)) y=(base + 16.0) text-anchor="middle" { (t) }
            }
            text x=(left + plot_w / 2.0) y=(h - 6.0) text-anchor="middle" { (axis) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_at_a_round_number() {
        assert_eq!(
            [nice_max(0), nice_max(1), nice_max(3), nice_max(7), nice_max(11)],
            [1, 1, 5, 10, 20]
        );
        assert_eq!(nice_max(4_321), 5_000);
    }

    #[test]
    fn charts_have_a_title_axes_and_a_bar_per_item() {
        let days = vec![("2026-11-01".to_string(), 3), ("2026-11-02".to_string(), 0)];
        let svg = columns("r", "Plates read per day", "Plates read", &days).into_string();
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("<title id=\"r-t\">Plates read per day</title>"), "{svg}");
        assert!(svg.contains("2026-11-01") && svg.contains("Day (local)") && svg.contains(">5<"));
        let svg = bars("h", "Hits", "Hits", &[("Warrant", 2), ("Stolen", 0)]).into_string();
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains(">Warrant<"));
    }
}

//! The public log of use: per reader and period of active use, the times it collected, how
//! many plates it read, the databases it compared them with, its hits by category, and where a
//! stationary reader stood; with two charts (reads per day, hits by category) drawn as SVG.
use super::{Links, csv_field, escape, page};
use crate::records::UseLog;
use crate::records::uselog::CATEGORIES;
use std::fmt::Write;

/// Reads per day as a bar chart.
fn reads_chart(log: &UseLog) -> String {
    let (w, h, pad) = (900.0_f64, 180.0_f64, 30.0_f64);
    let max = log.days.iter().map(|d| d.reads).max().unwrap_or(0).max(1) as f64;
    let n = log.days.len().max(1) as f64;
    let bar = ((w - pad) / n).max(0.5);
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"Plates read per day\" width=\"{w}\" height=\"{}\" \
         viewBox=\"0 0 {w} {}\"><title>Plates read per day</title>\
         <text x=\"0\" y=\"12\">{}</text><text x=\"0\" y=\"{h}\">0</text>",
        h + 20.0,
        h + 20.0,
        max as i64
    );
    for (i, d) in log.days.iter().enumerate() {
        let bh = d.reads as f64 / max * (h - 10.0);
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#36c\">\
             <title>{}: {} reads</title></rect>",
            pad + i as f64 * bar,
            h - bh,
            (bar - 0.5).max(0.5),
            bh,
            d.day,
            d.reads
        );
    }
    if let (Some(first), Some(last)) = (log.days.first(), log.days.last()) {
        let _ = write!(
            svg,
            "<text x=\"{pad}\" y=\"{}\">{}</text><text x=\"{w}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            h + 16.0,
            first.day,
            h + 16.0,
            last.day
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Hits by category as horizontal bars.
fn hits_chart(log: &UseLog) -> String {
    let max = log.total_hits.values().copied().max().unwrap_or(0).max(1) as f64;
    let mut svg = String::from(
        "<svg role=\"img\" aria-label=\"Hits by category\" width=\"700\" height=\"160\" \
         viewBox=\"0 0 700 160\"><title>Hits by category</title>",
    );
    for (i, (key, label)) in CATEGORIES.iter().enumerate() {
        let n = log.total_hits.get(key).copied().unwrap_or(0);
        let y = 8.0 + i as f64 * 25.0;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{:.0}\">{}</text><rect x=\"230\" y=\"{y:.0}\" width=\"{:.1}\" \
             height=\"16\" fill=\"#c63\"></rect><text x=\"{:.1}\" y=\"{:.0}\">{n}</text>",
            y + 12.0,
            escape(label),
            n as f64 / max * 400.0,
            236.0 + n as f64 / max * 400.0,
            y + 12.0
        );
    }
    svg.push_str("</svg>");
    svg
}

pub fn html(log: &UseLog, agency: &str, links: Links) -> String {
    let mut body = format!(
        "<p>Log of use from {} to {} (local days): each period of active use of each reader, the \
         hours it collected, the plates it read, the databases it compared them with, and how \
         many were hits, by category. Counts are kept when reads are destroyed. Also as \
         <a href=\"log.csv\">CSV</a> and <a href=\"log.json\">JSON</a>.</p>\
         <p>Plates read: <strong id=\"total-reads\">{}</strong>.</p>\
         <h2>Plates read per day</h2>{}<h2>Hits by category</h2>{}\
         <h2>Periods of active use</h2><table id=\"periods\"><thead><tr><th>Reader</th>\
         <th>From</th><th>Until</th><th>Hours collected</th><th>Location</th>\
         <th>Databases compared</th><th>Plates read</th>",
        log.from,
        log.to,
        log.total_reads,
        reads_chart(log),
        hits_chart(log)
    );
    for (_, label) in CATEGORIES {
        let _ = write!(body, "<th>{}</th>", escape(label));
    }
    body.push_str("</tr></thead><tbody>");
    for p in &log.periods {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"num\">{}</td>",
            escape(&p.reader),
            escape(p.start.as_deref().unwrap_or(&p.first_day)),
            escape(match (&p.start, &p.end) {
                (None, _) => p.last_day.as_str(),
                (Some(_), None) => "in use",
                (Some(_), Some(e)) => e.as_str(),
            }),
            escape(&p.hours),
            escape(p.location.as_deref().unwrap_or(if p.period_id == 0 {
                "(no recorded period)"
            } else {
                "withheld or unknown"
            })),
            escape(&p.databases.join(", ")),
            p.reads
        );
        for (key, _) in CATEGORIES {
            let _ =
                write!(body, "<td class=\"num\">{}</td>", p.hits.get(key).copied().unwrap_or(0));
        }
        body.push_str("</tr>");
    }
    if log.periods.is_empty() {
        body.push_str("<tr><td colspan=\"13\">No use in these days.</td></tr>");
    }
    body.push_str("</tbody></table>");
    page("Automated license plate reader log of use", agency, links, &body)
}

pub fn json(log: &UseLog) -> String {
    serde_json::to_string(log).unwrap_or_default()
}

pub fn csv(log: &UseLog) -> String {
    let mut out = String::from("reader,period,from,until,hours,location,databases,plates_read");
    for (key, _) in CATEGORIES {
        out.push(',');
        out.push_str(key);
    }
    out.push('\n');
    for p in &log.periods {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{}",
            csv_field(&p.reader),
            p.period_id,
            csv_field(p.start.as_deref().unwrap_or(&p.first_day)),
            csv_field(p.end.as_deref().unwrap_or(&p.last_day)),
            csv_field(&p.hours),
            csv_field(p.location.as_deref().unwrap_or_default()),
            csv_field(&p.databases.join("; ")),
            p.reads
        );
        for (key, _) in CATEGORIES {
            let _ = write!(out, ",{}", p.hits.get(key).copied().unwrap_or(0));
        }
        out.push('\n');
    }
    out
}

//! The public log of use (Minn. Stat. 13.824 subd. 5(a)): for the chosen local days, each
//! reader's periods of active use with the hours it collected, how many plates it read, the
//! databases it compared them with, its hits by category and where a stationary reader stood;
//! charts of plates per day and hits by category; downloads that keep the chosen days.
use super::chart;
use super::layout::{Agency, Csv, Field, Links, Page, page, scroll};
use crate::records::UseLog;
use crate::records::uselog::CATEGORIES;
use maud::html;

/// The query that asks for the same days again.
fn range_query(log: &UseLog) -> String {
    format!("from={}&to={}", log.from, log.to)
}

fn until(p: &crate::records::uselog::LogPeriod) -> &str {
    match (&p.start, &p.end) {
        (None, _) => p.last_day.as_str(),
        (Some(_), None) => "still collecting",
        (Some(_), Some(e)) => e.as_str(),
    }
}

pub fn html(log: &UseLog, agency: &Agency, links: Links) -> String {
    let query = range_query(log);
    let days: Vec<(String, i64)> = log.days.iter().map(|d| (d.day.clone(), d.reads)).collect();
    let hits: Vec<(&str, i64)> = CATEGORIES
        .iter()
        .map(|(key, label)| (*label, log.total_hits.get(key).copied().unwrap_or(0)))
        .collect();
    let mut databases: Vec<&str> =
        log.periods.iter().flat_map(|p| p.databases.iter().map(String::as_str)).collect();
    databases.sort_unstable();
    databases.dedup();
    let main = html! {
        p {
            "When each reader collected, how many plates it read, the databases it compared them "
            "with and how many were hits, by kind. These counts stay after the reads themselves "
            "are destroyed (at most 60 days after collection). Days and hours are local."
        }
        form method="get" action=(links.page("log")) aria-label="Choose the days" {
            label { "From" input type="date" name="from" value=(log.from) required; }
            label { "To" input type="date" name="to" value=(log.to) required; }
            button type="submit" { "Show these days" }
        }
        p #range { "Showing " strong { (log.from) } " to " strong { (log.to) } ": "
            strong #total-reads { (log.total_reads) } " plates read, "
            strong #total-hits { (log.total_hits.values().sum::<i64>()) } " hits." }
        h2 { "Plates read per day" }
        figure {
            (chart::columns("reads-chart", "Plates read per day", "Plates read", &days))
            figcaption { "Plates read on each local day from " (log.from) " to " (log.to) "." }
        }
        h2 { "Hits by kind" }
        figure {
            (chart::bars("hits-chart", "Hits by kind", "Hits", &hits))
            figcaption { "A hit is a read that matched a list; every hit is checked by a person "
                "against the state's systems before anyone acts on it." }
        }
        (scroll(html! {
            table #hits {
                caption { "Hits by kind" }
                thead { tr { th scope="col" { "Kind" } th scope="col" class="num" { "Hits" } } }
                tbody { @for (label, n) in &hits { tr { td { (label) } td.num { (n) } } } }
            }
        }))
        h2 { "Databases compared" }
        @if databases.is_empty() {
            p { "No reads in these days." }
        } @else {
            ul #databases { @for d in &databases { li { (d) } } }
        }
        h2 { "Periods of active use" }
        (scroll(html! {
            table #periods {
                caption { "Each period a reader was collecting (" (log.periods.len()) ")" }
                thead { tr {
                    th scope="col" { "Reader" }
                    th scope="col" { "From" }
                    th scope="col" { "Until" }
                    th scope="col" { "Hours collected" }
                    th scope="col" { "Where" }
                    th scope="col" { "Databases compared" }
                    th scope="col" class="num" { "Plates read" }
                    @for (_, label) in CATEGORIES { th scope="col" class="num" { (label) } }
                } }
                tbody {
                    @for p in &log.periods {
                        tr {
                            td { (p.reader) }
                            td { (p.start.as_deref().unwrap_or(&p.first_day)) }
                            td { (until(p)) }
                            td { (p.hours) }
                            td { (p.location.as_deref().unwrap_or(if p.period_id == 0 {
                                "(no recorded period)"
                            } else {
                                "withheld or not stationary"
                            })) }
                            td { (p.databases.join(", ")) }
                            td.num { (p.reads) }
                            @for (key, _) in CATEGORIES { td.num { (p.hits.get(key).copied().unwrap_or(0)) } }
                        }
                    }
                    @if log.periods.is_empty() {
                        tr { td colspan="13" { "No use in these days." } }
                    }
                }
            }
        }))
        h2 { "Download" }
        ul #downloads {
            li { a href=(links.download("log.csv", &query)) { "This log as CSV" } }
            li { a href=(links.download("log.json", &query)) { "This log as JSON" } }
        }
    };
    page(Page::Log, "Log of use", agency, links, main)
}

pub fn json(log: &UseLog) -> String {
    serde_json::to_string(log).unwrap_or_default()
}

pub fn csv(log: &UseLog) -> String {
    let mut header =
        vec!["reader", "period", "from", "until", "hours", "location", "databases", "plates_read"];
    header.extend(CATEGORIES.iter().map(|(key, _)| *key));
    let mut c = Csv::new(&header);
    for p in &log.periods {
        let databases = p.databases.join("; ");
        let mut row = vec![
            Field::Text(&p.reader),
            Field::Num(p.period_id.to_string()),
            Field::Text(p.start.as_deref().unwrap_or(&p.first_day)),
            Field::Text(p.end.as_deref().unwrap_or(&p.last_day)),
            Field::Text(&p.hours),
            Field::Text(p.location.as_deref().unwrap_or_default()),
            Field::Text(&databases),
            Field::Num(p.reads.to_string()),
        ];
        row.extend(
            CATEGORIES
                .iter()
                .map(|(key, _)| Field::Num(p.hits.get(key).copied().unwrap_or(0).to_string())),
        );
        c.row(&row);
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> UseLog {
        UseLog {
            from: "2026-11-01".into(),
            to: "2026-11-03".into(),
            periods: vec![],
            days: vec![],
            total_reads: 0,
            total_hits: Default::default(),
        }
    }

    /// The form asks for the days shown, and the downloads keep them (served); the exported
    /// site's files hold the exported days.
    #[test]
    fn the_form_and_the_downloads_keep_the_chosen_days() {
        let h = html(&log(), &Agency::default(), Links(""));
        assert!(h.contains(r#"name="from" value="2026-11-01""#), "{h}");
        assert!(h.contains(r#"href="log.csv?from=2026-11-01&amp;to=2026-11-03""#), "{h}");
        assert!(h.contains(r#"href="log.json?from=2026-11-01&amp;to=2026-11-03""#), "{h}");
        let h = html(&log(), &Agency::default(), Links(".html"));
        assert!(h.contains(r#"href="log.csv""#) && h.contains(r#"action="log.html""#), "{h}");
    }
}

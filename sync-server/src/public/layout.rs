//! The frame every public page shares: the agency's name, the navigation, the main content and
//! the agency's contact; one style sheet, phone first, no script and no outside asset. Built
//! with maud, which escapes every value it is given.
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// Who publishes the pages.
#[derive(Debug, Clone, Default)]
pub struct Agency {
    pub name: String,
    pub contact: String,
    /// Where the agency publishes its written ALPR policy (empty: ask the contact).
    pub policy_url: String,
}

/// How pages link to each other: served (`/public/log`, downloads with the chosen range in
/// their query) or exported as static files (`log.html`, downloads as written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Links(pub &'static str);

impl Links {
    /// A page of the site.
    pub fn page(self, name: &str) -> String {
        format!("{name}{}", self.0)
    }

    /// A download, keeping `query` when served (a static file holds the exported range).
    pub fn download(self, file: &str, query: &str) -> String {
        if self.0.is_empty() && !query.is_empty() {
            format!("{file}?{query}")
        } else {
            file.to_string()
        }
    }
}

/// The pages, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Agency,
    Locations,
    Log,
    Audit,
}

const NAV: [(Page, &str, &str); 4] = [
    (Page::Agency, "agency", "About the program"),
    (Page::Locations, "locations", "Where readers stood"),
    (Page::Log, "log", "Log of use"),
    (Page::Audit, "audit", "Audit trail"),
];

/// Colours meet WCAG 2.1 AA contrast on white (text #1b1b1b, links #0b57d0, borders #767676);
/// tables scroll inside their own box, so the page never scrolls sideways on a phone.
const STYLE: &str = "\
:root{color-scheme:light}\
body{font:16px/1.5 system-ui,-apple-system,'DejaVu Sans',sans-serif;margin:0;color:#1b1b1b;background:#fff;overflow-wrap:anywhere}\
header,main,footer{padding:0 1rem;max-width:72rem;margin:0 auto;box-sizing:border-box}\
header{border-bottom:1px solid #767676}\
header p{margin:.5rem 0 0}\
nav ul{list-style:none;padding:0;margin:.5rem 0;display:flex;flex-wrap:wrap;gap:.25rem 1.25rem}\
a{color:#0b57d0}\
a:focus-visible,button:focus-visible,input:focus-visible{outline:3px solid #9a3412;outline-offset:2px}\
nav a[aria-current=page]{color:#1b1b1b;font-weight:bold;text-decoration:none}\
h1{font-size:1.6rem;line-height:1.25}h2{font-size:1.25rem;margin-top:2rem}\
.scroll{overflow-x:auto;max-width:100%}\
table{border-collapse:collapse;margin:.25rem 0 1rem}\
caption{text-align:left;font-weight:bold;padding:.25rem 0}\
th,td{border:1px solid #767676;padding:.3rem .5rem;text-align:left;vertical-align:top;overflow-wrap:normal}\
.num{text-align:right;font-variant-numeric:tabular-nums}\
figure{margin:1rem 0}figcaption{font-size:.9rem}\
svg{width:100%;height:auto;max-width:44rem;display:block}\
form{display:flex;flex-wrap:wrap;gap:.75rem 1.25rem;align-items:flex-end;margin:1rem 0}\
label{display:flex;flex-direction:column;font-weight:bold}\
input,button{font:inherit;padding:.35rem .5rem}\
input{border:1px solid #767676;border-radius:4px}\
button{background:#0b57d0;color:#fff;border:0;border-radius:4px;cursor:pointer}\
.notice{border-left:4px solid #9a3412;padding:.5rem 1rem;background:#fff7ed}\
dt{font-weight:bold;margin-top:.5rem}dd{margin-left:1rem}\
footer{border-top:1px solid #767676;margin-top:2rem;padding-bottom:1rem}";

/// A whole page.
pub fn page(current: Page, title: &str, agency: &Agency, links: Links, main: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — " (agency.name) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    p { strong { (agency.name) } ": automated license plate readers "
                        "(Minn. Stat. 13.824)" }
                    nav aria-label="Public records" {
                        ul {
                            @for (page, href, label) in NAV {
                                li {
                                    @if page == current {
                                        a href=(links.page(href)) aria-current="page" { (label) }
                                    } @else {
                                        a href=(links.page(href)) { (label) }
                                    }
                                }
                            }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (main)
                }
                footer {
                    p { "Questions about these records: " (agency.contact) "." }
                }
            }
        }
    }
    .into_string()
}

/// A table that scrolls inside its own box on a narrow screen.
pub fn scroll(table: Markup) -> Markup {
    html! { div.scroll role="region" aria-label="Table (scrolls sideways)" tabindex="0" { (table) } }
}

pub use crate::csvfile::{Csv, Field};

/// A local time as a resident reads it: `2026-11-22 21:30 CST`.
pub fn local_time(tz: &jiff::tz::TimeZone, ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_are_given() {
        let agency =
            Agency { name: "PD <x>".into(), contact: "a&b".into(), policy_url: String::new() };
        let h = page(Page::Log, "T", &agency, Links(""), html! { p { "<script>" } });
        assert!(
            h.contains("PD &lt;x&gt;") && h.contains("a&amp;b") && h.contains("&lt;script&gt;")
        );
        assert!(h.contains(r#"<a href="log" aria-current="page">"#), "{h}");
        assert_eq!(Links("").download("log.csv", "from=1"), "log.csv?from=1");
        assert_eq!(Links(".html").download("log.csv", "from=1"), "log.csv");
    }

    #[test]
    fn local_times_follow_the_agency() {
        let tz = jiff::tz::TimeZone::get("America/Chicago").expect("tz");
        assert_eq!(local_time(&tz, 1_795_404_600_000), "2026-11-22 21:30 CST");
    }
}

//! The public view of the audit trail, in plain words: when (local time), what kind of actor,
//! what was done, and how many records it concerned, with a glossary of every kind of action and
//! counts by month. Who exactly, why, the case number and the details are classified and never
//! leave the records (the query does not select them); nothing of an Address Confidentiality
//! Program request is shown at all. Also the audits' published results and a suspension in
//! force (subd. 6).
use super::layout::{Agency, Csv, Field, Links, Page, local_time, page, scroll};
use crate::records::{AuditResult, PublicAuditEntry, Records, RecordsError, Suspension};
use maud::{Markup, html};
use serde::Serialize;

/// Entries per page.
pub const PAGE: i64 = 500;

/// What an action is, in plain words: every action the server records, by its id (a console
/// request's id without its `console.` prefix).
pub const GLOSSARY: &[(&str, &str)] = &[
    ("reads.list", "Someone listed stored plate reads, giving a purpose and a case number."),
    ("alerts.list", "Someone listed hotlist hits, giving a purpose and a case number."),
    ("alerts.ack", "An operator recorded what came of a hotlist hit."),
    (
        "alerts.delivered",
        "Open hotlist hits were shown to an on-duty operator so they could respond.",
    ),
    (
        "plates.search",
        "An investigator searched for a plate, giving a purpose, a case number and the legal basis (a warrant, or an emergency and its facts).",
    ),
    ("pictures.get", "Someone viewed the pictures of a read."),
    ("reads.export", "Someone exported stored reads, giving a purpose and a case number."),
    ("status", "Someone looked at the readers' working state (no plate data)."),
    ("whoami", "Someone looked up their own role (no plate data)."),
    ("deployments.list", "Someone listed where readers stood."),
    ("deployments.start", "An operator recorded that a reader was set up at a place."),
    ("deployments.end", "An operator recorded that a reader was taken away from a place."),
    ("deployments.rename", "Someone named a place."),
    (
        "deployments.security",
        "A supervisor decided whether a place is security information, giving a reason.",
    ),
    ("location.rename", "Someone named a place."),
    (
        "location.security",
        "A supervisor decided whether a place is security information, giving a reason.",
    ),
    ("location.end", "An administrator recorded that a reader left its place."),
    ("locations.list", "Someone listed every place, withheld ones included."),
    ("locations.determinations", "Someone exported the security decisions for a review."),
    ("notices.list", "Someone listed the notices to the Bureau of Criminal Apprehension."),
    ("notices.send", "Someone sent a notice to the Bureau of Criminal Apprehension."),
    (
        "notices.mark-sent",
        "Someone recorded a notice sent to the Bureau of Criminal Apprehension by hand.",
    ),
    ("notices.render", "Someone wrote out a notice to the Bureau of Criminal Apprehension."),
    ("bca.notice.send", "The server sent a notice to the Bureau of Criminal Apprehension."),
    ("bca.notice.resend", "A notice to the Bureau of Criminal Apprehension was sent again."),
    (
        "bca.notice.render",
        "A notice to the Bureau of Criminal Apprehension was written out for staff to send.",
    ),
    ("hotlists.upload", "An operator uploaded a list of plates to look for."),
    ("hotlists.list", "Someone listed the lists of plates looked for."),
    ("hotlists.approve", "A second supervisor approved an investigation's list of plates."),
    ("hotlists.withdraw", "A supervisor withdrew a list of plates from every reader."),
    ("hotlist.load", "A list of plates to look for was sent to the readers."),
    ("hotlist.withdraw", "A list of plates was withdrawn from every reader."),
    ("holds.place", "A supervisor kept reads past 60 days for a case, on a written request."),
    ("holds.release", "A supervisor ended a hold; its reads fall under the 60-day rule again."),
    ("holds.list", "Someone listed the holds."),
    ("hold.place", "A supervisor kept reads past 60 days for a case, on a written request."),
    ("hold.release", "A supervisor ended a hold; its reads fall under the 60-day rule again."),
    ("release.request", "A supervisor entered another agency's written request for data."),
    ("release.review", "A supervisor reviewed another agency's request for data."),
    ("release.decide", "A second supervisor approved or denied another agency's request for data."),
    ("release.fulfil", "Data was given to another agency on an approved written request."),
    ("release.list", "Someone listed the requests for data from other agencies."),
    ("release.import", "Data another agency shared was received and kept under the same rules."),
    ("publiclog.generate", "Someone produced the public log of use."),
    ("audit.report", "Someone produced the biennial audit report."),
    ("audit.verify", "Someone checked that the audit trail is whole and unaltered."),
    ("audit.export", "An auditor exported audit entries for a review."),
    ("audit.result", "An independent audit's result was recorded and published."),
    ("audit.reported", "An audit's report to the Commissioner was recorded as sent."),
    ("users.manage", "An administrator changed or listed who may use the system."),
    ("users.grant", "An administrator gave someone a role, on a written authorisation."),
    ("users.disable", "An administrator took someone's access away."),
    ("users.list", "An administrator listed who may use the system."),
    ("trailers.enroll", "A reader was enrolled."),
    ("trailers.revoke", "A reader was withdrawn from service."),
    ("trailer.certificate_renewed", "A reader's certificate was renewed."),
    ("trailer.store_replaced", "A reader's storage was replaced."),
    ("trailer.store_restored", "A reader's storage was restored from an older copy."),
    ("downlink.hotlist", "A list of plates was sent to a reader."),
    ("downlink.hold", "A reader was told to keep reads for a case."),
    ("downlink.release", "A reader was told a hold ended."),
    ("downlink.health", "A reader was asked for its working state."),
    ("downlink.picture", "A reader was asked for a read's picture."),
    ("downlink.config", "A reader's settings were changed."),
    ("dead_letters.list", "Someone looked at messages the server refused."),
    ("deadletters.list", "Someone looked at messages the server refused."),
    (
        "reads.picture",
        "An investigator asked a reader for a read's picture, giving a purpose and a case number.",
    ),
    (
        "deployments.determinations",
        "Someone listed the security decisions about places for a review.",
    ),
    ("suspension.list", "Someone listed the suspension orders."),
    ("audit.results", "Someone listed the independent audits' results."),
    ("trailers.list", "Someone listed the readers and their working state."),
    ("trailers.health", "A reader was asked for its working state."),
    ("trailers.config", "A reader's settings were changed."),
    ("trailers.downlinks", "Someone listed the commands sent to the readers."),
    ("release.files", "A supervisor listed the files given to another agency."),
    ("release.download", "A supervisor fetched the files given to another agency."),
    ("destroy", "Data past its retention period was destroyed."),
    (
        "backup",
        "A backup of the records was made; it is destroyed when its oldest read reaches 60 days.",
    ),
    ("backup.destroy", "A backup holding data past its days was destroyed."),
    ("suspension.order", "A suspension order stopped collection on every reader."),
    ("suspension.lift", "A suspension order was lifted; the readers collect again."),
    ("refused", "A request was refused (not among the person's duties, or incomplete)."),
    ("rate_limited", "A request was refused: too many at once."),
];

/// An action's plain words.
pub fn describe(action: &str) -> &'static str {
    let id = action.strip_prefix("console.").unwrap_or(action);
    GLOSSARY.iter().find(|(a, _)| *a == id).map_or("Another recorded action.", |(_, words)| words)
}

/// Who acted, in words (never the person's name).
pub fn actor_words(kind: &str) -> &'static str {
    match kind {
        "console" => "staff, at the console",
        "cli" => "staff, on the server",
        "retention" => "automatic destruction",
        "backup" => "the backup",
        "sync-server" | "server" => "the server",
        _ => "the system",
    }
}

/// One entry as the public sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Shown<'a> {
    #[serde(flatten)]
    pub entry: &'a PublicAuditEntry,
    pub local_time: String,
    pub description: &'static str,
}

fn shown<'a>(tz: &jiff::tz::TimeZone, entries: &'a [PublicAuditEntry]) -> Vec<Shown<'a>> {
    entries
        .iter()
        .map(|e| Shown {
            entry: e,
            local_time: local_time(tz, e.at_ms),
            description: describe(&e.action),
        })
        .collect()
}

/// What the public sees of oversight (Minn. Stat. 13.824 subd. 6): every audit's published
/// result, with its report to the Commissioner, and a suspension order in force.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Oversight {
    pub audits: Vec<PublicResult>,
    pub suspended_since: Option<String>,
    pub suspension_order: Option<String>,
}

/// An audit's result as published.
#[derive(Debug, Clone, Serialize)]
pub struct PublicResult {
    pub completed: String,
    pub auditor: String,
    pub compliant: bool,
    pub summary: String,
    pub report_due: String,
    pub reported: Option<String>,
}

impl Oversight {
    pub async fn of(records: &Records, now: i64) -> Result<Oversight, RecordsError> {
        let audits = records.audit_results(now).await?;
        let in_force: Option<Suspension> =
            records.suspensions().await?.into_iter().find(|s| s.lifted_ms.is_none());
        Ok(Oversight {
            audits: audits
                .into_iter()
                .map(|a: AuditResult| PublicResult {
                    completed: a.completed,
                    auditor: a.auditor,
                    compliant: a.compliant,
                    summary: a.summary,
                    report_due: a.report_due,
                    reported: a.reported_at.map(|t| t.chars().take(10).collect()),
                })
                .collect(),
            suspended_since: in_force.as_ref().map(|s| s.ordered_at.clone()),
            suspension_order: in_force.map(|s| s.order),
        })
    }
}

/// A suspension order in force, if any, as a notice.
pub fn suspension_notice(o: &Oversight) -> Markup {
    html! {
        @if let (Some(since), Some(order)) = (&o.suspended_since, &o.suspension_order) {
            p.notice #suspension {
                strong { "Collection is suspended" } " since " (since) " under order " (order)
                ": no reader collects until the order is lifted."
            }
        }
    }
}

/// The oversight section: a suspension in force, then the audits' results, newest first.
pub fn oversight_html(o: &Oversight) -> Markup {
    html! {
        (suspension_notice(o))
        h2 { "Independent audits" }
        @if o.audits.is_empty() {
            p #audits { "No audit result has been recorded yet." }
        } @else {
            (scroll(html! {
                table #audits {
                    caption { "Results of the independent audits, newest first" }
                    thead { tr {
                        th scope="col" { "Completed" }
                        th scope="col" { "Auditor" }
                        th scope="col" { "Result" }
                        th scope="col" { "Summary" }
                        th scope="col" { "Report to the Commissioner" }
                    } }
                    tbody { @for a in &o.audits { tr {
                        td { (a.completed) }
                        td { (a.auditor) }
                        td { (if a.compliant { "compliant" } else { "findings" }) }
                        td { (a.summary) }
                        td { @match &a.reported { Some(day) => { "sent " (day) }, None => { "due " (a.report_due) } } }
                    } } }
                }
            }))
        }
    }
}

/// Entries per month over the entries given: (month, entries, accesses to data, destruction).
fn by_month(tz: &jiff::tz::TimeZone, entries: &[PublicAuditEntry]) -> Vec<(String, i64, i64, i64)> {
    let mut months: std::collections::BTreeMap<String, (i64, i64, i64)> = Default::default();
    for e in entries {
        let month: String = local_time(tz, e.at_ms).chars().take(7).collect();
        let m = months.entry(month).or_default();
        m.0 += 1;
        if crate::records::audit::is_access(&e.action) {
            m.1 += 1;
        }
        if matches!(e.action.as_str(), "destroy" | "backup.destroy") {
            m.2 += 1;
        }
    }
    months.into_iter().rev().map(|(m, (a, b, c))| (m, a, b, c)).collect()
}

pub fn html(
    entries: &[PublicAuditEntry],
    oversight: &Oversight,
    tz: &jiff::tz::TimeZone,
    agency: &Agency,
    links: Links,
) -> String {
    let rows = shown(tz, entries);
    let months = by_month(tz, entries);
    let older = entries.last().filter(|_| entries.len() as i64 >= PAGE && links.0.is_empty());
    let main = html! {
        p {
            "Every query, response and action on the agency's plate reader data is entered in an "
            "audit trail that cannot be changed without it showing. This page shows each entry's "
            "local time, what kind of actor it was, what was done and how many records it "
            "concerned. Who exactly, why, the case number and the details are not public."
        }
        (oversight_html(oversight))
        h2 { "Entries by month" }
        (scroll(html! {
            table #months {
                caption { "Entries on this page, by month" }
                thead { tr {
                    th scope="col" { "Month" }
                    th scope="col" class="num" { "Entries" }
                    th scope="col" class="num" { "Accesses to data" }
                    th scope="col" class="num" { "Destruction runs" }
                } }
                tbody { @for (m, n, access, destroy) in &months { tr {
                    td { (m) } td.num { (n) } td.num { (access) } td.num { (destroy) }
                } } }
            }
        }))
        h2 { "Entries" }
        (scroll(html! {
            table #audit {
                caption { "Audit trail, newest first (" (entries.len()) " entries)" }
                thead { tr {
                    th scope="col" { "Local time" }
                    th scope="col" { "Who" }
                    th scope="col" { "What was done" }
                    th scope="col" class="num" { "Records" }
                } }
                tbody {
                    @for r in &rows { tr {
                        td { (r.local_time) }
                        td { (actor_words(&r.entry.actor_kind)) }
                        td { (r.description) }
                        td.num { (r.entry.result_count) }
                    } }
                    @if rows.is_empty() { tr { td colspan="4" { "No entries yet." } } }
                }
            }
        }))
        @if let Some(last) = older {
            p { a href={ "audit?before=" (last.at_ms) } { "Older entries" } }
        }
        h2 { "Download" }
        ul {
            li { a href=(links.download("audit.csv", "")) { "These entries as CSV" } }
            li { a href=(links.download("audit.json", "")) { "These entries as JSON" } }
            li { a href=(links.download("audits.json", "")) { "The audits' results as JSON" } }
        }
        h2 { "What each entry means" }
        dl #glossary {
            @for (id, words) in GLOSSARY {
                dt { (id) }
                dd { (words) }
            }
        }
    };
    page(Page::Audit, "Audit trail", agency, links, main)
}

pub fn json(entries: &[PublicAuditEntry], tz: &jiff::tz::TimeZone) -> String {
    serde_json::to_string(&shown(tz, entries)).unwrap_or_default()
}

pub fn csv(entries: &[PublicAuditEntry], tz: &jiff::tz::TimeZone) -> String {
    let mut c = Csv::new(&["local_time", "utc", "actor", "action", "description", "records"]);
    for e in shown(tz, entries) {
        c.row(&[
            Field::Text(&e.local_time),
            Field::Text(&e.entry.at),
            Field::Text(actor_words(&e.entry.actor_kind)),
            Field::Text(&e.entry.action),
            Field::Text(e.description),
            Field::Num(e.entry.result_count.to_string()),
        ]);
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str, at_ms: i64) -> PublicAuditEntry {
        PublicAuditEntry {
            at_ms,
            at: crate::records::iso_time(at_ms),
            actor_kind: "console".into(),
            action: action.into(),
            result_count: 3,
        }
    }

    /// Every action the server records has plain words; the page shows them with local times,
    /// counts by month, and no action id outside the glossary.
    #[test]
    fn the_trail_reads_in_plain_words_and_local_time() {
        let tz = jiff::tz::TimeZone::get("America/Chicago").expect("tz");
        let entries = [
            entry("console.plates.search", 1_795_404_600_000),
            entry("destroy", 1_795_404_000_000),
        ];
        let h = html(&entries, &Oversight::default(), &tz, &Agency::default(), Links(""));
        assert!(h.contains("2026-11-22 21:30 CST"), "{h}");
        assert!(h.contains("An investigator searched for a plate"), "{h}");
        assert!(h.contains("<td>2026-11</td><td class=\"num\">2</td><td class=\"num\">1</td><td class=\"num\">1</td>"), "{h}");
        let table = &h[h.find("<table id=\"audit\"").expect("table")..];
        let table = &table[..table.find("</table>").expect("end")];
        assert!(!table.contains("plates.search"), "ids stay in the glossary: {table}");
        assert_eq!(describe("console.nothing.known"), "Another recorded action.");
        let c = csv(&entries, &tz);
        assert!(c.lines().nth(1).is_some_and(|l| l.starts_with("2026-11-22 21:30 CST,")), "{c}");
    }

    /// The glossary covers what the server records.
    #[test]
    fn every_recorded_action_has_words() {
        for a in crate::records::audit::ACCESS_ACTIONS
            .iter()
            .chain(crate::console::roles::COMMANDS.iter())
        {
            if !a.contains("acp") {
                assert_ne!(describe(a), "Another recorded action.", "{a}");
            }
        }
    }
}

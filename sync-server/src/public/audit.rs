//! The public view of the audit trail: when, what kind of actor, what action, how many records.
//! Who exactly, why, the case number and the details are classified and never leave the
//! records (the query does not select them).
use super::{Links, escape, page};
use crate::records::{AuditResult, PublicAuditEntry, Records, RecordsError, Suspension};
use serde::Serialize;
use std::fmt::Write;

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

/// The oversight section: a suspension in force, then the audits' results, newest first.
fn oversight_html(o: &Oversight) -> String {
    let mut body = String::new();
    if let (Some(since), Some(order)) = (&o.suspended_since, &o.suspension_order) {
        let _ = write!(
            body,
            "<p class=\"notice\" id=\"suspension\"><strong>Collection is suspended</strong> \
             since {} under order {}: no reader collects until the order is lifted.</p>",
            escape(since),
            escape(order)
        );
    }
    body.push_str("<h2>Independent audits</h2>");
    if o.audits.is_empty() {
        body.push_str("<p id=\"audits\">No audit result has been recorded yet.</p>");
        return body;
    }
    body.push_str(
        "<table id=\"audits\"><thead><tr><th>Completed</th><th>Auditor</th><th>Result</th>\
         <th>Summary</th><th>Report to the Commissioner</th></tr></thead><tbody>",
    );
    for a in &o.audits {
        let report = match &a.reported {
            Some(day) => format!("sent {}", escape(day)),
            None => format!("due {}", escape(&a.report_due)),
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{report}</td></tr>",
            escape(&a.completed),
            escape(&a.auditor),
            if a.compliant { "compliant" } else { "findings" },
            escape(&a.summary)
        );
    }
    body.push_str("</tbody></table>");
    body
}

/// Entries per page.
pub const PAGE: i64 = 500;

pub fn html(
    entries: &[PublicAuditEntry],
    oversight: &Oversight,
    agency: &str,
    links: Links,
) -> String {
    let ext = links.0;
    let mut body = oversight_html(oversight);
    body.push_str("<h2>Audit trail</h2>");
    body.push_str(
        "<p>Every query, response and action on the agency's ALPR data is entered in an \
         append-only, hash-chained audit trail. This view shows each entry's time, the kind of \
         actor, the action and how many records it concerned; the person, the purpose, the case \
         number and the details are withheld as classified. Also as \
         <a href=\"audit.json\">JSON</a>.</p><table id=\"audit\"><thead><tr>\
         <th>Time (UTC)</th><th>Actor</th><th>Action</th><th>Records</th></tr></thead><tbody>",
    );
    for e in entries {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            escape(&e.at),
            escape(&e.actor_kind),
            escape(&e.action),
            e.result_count
        );
    }
    body.push_str("</tbody></table>");
    if let Some(last) = entries.last().filter(|_| entries.len() as i64 >= PAGE && ext.is_empty()) {
        let _ = write!(body, "<p><a href=\"audit?before={}\">Older entries</a></p>", last.at_ms);
    }
    page("Automated license plate reader audit trail", agency, links, &body)
}

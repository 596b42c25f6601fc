//! The public view of the audit trail: when, what kind of actor, what action, how many records.
//! Who exactly, why, the case number and the details are classified and never leave the
//! records (the query does not select them).
use super::{Links, escape, page};
use crate::records::PublicAuditEntry;
use std::fmt::Write;

/// Entries per page.
pub const PAGE: i64 = 500;

pub fn html(entries: &[PublicAuditEntry], agency: &str, links: Links) -> String {
    let ext = links.0;
    let mut body = String::from(
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

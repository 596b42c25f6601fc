//! The agency's page: who runs the program and how to reach them, the written policy, the
//! latest independent audit, and where the three public records are.
use super::audit::{Oversight, suspension_notice};
use super::layout::{Agency, Links, Page, page};
use maud::html;

pub fn html(agency: &Agency, oversight: &Oversight, links: Links) -> String {
    let latest = oversight.audits.first();
    let main = html! {
        p {
            (agency.name) " uses automated license plate readers on mobile trailers. Minnesota "
            "law (Minn. Stat. 13.824) limits what they collect (a plate, when and where, and "
            "pictures of the plate, the vehicle and its surroundings), what the reads are "
            "compared with, who may look at them and why, and destroys them no later than 60 "
            "days after collection unless a case needs them. The law also makes three records "
            "public, which these pages publish:"
        }
        ul {
            li { a href=(links.page("locations")) { "Where the readers stood" } ", and when." }
            li { a href=(links.page("log")) { "The log of use" } ": when they collected, how many plates they read and how many were hits." }
            li { a href=(links.page("audit")) { "The audit trail" } ": every access to the data, in plain words, and the independent audits." }
        }
        h2 { "Contact" }
        p #contact { (agency.contact) }
        h2 { "Written policy" }
        @if agency.policy_url.is_empty() {
            p #policy { "The agency's written policy on license plate readers is available from the contact above." }
        } @else {
            p #policy { a href=(agency.policy_url) { "The agency's written policy on license plate readers" } }
        }
        h2 { "Latest independent audit" }
        @match latest {
            Some(a) => {
                p #latest-audit {
                    "Completed " strong { (a.completed) } " by " (a.auditor) ": "
                    (if a.compliant { "compliant" } else { "findings" }) ". "
                    @match &a.reported { Some(day) => { "Reported to the Commissioner " (day) "." }, None => { "Report to the Commissioner due " (a.report_due) "." } }
                }
                blockquote { p { (a.summary) } }
            }
            None => { p #latest-audit { "No audit result has been recorded yet." } }
        }
        (suspension_notice(oversight))
    };
    page(Page::Agency, "License plate readers: about the program", agency, links, main)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::public::audit::PublicResult;

    #[test]
    fn the_agency_page_names_its_contact_policy_and_latest_audit() {
        let agency = Agency {
            name: "Test PD".into(),
            contact: "Records unit, (555) 555-0100".into(),
            policy_url: "https://city.example/alpr-policy.pdf".into(),
        };
        let o = Oversight {
            audits: vec![PublicResult {
                completed: "2026-11-30".into(),
                auditor: "Rowe & Co.".into(),
                compliant: true,
                summary: "No findings.".into(),
                report_due: "2026-12-30".into(),
                reported: None,
            }],
            ..Oversight::default()
        };
        let h = html(&agency, &o, Links(""));
        for part in [
            "(555) 555-0100",
            "alpr-policy.pdf",
            "2026-11-30",
            "Rowe &amp; Co.",
            "due 2026-12-30",
            "No findings.",
        ] {
            assert!(h.contains(part), "{part}: {h}");
        }
        assert!(html(&agency, &Oversight::default(), Links("")).contains("No audit result"));
    }
}

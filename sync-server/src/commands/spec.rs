//! What each command takes, in words a user reads: its arguments (which are required, of what
//! kind) and a one-line summary. The console checks a request against it before asking for a
//! purpose and a case number, and completes and explains commands from it; the server checks
//! every request against it first, so each mistake is named at once, whichever way it came.
use serde_json::Value;

/// The kind of value an argument takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// A whole number.
    Int,
    /// A decimal number (a latitude, a longitude).
    Num,
    /// `true` or `false`.
    Bool,
    /// A local day, `YYYY-MM-DD`.
    Day,
    /// A JSON list (`reads='[["trailer-01",4711]]'`).
    List,
}

/// One argument.
#[derive(Debug, Clone, Copy)]
pub struct Arg {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    /// What it is, for help and for a refusal.
    pub about: &'static str,
}

/// One command.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub command: &'static str,
    pub about: &'static str,
    pub args: &'static [Arg],
    /// Irreversible: the console shows what it will do and asks to confirm.
    pub irreversible: bool,
}

const fn req(name: &'static str, kind: Kind, about: &'static str) -> Arg {
    Arg { name, kind, required: true, about }
}

const fn opt(name: &'static str, kind: Kind, about: &'static str) -> Arg {
    Arg { name, kind, required: false, about }
}

const fn spec(command: &'static str, about: &'static str, args: &'static [Arg]) -> Spec {
    Spec { command, about, args, irreversible: false }
}

use Kind::{Bool, Day, Int, List, Num, Text};

const RANGE: &[Arg] =
    &[req("from", Day, "the first local day"), req("to", Day, "the last local day")];

/// Every command, in the order help lists them.
pub const SPECS: &[Spec] = &[
    spec("status", "each trailer's latest health report", &[]),
    spec("whoami", "your user, your role and the commands it may run", &[]),
    spec(
        "alerts.list",
        "hits, newest first",
        &[
            opt("open", Bool, "only those not acknowledged"),
            opt("limit", Int, "at most this many"),
            opt("pictures", Bool, "the plate's picture of each (saved to your downloads folder)"),
        ],
    ),
    spec(
        "alerts.ack",
        "acknowledge a hit once verified with MNJIS/NLETS",
        &[
            req("trailer", Text, "the trailer that raised it"),
            req("alert_id", Int, "the alert's number"),
            req("outcome", Text, "confirmed-acted, confirmed-no-action, not-confirmed or misread"),
            req(
                "check",
                Text,
                "how it was verified with the state's systems: which system, its answer, the query's reference",
            ),
            opt("note", Text, "anything else worth keeping with it"),
        ],
    ),
    spec(
        "deployments.list",
        "the location history, withheld places included",
        &[opt("reader", Text, "one trailer's only")],
    ),
    spec(
        "deployments.start",
        "start a deployment where a trailer was set up",
        &[
            req("reader", Text, "the trailer"),
            req("lat", Num, "latitude, degrees"),
            req("lon", Num, "longitude, degrees"),
            opt("name", Text, "the place's public name"),
            opt("security", Bool, "the place is security information (withheld)"),
        ],
    ),
    spec(
        "deployments.end",
        "end a trailer's current deployment",
        &[req("reader", Text, "the trailer")],
    ),
    spec(
        "deployments.rename",
        "name a place as the public list and the BCA notices show it",
        &[req("id", Int, "the location's number"), req("name", Text, "the place's name")],
    ),
    spec(
        "deployments.security",
        "mark a place security information (withheld from the public), or clear the mark",
        &[
            req("id", Int, "the location's number"),
            req("security", Bool, "true to withhold, false to publish"),
            req("reason", Text, "why"),
        ],
    ),
    spec(
        "notices.list",
        "notices to the BCA: due, overdue, sent",
        &[opt("unsent", Bool, "only those not sent yet")],
    ),
    spec(
        "notices.send",
        "send a notice to the BCA now",
        &[
            req("id", Int, "the notice's number"),
            opt("resend", Bool, "send one that was sent already, again"),
        ],
    ),
    spec(
        "notices.render",
        "a notice's text, HTML document and e-mail, saved to your downloads folder",
        &[req("id", Int, "the notice's number")],
    ),
    spec(
        "notices.mark-sent",
        "record a notice sent by hand",
        &[req("id", Int, "the notice's number"), req("how", Text, "how and when it was sent")],
    ),
    spec(
        "hotlists.upload",
        "load a hotlist (the state's file, or an investigation's list with purpose and case)",
        &[
            req("name", Text, "the list's name"),
            req("version", Int, "a number above the last version"),
            req("csv", Text, "this part of the CSV file (the console reads file=PATH)"),
            opt("part", Int, "this part's number, from 0"),
            opt("parts", Int, "how many parts"),
        ],
    ),
    spec(
        "hotlists.approve",
        "approve a list another person uploaded: it goes to the trailers",
        &[req("name", Text, "the list's name"), req("version", Int, "its version")],
    ),
    spec(
        "hotlists.withdraw",
        "withdraw a list from every trailer",
        &[req("name", Text, "the list's name"), req("reason", Text, "why")],
    ),
    spec("hotlists.list", "every version uploaded", &[]),
    spec(
        "holds.place",
        "keep reads past retention for a written request: named reads, or a plate over days",
        &[
            req("kind", Text, "active-investigation or exculpatory"),
            req("requester", Text, "who asked in writing"),
            req("request_date", Day, "the written request's day"),
            opt("charge", Text, "an exculpatory hold: the charge or complaint"),
            opt("reads", List, "[[\"trailer\", read id], ...]"),
            opt("plate", Text, "or a plate, with from and to"),
            opt("from", Day, "the plate's first local day"),
            opt("to", Day, "the plate's last local day"),
            opt("note", Text, "anything else"),
        ],
    ),
    spec(
        "holds.release",
        "end a hold: its reads fall under retention again",
        &[req("id", Int, "the hold's number"), req("reason", Text, "why it ends")],
    ),
    spec("holds.list", "every hold", &[]),
    Spec {
        command: "acp.add",
        about: "an Address Confidentiality Program participant: their reads are destroyed here \
                and on every trailer, and none is kept again",
        args: &[
            req("plate", Text, "the participant's plate"),
            req("reference", Text, "the ACP request's reference"),
        ],
        irreversible: true,
    },
    spec(
        "plates.search",
        "reads of one plate, under a warrant or an exigency",
        &[
            req("plate", Text, "the plate"),
            opt("warrant", Text, "the warrant's number"),
            opt("exigency", Text, "the facts of the exigency (3 days back at most)"),
            opt("days", Int, "how many days back"),
            opt("limit", Int, "at most this many reads"),
            opt("pictures", Bool, "with the reads' pictures"),
        ],
    ),
    spec(
        "release.request",
        "enter another agency's written request for data",
        &[
            req("requesting_agency", Text, "the agency"),
            req("requester", Text, "the person who asked"),
            req("factual_basis", Text, "the facts the request rests on"),
            req("authorisation", Text, "the authority for it"),
            req("plate", Text, "the plate"),
            req("from", Day, "the first local day of collection"),
            req("to", Day, "the last local day of collection"),
        ],
    ),
    spec(
        "release.review",
        "record a request's review",
        &[req("id", Int, "the request's number"), req("note", Text, "what the review found")],
    ),
    spec(
        "release.decide",
        "approve or deny a reviewed request (not the one who entered or reviewed it)",
        &[
            req("id", Int, "the request's number"),
            req("approve", Bool, "true or false"),
            req("reason", Text, "why"),
        ],
    ),
    Spec {
        command: "release.fulfil",
        about: "write an approved request's bundle: the data leaves the agency",
        args: &[req("id", Int, "the request's number")],
        irreversible: true,
    },
    spec("release.list", "every release request", &[]),
    spec(
        "release.files",
        "the files of a fulfilled request's bundle, with their SHA-256",
        &[req("id", Int, "the request's number")],
    ),
    spec(
        "release.download",
        "a fulfilled request's bundle, saved to your downloads folder (each file checked)",
        &[
            req("id", Int, "the request's number"),
            opt("file", Text, "one file of it (the console fetches all when none is named)"),
            opt("offset", Int, "from this byte (the console pages by itself)"),
        ],
    ),
    spec(
        "reads.list",
        "the newest reads of every plate, for a stated purpose and case",
        &[opt("limit", Int, "at most this many reads")],
    ),
    spec(
        "reads.picture",
        "ask the trailer that holds it for a read's picture",
        &[
            req("trailer", Text, "the trailer"),
            req("read_id", Int, "the read's number"),
            opt("context", Bool, "the context picture instead of the plate's"),
        ],
    ),
    spec(
        "deployments.determinations",
        "every security determination (who, when, why), for an in-camera review",
        &[],
    ),
    spec(
        "suspension.order",
        "record the Commissioner's suspension order: every trailer stops collecting",
        &[req("order", Text, "the order's reference"), opt("note", Text, "anything else")],
    ),
    spec(
        "suspension.lift",
        "lift the order in force: the trailers collect again",
        &[req("reference", Text, "the order or decision that lifts it")],
    ),
    spec("suspension.list", "every suspension order, in force or lifted", &[]),
    spec(
        "audit.result",
        "record an independent audit's result: published at once, its report due in 30 days",
        &[
            req("completed", Day, "the day the audit was completed"),
            req("auditor", Text, "who audited"),
            req("summary", Text, "the published findings"),
            opt("findings", Bool, "true when the audit found the program out of compliance"),
        ],
    ),
    spec(
        "audit.reported",
        "record that an audit's report went to the Commissioner",
        &[req("id", Int, "the result's number"), req("how", Text, "letter, e-mail, portal")],
    ),
    spec("audit.results", "every audit result, with its report's due day", &[]),
    spec("audit.export", "every audit entry of a range of days, whole, for an auditor", RANGE),
    spec("deadletters.list", "the messages the server refused, with the reason", &[]),
    spec(
        "trailers.list",
        "the fleet: each trailer enrolled (or refused) with its latest health",
        &[],
    ),
    spec(
        "trailers.enroll",
        "enrol a trailer: sign the request its own key made; answers its certificate, the CA and its settings",
        &[
            req("trailer", Text, "the trailer's id (its request's CN)"),
            req("request", Text, "the certificate request, PEM (the console reads file=PATH)"),
            opt("note", Text, "where it stands or who enrols it"),
            opt("days", Int, "days the certificate is valid"),
        ],
    ),
    Spec {
        command: "trailers.revoke",
        about: "revoke a trailer (stolen, retired): cut off at once, its certificates revoked",
        args: &[req("trailer", Text, "the trailer"), req("reason", Text, "why")],
        irreversible: true,
    },
    spec(
        "trailers.health",
        "ask trailers for a health report now",
        &[req("trailers", List, "[\"trailer-01\", ...]")],
    ),
    spec(
        "trailers.config",
        "send trailers a whole new configuration (signed; id, store and link cannot change)",
        &[
            req("trailers", List, "[\"trailer-01\", ...]"),
            req("toml", Text, "the configuration (the console reads file=PATH)"),
        ],
    ),
    spec(
        "trailers.downlinks",
        "what was sent to the trailers, newest first, with each answer",
        &[opt("trailer", Text, "one trailer's only"), opt("limit", Int, "at most this many")],
    ),
    spec("publiclog.generate", "the public log of use for a range of days", RANGE),
    spec("audit.report", "the biennial audit report for a range of days", RANGE),
    spec("audit.verify", "check the audit trail's chain", &[]),
    spec(
        "users.manage",
        "console users: action=list, action=grant (name, role, authorisation), action=disable (name)",
        &[
            req("action", Text, "list, grant or disable"),
            opt("name", Text, "the user"),
            opt(
                "role",
                Text,
                "viewer, operator, investigator, records-supervisor, auditor or admin",
            ),
            opt("authorisation", Text, "the written authorisation"),
        ],
    ),
];

/// The spec of `command`.
pub fn of(command: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.command == command)
}

/// The command's arguments as help shows them: `trailer=… alert_id=N [open=true|false]`.
pub fn usage(s: &Spec) -> String {
    s.args
        .iter()
        .map(|a| {
            let value = match a.kind {
                Text => "…",
                Int => "N",
                Num => "0.0",
                Bool => "true|false",
                Day => "YYYY-MM-DD",
                List => "'[…]'",
            };
            if a.required { format!("{}={value}", a.name) } else { format!("[{}={value}]", a.name) }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Everything wrong with `args` for `command`, all at once and in words: unknown arguments,
/// missing ones, values of the wrong kind. Empty when it may be sent.
pub fn check(command: &str, args: &Value) -> Vec<String> {
    let Some(s) = of(command) else {
        return vec![format!("{command} is not a command (type help)")];
    };
    let empty = serde_json::Map::new();
    let given = match args {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => return vec!["the arguments are name=value pairs".into()],
    };
    let mut wrong = Vec::new();
    for name in given.keys() {
        if !s.args.iter().any(|a| a.name == name) {
            let known: Vec<&str> = s.args.iter().map(|a| a.name).collect();
            wrong.push(if known.is_empty() {
                format!("{command} takes no arguments, not {name}")
            } else {
                format!("{command} takes no {name} (it takes {})", known.join(", "))
            });
        }
    }
    let missing: Vec<String> = s
        .args
        .iter()
        .filter(|a| a.required && given.get(a.name).is_none_or(Value::is_null))
        .map(|a| format!("{} ({})", a.name, a.about))
        .collect();
    if !missing.is_empty() {
        wrong.push(format!("{command} needs {}", missing.join(", ")));
    }
    for a in s.args {
        let Some(v) = given.get(a.name).filter(|v| !v.is_null()) else { continue };
        let fits = match a.kind {
            Text => v.is_string() || v.is_number(),
            Int => v.as_i64().is_some() || v.as_u64().is_some(),
            Num => v.is_number(),
            Bool => v.is_boolean(),
            Day => v.as_str().is_some_and(crate::public::valid_day),
            List => v.is_array(),
        };
        if !fits {
            let want = match a.kind {
                Text => "text",
                Int => "a whole number",
                Num => "a number",
                Bool => "true or false",
                Day => "a day, YYYY-MM-DD",
                List => "a list, e.g. '[[\"trailer-01\", 4711]]'",
            };
            wrong.push(format!("{} is {want}, not {v}", a.name));
        }
    }
    wrong
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_command_has_a_spec_and_every_spec_a_command() {
        for c in super::super::roles::COMMANDS {
            assert!(of(c).is_some(), "{c}");
        }
        assert_eq!(SPECS.len(), super::super::roles::COMMANDS.len());
    }

    #[test]
    fn every_mistake_is_named_at_once_in_words() {
        let wrong = check("alerts.ack", &json!({"alert_id": "x", "remark": "seen"}));
        assert_eq!(wrong.len(), 3, "{wrong:?}");
        assert!(wrong[0].contains("takes no remark"), "{wrong:?}");
        assert!(
            wrong[1].contains("needs trailer (the trailer that raised it), outcome"),
            "{wrong:?}"
        );
        assert!(wrong[2].contains("alert_id is a whole number, not \"x\""), "{wrong:?}");
        assert!(
            check(
                "alerts.ack",
                &json!({"trailer": "t1", "alert_id": 3, "outcome": "misread", "check": "NCIC: no record"})
            )
            .is_empty()
        );
        assert!(check("status", &json!({"x": 1}))[0].contains("takes no arguments"));
        assert!(
            check(
                "holds.place",
                &json!({"kind": "exculpatory", "requester": "r", "request_date": "2026-13-40"})
            )
            .iter()
            .any(|w| w.contains("request_date is a day"))
        );
        assert!(check("nope", &Value::Null)[0].contains("not a command"));
    }

    #[test]
    fn usage_shows_required_and_optional_arguments() {
        let u = usage(of("alerts.list").expect("spec"));
        assert_eq!(u, "[open=true|false] [limit=N] [pictures=true|false]");
        let u = usage(of("deployments.end").expect("spec"));
        assert_eq!(u, "reader=…");
    }
}

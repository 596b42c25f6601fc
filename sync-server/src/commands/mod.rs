//! The one place where an operator's action is performed, whoever asks and however: the
//! console over MQTT (`console:{user}`) and the command line on the server (`cli:{user}`) both
//! hand a request here and print what comes back.
//!
//! A request names a command, its arguments (a JSON object), and for access to data about
//! people a purpose and a case number. [`execute`] checks the user's role ([`roles`]), runs the
//! command, and writes one audit entry for the request and its outcome, refusals included:
//! - a command that changes the records runs on one [`Session`], and its audit entry is
//!   appended on the same transaction: the change and its record commit together, or neither
//!   does (a failed audit write leaves no change);
//! - a command that only reads runs on the records, and its data is answered only once its
//!   audit entry is written;
//! - sending a BCA notice reaches the outside world, which no transaction can take back: the
//!   notice is claimed, sent and recorded as it goes ([`crate::bca`]), then audited.
//!
//! One module per family of commands: [`reads`], [`alerts`], [`locations`], [`notices`],
//! [`holds`], [`hotlists`], [`acp`], [`releases`], [`users`], [`audit`], [`suspension`],
//! [`trailers`], [`deadletters`].
use crate::audit::Entry;
use crate::records::{Records, RecordsError, Session};
use roles::{Role, allowed, needs_purpose_and_case};
use serde::Deserialize;
use serde_json::{Value, json};

pub mod acp;
pub mod alerts;
pub mod audit;
pub mod deadletters;
pub mod holds;
pub mod hotlists;
pub mod locations;
pub mod notices;
pub mod reads;
pub mod releases;
pub mod roles;
pub mod spec;
pub mod suspension;
pub mod trailers;
pub mod users;

/// How a request reached the server: it names the actor in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The MQTT console, the user proved by their certificate's CN.
    Console,
    /// The command line on the server, the user proved by the operating system (the login of
    /// the process's real user id).
    CommandLine,
}

/// Who asks: a console user (in `console_users`) and how they reached the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user: String,
    pub via: Via,
}

impl Actor {
    /// As the audit trail and the records name them: `console:alice`, `cli:alice`.
    pub fn label(&self) -> String {
        let via = match self.via {
            Via::Console => "console",
            Via::CommandLine => "cli",
        };
        format!("{via}:{}", self.user)
    }
}

/// One request: the command, its arguments, and why.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub command: &'a str,
    pub args: &'a Value,
    pub purpose: &'a str,
    pub case: &'a str,
}

/// What came of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Done: the command's data.
    Done(Value),
    /// Refused (role, arguments, the law), in words for the user; nothing was changed.
    Refused(String),
    /// The records or the audit trail failed; nothing was changed.
    Unavailable(String),
}

/// Why a command gave no data.
pub(crate) enum Failure {
    /// Refused (role, arguments, the records' rules); said to the user as it is.
    Refused(String),
    Records(RecordsError),
}

impl From<RecordsError> for Failure {
    fn from(e: RecordsError) -> Failure {
        match e {
            RecordsError::Invalid(m) => Failure::Refused(m),
            other => Failure::Records(other),
        }
    }
}

/// A command's data and how many records it concerned (the audit entry's count).
pub(crate) type Done = Result<(Value, i64), Failure>;

/// What a command has to hand besides its arguments.
pub(crate) struct Call<'a> {
    pub request: Request<'a>,
    /// The user's name alone (`alice`).
    pub user: &'a str,
    /// The actor's label (`console:alice`): what the records write as who did it.
    pub actor: String,
    pub config: &'a crate::Config,
    pub now: i64,
}

impl Call<'_> {
    /// The arguments as the command's type; an unknown or missing one refused.
    pub(crate) fn args<T: for<'de> Deserialize<'de>>(&self) -> Result<T, Failure> {
        let v = self.request.args;
        let v = if v.is_null() { json!({}) } else { v.clone() };
        serde_json::from_value(v).map_err(|e| Failure::Refused(format!("args: {e}")))
    }
}

/// Files an answer hands to the user: `[{folder, name, sha256, base64}]`; the console saves
/// each under its downloads folder (`folder/name`) and checks its digest
/// (`console::downloads`).
pub(crate) fn files_json(folder: &str, files: &[(String, Vec<u8>)]) -> Value {
    use base64::Engine;
    use sha2::Digest;
    Value::Array(
        files
            .iter()
            .map(|(name, bytes)| {
                json!({"folder": folder, "name": name,
                       "sha256": hex::encode(sha2::Sha256::digest(bytes)),
                       "base64": base64::engine::general_purpose::STANDARD.encode(bytes)})
            })
            .collect(),
    )
}

pub(crate) fn to_json<T: serde::Serialize>(rows: &[T]) -> Value {
    serde_json::to_value(rows).unwrap_or(Value::Null)
}

/// Whether a command changes the records (and so runs on a session with its audit entry).
fn writes(r: &Request<'_>) -> bool {
    match r.command {
        // A search with pictures asks the trailers for those they still hold.
        "plates.search" => r.args.get("pictures").and_then(Value::as_bool).unwrap_or(false),
        "status"
        | "whoami"
        | "alerts.list"
        | "deployments.list"
        | "notices.list"
        | "holds.list"
        | "hotlists.list"
        | "release.list"
        | "audit.verify"
        | "audit.report"
        | "publiclog.generate"
        | "notices.send"
        | "notices.render"
        | "reads.list"
        | "deadletters.list"
        | "deployments.determinations"
        | "suspension.list"
        | "audit.results"
        | "audit.export"
        | "trailers.list"
        | "trailers.downlinks"
        | "release.files"
        | "release.download" => false,
        // users.manage lists too, but its grants and disables write: it runs on a session.
        _ => true,
    }
}

/// Runs a command that only reads (or, for a notice, reaches outside).
async fn read(records: &Records, c: &Call<'_>) -> Done {
    match c.request.command {
        "status" => reads::status(records).await,
        "whoami" => users::whoami(records, c).await,
        "plates.search" => reads::search(records, None, c).await,
        "alerts.list" => alerts::list(records, c).await,
        "deployments.list" => locations::list(records, c).await,
        "notices.list" => notices::list(records, c).await,
        "notices.send" => notices::send(records, c).await,
        "holds.list" => holds::list(records).await,
        "hotlists.list" => hotlists::list(records).await,
        "release.list" => releases::list(records).await,
        "audit.verify" => audit::verify(records).await,
        "audit.report" => audit::report(records, c).await,
        "publiclog.generate" => audit::public_log(records, c).await,
        "notices.render" => notices::render(records, c).await,
        "reads.list" => reads::list(records, c).await,
        "deadletters.list" => deadletters::list(records).await,
        "deployments.determinations" => locations::determinations(records).await,
        "suspension.list" => suspension::list(records).await,
        "audit.results" => audit::results(records, c).await,
        "audit.export" => audit::export(records, c).await,
        "trailers.list" => trailers::list(records).await,
        "trailers.downlinks" => trailers::downlinks(records, c).await,
        "release.files" => releases::files(records, c).await,
        "release.download" => releases::download(records, c).await,
        other => Err(Failure::Refused(format!("{other} is not a command"))),
    }
}

/// Runs a command that changes the records, on `s`.
async fn write(s: &mut Session, c: &Call<'_>) -> Done {
    match c.request.command {
        "plates.search" => {
            let records = s.records().clone();
            reads::search(&records, Some(s), c).await
        }
        "alerts.ack" => alerts::ack(s, c).await,
        "deployments.start" => locations::start(s, c).await,
        "deployments.end" => locations::end(s, c).await,
        "deployments.rename" | "deployments.security" => locations::change(s, c).await,
        "notices.mark-sent" => notices::mark_sent(s, c).await,
        "holds.place" => holds::place(s, c).await,
        "holds.release" => holds::release(s, c).await,
        "hotlists.upload" => hotlists::upload(s, c).await,
        "hotlists.approve" => hotlists::approve(s, c).await,
        "hotlists.withdraw" => hotlists::withdraw(s, c).await,
        "acp.add" => acp::add(s, c).await,
        "release.request" => releases::request(s, c).await,
        "release.review" => releases::review(s, c).await,
        "release.decide" => releases::decide(s, c).await,
        "release.fulfil" => releases::fulfil(s, c).await,
        "users.manage" => users::manage(s, c).await,
        "reads.picture" => reads::picture(s, c).await,
        "suspension.order" => suspension::order(s, c).await,
        "suspension.lift" => suspension::lift(s, c).await,
        "audit.result" => audit::result(s, c).await,
        "audit.reported" => audit::reported(s, c).await,
        "trailers.enroll" => trailers::enroll(s, c).await,
        "trailers.revoke" => trailers::revoke(s, c).await,
        "trailers.health" => trailers::health(s, c).await,
        "trailers.config" => trailers::config(s, c).await,
        other => Err(Failure::Refused(format!("{other} is not a command"))),
    }
}

/// Runs `request` for `actor` at `now`: the role check, the command, and its audit entry
/// (refusals too). Never fails: a refusal or a failure of the records is the answer.
pub async fn execute(
    records: &Records,
    config: &crate::Config,
    actor: &Actor,
    request: Request<'_>,
    now: i64,
) -> Answer {
    let c = Call { request, user: &actor.user, actor: actor.label(), config, now };
    let role = match records.role_of(&actor.user).await {
        Ok(r) => r,
        Err(e) => return Answer::Unavailable(format!("the records are unavailable: {e}")),
    };
    if let Err(why) = admissible(role, &c) {
        return refused(records, &c, why).await;
    }
    if writes(&request) {
        let mut s = match records.session().await {
            Ok(s) => s,
            Err(e) => return unavailable(records, &c, e).await,
        };
        match write(&mut s, &c).await {
            Ok((data, count)) => {
                let entry = entry(&c, "ok", count);
                let kept = match s.audit(&entry).await {
                    Ok(_) => s.commit().await,
                    Err(e) => Err(e),
                };
                match kept {
                    Ok(()) => Answer::Done(data),
                    Err(e) => {
                        tracing::error!(error = %e, command = c.request.command, "cannot audit a request: nothing was done");
                        Answer::Unavailable(
                            "the audit trail is unavailable: nothing was done".into(),
                        )
                    }
                }
            }
            Err(failure) => {
                // Whatever the command did goes; the refusal is audited on its own.
                if let Err(e) = s.rollback().await {
                    tracing::warn!(error = %e, "rollback of a refused request");
                }
                match failure {
                    Failure::Refused(why) => refused(records, &c, why).await,
                    Failure::Records(e) => unavailable(records, &c, e).await,
                }
            }
        }
    } else {
        match read(records, &c).await {
            Ok((data, count)) => match records.audit(&entry(&c, "ok", count)).await {
                Ok(_) => Answer::Done(data),
                Err(e) => {
                    tracing::error!(error = %e, "cannot audit a request; its data is withheld");
                    Answer::Unavailable("the audit trail is unavailable: nothing was done".into())
                }
            },
            Err(Failure::Refused(why)) => refused(records, &c, why).await,
            Err(Failure::Records(e)) => unavailable(records, &c, e).await,
        }
    }
}

/// Whether the user may run the command at all, and gave what it needs.
fn admissible(role: Option<Role>, c: &Call<'_>) -> Result<(), String> {
    let command = c.request.command;
    let Some(role) = role else {
        return Err(format!("{} is no console user (ask an administrator)", c.user));
    };
    if !allowed(role, command) {
        return Err(format!("{command} is not among the duties of the role {role}"));
    }
    if needs_purpose_and_case(command)
        && (c.request.purpose.trim().is_empty() || c.request.case.trim().is_empty())
    {
        return Err(format!(
            "{command} reaches data about people: a purpose and a case number are required \
             (Minn. Stat. 13.824)"
        ));
    }
    let wrong = spec::check(command, c.request.args);
    if !wrong.is_empty() {
        return Err(format!("args: {}", wrong.join("; ")));
    }
    Ok(())
}

/// A refusal, audited (on its own: nothing of the command was kept).
async fn refused(records: &Records, c: &Call<'_>, why: String) -> Answer {
    let entry = entry(c, &format!("refused: {why}"), 0);
    if let Err(e) = records.audit(&entry).await {
        tracing::error!(error = %e, "cannot audit a refused request");
    }
    Answer::Refused(why)
}

async fn unavailable(records: &Records, c: &Call<'_>, e: RecordsError) -> Answer {
    tracing::error!(error = %e, command = c.request.command, "request failed");
    let entry = entry(c, &format!("failed: {e}"), 0);
    if let Err(e) = records.audit(&entry).await {
        tracing::error!(error = %e, "cannot audit a failed request");
    }
    Answer::Unavailable("the records are unavailable; try again".into())
}

/// The audit entry of a request and its outcome: the same whichever way it came, but for
/// the actor's label.
fn entry(c: &Call<'_>, result: &str, count: i64) -> Entry {
    Entry {
        at: c.now,
        actor: c.actor.clone(),
        action: c.request.command.to_string(),
        purpose: c.request.purpose.to_string(),
        case_number: c.request.case.to_string(),
        detail: detail(&c.request, result),
        result_count: count,
    }
}

/// What the audit trail keeps of a request and its outcome: the arguments, a hotlist's
/// contents by size only; of an ACP request only the reference and whether it went through,
/// never its arguments or an error about them (either may quote the participant's plate).
fn detail(r: &Request<'_>, result: &str) -> String {
    if r.command == "acp.add" {
        let reference = r.args.get("reference").and_then(Value::as_str);
        let outcome = if result == "ok" { "ok" } else { "refused or failed" };
        return format!("reference {reference:?}: {outcome}");
    }
    let mut args = r.args.clone();
    if let Some(map) = args.as_object_mut()
        && let Some(csv) = map.get("csv").and_then(Value::as_str)
    {
        let size = format!("({} bytes)", csv.len());
        map.insert("csv".into(), json!(size));
    }
    format!("args {args}: {result}")
}

#[cfg(test)]
mod tests;

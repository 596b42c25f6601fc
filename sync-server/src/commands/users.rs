//! Console users: granted a role under a written authorisation, listed, disabled.
use super::{Call, Done, Failure, roles::Role, to_json};
use crate::records::Session;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, tag = "action", rename_all = "kebab-case")]
enum Action {
    List,
    Grant { name: String, role: Role, authorisation: String },
    Disable { name: String },
}

/// `whoami`: the user, their role, and the commands it may run (for the console's help).
pub(super) async fn whoami(records: &crate::records::Records, c: &Call<'_>) -> Done {
    let role = records.role_of(c.user).await?;
    let commands: Vec<&str> = super::roles::COMMANDS
        .into_iter()
        .filter(|cmd| role.is_some_and(|r| super::roles::allowed(r, cmd)))
        .collect();
    Ok((json!({"user": c.user, "role": role, "commands": commands}), 0))
}

pub(super) async fn manage(s: &mut Session, c: &Call<'_>) -> Done {
    match c.args::<Action>()? {
        Action::List => {
            let rows = s.records().users().await?;
            Ok((to_json(&rows), rows.len() as i64))
        }
        Action::Grant { name, role, authorisation } => {
            s.grant(&name, role, c.user, &authorisation, c.now).await?;
            Ok((Value::Null, 1))
        }
        Action::Disable { name } => {
            if name == c.user {
                return Err(Failure::Refused("an administrator cannot disable themselves".into()));
            }
            Ok((json!({"disabled": s.disable_user(&name).await?}), 1))
        }
    }
}

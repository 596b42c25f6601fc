//! The console's users and their roles, each granted by a written authorisation (who
//! authorised it, when, and the document's reference), kept when a user is disabled.
use super::{Records, RecordsError, iso_time, sql};
use crate::console::roles::Role;
use serde::Serialize;
use sqlx::Row;

/// A console user as administrators see them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserView {
    pub name: String,
    pub role: Role,
    pub authorised_by: String,
    pub authorisation: String,
    pub authorised_at: String,
    pub active: bool,
}

fn role_name(r: Role) -> String {
    r.to_string()
}

fn parse_role(s: &str) -> Option<Role> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

impl Records {
    /// The role of an active user.
    pub async fn role_of(&self, name: &str) -> Result<Option<Role>, RecordsError> {
        let row = sqlx::query(sql(
            self.pg,
            "SELECT role FROM console_users WHERE name = ? AND active = 1",
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| parse_role(&r.get::<String, _>(0))))
    }

    pub async fn users(&self) -> Result<Vec<UserView>, RecordsError> {
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT name, role, authorised_by, authorisation, authorised_ms, active \
             FROM console_users ORDER BY name",
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(UserView {
                    name: r.get(0),
                    role: parse_role(&r.get::<String, _>(1))?,
                    authorised_by: r.get(2),
                    authorisation: r.get(3),
                    authorised_at: iso_time(r.get(4)),
                    active: r.get::<i64, _>(5) == 1,
                })
            })
            .collect())
    }
}

super::session::committed! {
    /// Grants (or changes) a user's role under a written authorisation.
    fn grant(name: &str, role: Role, by: &str, authorisation: &str, now: i64) -> ();
    /// Disables a user (the record and its authorisation stay).
    fn disable_user(name: &str) -> bool;
}

impl super::Session {
    /// Grants (or changes) a user's role under a written authorisation.
    pub async fn grant(
        &mut self,
        name: &str,
        role: Role,
        authorised_by: &str,
        authorisation: &str,
        now: i64,
    ) -> Result<(), RecordsError> {
        if !trailer_wire::topic::valid_id(name) {
            return Err(RecordsError::Invalid(format!(
                "user name {name:?}: use A-Z a-z 0-9 - _ ."
            )));
        }
        if authorised_by.trim().is_empty() || authorisation.trim().is_empty() {
            return Err(RecordsError::Invalid(
                "access is granted by a written authorisation: say who authorised it and its reference"
                    .into(),
            ));
        }
        let trailer = sqlx::query(sql(self.pg, "SELECT 1 FROM trailers WHERE trailer_id = ?"))
            .bind(name)
            .fetch_optional(&mut *self.tx)
            .await?;
        if trailer.is_some() {
            return Err(RecordsError::Invalid(format!("{name} is an enrolled trailer's id")));
        }
        sqlx::query(sql(
            self.pg,
            "INSERT INTO console_users (name, role, authorised_by, authorisation, authorised_ms, active) \
             VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (name) DO UPDATE SET role = excluded.role, \
             authorised_by = excluded.authorised_by, authorisation = excluded.authorisation, \
             authorised_ms = excluded.authorised_ms, active = 1",
        ))
        .bind(name)
        .bind(role_name(role))
        .bind(authorised_by.trim())
        .bind(authorisation.trim())
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Disables a user (the record and its authorisation stay).
    pub async fn disable_user(&mut self, name: &str) -> Result<bool, RecordsError> {
        let done = sqlx::query(sql(self.pg, "UPDATE console_users SET active = 0 WHERE name = ?"))
            .bind(name)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

//! One action on the records: everything it changes, and the audit entry that records it, are
//! written on one transaction and commit together or not at all.
//!
//! A [`Session`] is what the command layer (`crate::commands`) runs an operator's action on.
//! The `Records` methods of the same names are the one-action shorthand (a session, the
//! change, a commit) for duties and tests that audit on their own.
use super::{Records, RecordsError, Rules, Tx};
use crate::audit::Entry;
use std::sync::Arc;

/// The records on one open writing transaction.
pub struct Session {
    pub(crate) tx: Tx,
    pub(crate) pg: bool,
    pub(crate) rules: Arc<Rules>,
    records: Records,
}

impl Records {
    /// Opens a session: on SQLite the write lock is taken at once; on PostgreSQL the holds'
    /// lock (as retention takes it, before the audit chain's), so that a hold and the run that
    /// would destroy what it keeps never interleave.
    pub async fn session(&self) -> Result<Session, RecordsError> {
        Ok(Session {
            tx: self.begin_destroying().await?,
            pg: self.pg,
            rules: self.rules.clone(),
            records: self.clone(),
        })
    }
}

impl Session {
    /// The records themselves, for reads outside this transaction.
    pub fn records(&self) -> &Records {
        &self.records
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Appends `e` to the audit trail, on this transaction: it is kept only if the session
    /// commits.
    pub async fn audit(&mut self, e: &Entry) -> Result<i64, RecordsError> {
        super::audit::append_chained(&mut self.tx, e).await
    }

    pub async fn commit(self) -> Result<(), RecordsError> {
        Ok(self.tx.commit().await?)
    }

    /// Undoes everything done on this session.
    pub async fn rollback(self) -> Result<(), RecordsError> {
        Ok(self.tx.rollback().await?)
    }
}

/// `Records` methods that run one session method and commit: `pub async fn name(&self, args)
/// -> Result<T, RecordsError>`.
macro_rules! committed {
    ($($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty;)*) => {
        impl $crate::records::Records {
            $(
                $(#[$doc])*
                pub async fn $name(&self, $($arg: $ty),*) -> Result<$ret, $crate::records::RecordsError> {
                    let mut s = self.session().await?;
                    let out = s.$name($($arg),*).await?;
                    s.commit().await?;
                    Ok(out)
                }
            )*
        }
    };
}
pub(crate) use committed;

//! Hits on their way to the agency's dispatch systems: which alert each target has been sent.
use super::{AlertView, Records, RecordsError, Session, sql};

impl Records {
    /// Alerts received at or after `since_ms` that `target` has not been sent, oldest first.
    pub async fn alerts_to_forward(
        &self,
        target: &str,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<AlertView>, RecordsError> {
        let rows = sqlx::query(sql(
            self.pg,
            concat!(
                "SELECT ",
                super::alert_columns!(),
                " FROM alerts a LEFT JOIN reads r \
                 ON r.trailer_id = a.trailer_id AND r.read_id = a.read_id \
                 WHERE a.received_at >= ? AND NOT EXISTS (SELECT 1 FROM alert_forwards f \
                 WHERE f.target = ? AND f.trailer_id = a.trailer_id AND f.alert_id = a.alert_id) \
                 ORDER BY a.received_at, a.trailer_id, a.alert_id LIMIT ?"
            ),
        ))
        .bind(since_ms)
        .bind(target)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(super::alert_view).collect())
    }

    /// One alert, if `target` has not been sent it (nor passed it over), however old.
    pub async fn alert_awaiting(
        &self,
        target: &str,
        trailer: &str,
        alert_id: u64,
    ) -> Result<Option<AlertView>, RecordsError> {
        let row = sqlx::query(sql(
            self.pg,
            concat!(
                "SELECT ",
                super::alert_columns!(),
                " FROM alerts a LEFT JOIN reads r \
                 ON r.trailer_id = a.trailer_id AND r.read_id = a.read_id \
                 WHERE a.trailer_id = ? AND a.alert_id = ? AND NOT EXISTS (SELECT 1 \
                 FROM alert_forwards f WHERE f.target = ? AND f.trailer_id = a.trailer_id \
                 AND f.alert_id = a.alert_id)"
            ),
        ))
        .bind(trailer)
        .bind(alert_id as i64)
        .bind(target)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(super::alert_view))
    }
}

impl Session {
    /// Records that `target` was sent an alert. False if it already was.
    pub async fn alert_forwarded(
        &mut self,
        target: &str,
        trailer: &str,
        alert_id: u64,
        now: i64,
    ) -> Result<bool, RecordsError> {
        let done = sqlx::query(sql(
            self.pg,
            "INSERT INTO alert_forwards (target, trailer_id, alert_id, delivered_ms) \
             VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        ))
        .bind(target)
        .bind(trailer)
        .bind(alert_id as i64)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

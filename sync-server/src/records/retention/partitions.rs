//! Day partitions of `reads` and `pictures` on PostgreSQL, by collection time.
//!
//! The retention duty makes each day's partitions ahead of time, for every day a read may still
//! be collected in and kept (retention plus a margin behind, two days ahead), so ingestion never
//! runs DDL. A day wholly past the cutoff is dropped in one statement, unless a hold keeps one
//! of its rows; then the row-by-row path deletes the rest of it, and the empty table is dropped
//! at a later run once the hold is released.
use super::Purged;
use crate::records::{RecordsError, sql};
use sqlx::{AnyPool, Executor, Row};

const DAY_MS: i64 = 86_400_000;

/// Days before retention's cutoff that still get a partition: a trailer offline that long
/// sends reads already past retention, which land in the default partition and go row by row.
const MARGIN_DAYS: i64 = 2;

/// The tables partitioned by day, with the column and the held-row check of each.
const TABLES: [(&str, &str); 2] = [
    // Pictures first: a read goes only once its pictures have.
    ("pictures", "collected_at"),
    ("reads", "first_seen"),
];

fn partition_name(table: &str, day: i64) -> String {
    format!("{table}_d{day}")
}

fn day_of(name: &str, table: &str) -> Option<i64> {
    name.strip_prefix(table)?.strip_prefix("_d")?.parse().ok()
}

/// Makes the partitions of every day from retention's margin to two days ahead. Failures are
/// logged and retried at the next run: a row outside any partition lands in the default one.
pub(super) async fn ensure(pool: &AnyPool, now: i64, retention_days: u32) {
    let today = now.div_euclid(DAY_MS);
    let first = today - i64::from(retention_days) - MARGIN_DAYS;
    for (table, column) in TABLES {
        let existing = match partitions(pool, table).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, table, "cannot list partitions");
                return;
            }
        };
        for day in first..=today + 2 {
            if existing.contains(&day) {
                continue;
            }
            // A day with rows in the default partition cannot get its own (and asking would
            // scan the default partition under an exclusive lock at every run): it stays there.
            let probe = format!(
                "SELECT 1 FROM {table}_default WHERE {column} >= {from} AND {column} < {to} LIMIT 1",
                from = day * DAY_MS,
                to = (day + 1) * DAY_MS
            );
            match sqlx::query(sqlx::AssertSqlSafe(probe)).fetch_optional(pool).await {
                Ok(None) => {}
                Ok(Some(_)) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, table, "cannot look into the default partition");
                    return;
                }
            }
            let ddl = format!(
                "CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} \
                 FOR VALUES FROM ({from}) TO ({to})",
                name = partition_name(table, day),
                from = day * DAY_MS,
                to = (day + 1) * DAY_MS
            );
            if let Err(e) = pool.execute(sqlx::AssertSqlSafe(ddl)).await {
                // Rows of that day already in the default partition (or another instance made
                // it a moment ago): the day stays in the default partition.
                tracing::debug!(error = %e, table, day, "partition not made");
            }
        }
    }
}

/// The days that have a partition of `table`.
async fn partitions(pool: &AnyPool, table: &str) -> Result<Vec<i64>, RecordsError> {
    let rows = sqlx::query(sql(
        true,
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ?",
    ))
    .bind(table)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().filter_map(|r| day_of(&r.get::<String, _>(0), table)).collect())
}

/// Drops every day partition that ends at or before `cutoff` and holds nothing held; returns
/// the rows dropped (counted first, for the audit trail).
pub(super) async fn drop_expired(pool: &AnyPool, cutoff: i64) -> Result<Purged, RecordsError> {
    let mut done = Purged::default();
    for (table, column) in TABLES {
        for day in partitions(pool, table).await? {
            if (day + 1) * DAY_MS > cutoff {
                continue;
            }
            let name = partition_name(table, day);
            let mut tx = pool.begin().await?;
            // The holds lock: no hold is placed between the check and the drop, and another
            // instance's retention run waits (and then finds the partition gone).
            sqlx::query(sql(true, "SELECT pg_advisory_xact_lock(?)"))
                .bind(super::HOLDS_LOCK)
                .execute(&mut *tx)
                .await?;
            // Dropping a partition locks its parent for a moment: wait for the ingest batches
            // in flight, not longer (the next run tries again).
            tx.execute("SET LOCAL lock_timeout = '5s'").await?;
            let present: Option<String> =
                sqlx::query(sql(true, "SELECT CAST(to_regclass(?) AS TEXT)"))
                    .bind(&name)
                    .fetch_one(&mut *tx)
                    .await?
                    .get(0);
            if present.is_none() {
                continue;
            }
            let held_sql = format!(
                "SELECT COUNT(*) FROM {name} x JOIN held_reads h \
                 ON h.trailer_id = x.trailer_id AND h.read_id = x.read_id \
                 JOIN holds d ON d.id = h.hold_id WHERE d.released_ms IS NULL"
            );
            let held: i64 =
                sqlx::query(sqlx::AssertSqlSafe(held_sql)).fetch_one(&mut *tx).await?.get(0);
            if held > 0 {
                continue;
            }
            let rows: i64 =
                sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {name}")))
                    .fetch_one(&mut *tx)
                    .await?
                    .get(0);
            match tx.execute(sqlx::AssertSqlSafe(format!("DROP TABLE {name}"))).await {
                Ok(_) => {
                    tx.commit().await?;
                    match table {
                        "reads" => done.reads += rows as u64,
                        _ => done.pictures += rows as u64,
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, partition = %name, column, "partition not dropped; rows go one by one");
                }
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip() {
        assert_eq!(partition_name("reads", 20_415), "reads_d20415");
        assert_eq!(day_of("reads_d20415", "reads"), Some(20_415));
        assert_eq!(day_of("reads_default", "reads"), None);
        assert_eq!(day_of("pictures_d1", "reads"), None);
    }
}

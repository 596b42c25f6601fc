//! The public log of use (Minn. Stat. 13.824 subd. 5): tallied when reads and hits arrive, so
//! it outlives the destruction of the reads, and read back per reader and period of active use.
//!
//! A tally's key is `(reader, period of active use, local day)`. The period is the trailer's own
//! record of when it collected (its `ActiveUse` messages, which travel ahead of the backlog); a
//! read whose period had not arrived yet is tallied under period 0 and shown as collected outside
//! a recorded period. The day and the hours of the day are in the agency's time zone.
use super::{Records, RecordsError, Rules, is_pg, sql};
use serde::Serialize;
use sqlx::{AnyConnection, Row};
use std::collections::BTreeMap;
use trailer_wire::HitCategory;

/// Hit categories in the log's column order.
pub const CATEGORIES: [(&str, &str); 6] = [
    ("stolen_vehicle", "Stolen vehicle"),
    ("stolen_plate", "Stolen plate"),
    ("warrant", "Warrant"),
    ("suspended_revoked", "Suspended or revoked licence"),
    ("missing_person", "Missing person or AMBER alert"),
    ("investigative", "Active investigative data"),
];

fn category_index(c: HitCategory) -> usize {
    match c {
        HitCategory::StolenVehicle => 0,
        HitCategory::StolenPlate => 1,
        HitCategory::Warrant => 2,
        HitCategory::SuspendedRevokedLicence => 3,
        HitCategory::MissingPersonAmber => 4,
        HitCategory::ActiveInvestigation => 5,
    }
}

/// What one key adds to the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    hours: i64,
    reads: i64,
    hits: [i64; 6],
}

/// Local day (`YYYY-MM-DD`) and hour of `ms` in the agency's time zone.
pub fn local_day_hour(rules: &Rules, ms: i64) -> (String, i8) {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => {
            let z = ts.to_zoned_datetime(rules.time_zone.clone());
            (z.date().to_string(), z.hour())
        }
        // Outside jiff's range (a trailer clock far off): the epoch's day, hour 0.
        Err(_) => ("1970-01-01".into(), 0),
    }
}

/// The trailer's periods of active use that may contain times in `[from, to]`:
/// `(period_id, start, end)`, by start.
async fn periods(
    c: &mut AnyConnection,
    trailer: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, i64, Option<i64>)>, RecordsError> {
    let pg = is_pg(c);
    let rows = sqlx::query(sql(
        pg,
        "SELECT period_id, start_ms, end_ms FROM usage_periods WHERE trailer_id = ? \
         AND start_ms <= ? AND (end_ms IS NULL OR end_ms >= ?) ORDER BY start_ms",
    ))
    .bind(trailer)
    .bind(to)
    .bind(from)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// The period containing `t`: the latest that started at or before it and had not ended.
fn period_of(periods: &[(i64, i64, Option<i64>)], t: i64) -> i64 {
    periods
        .iter()
        .rev()
        .find(|(_, start, end)| *start <= t && end.is_none_or(|e| e >= t))
        .map_or(0, |p| p.0)
}

/// The period each of `times` falls in (0: none recorded yet).
pub(super) async fn periods_of(
    c: &mut AnyConnection,
    trailer: &str,
    times: &[i64],
) -> Result<Vec<i64>, RecordsError> {
    let (Some(from), Some(to)) = (times.iter().min(), times.iter().max()) else {
        return Ok(Vec::new());
    };
    let known = periods(c, trailer, *from, *to).await?;
    Ok(times.iter().map(|t| period_of(&known, *t)).collect())
}

/// Adds to the log: each of `reads` (new to the server, with the period it falls in) counts as
/// a read, or, with `hit`, as a hit of that category.
pub(super) async fn tally(
    c: &mut AnyConnection,
    rules: &Rules,
    trailer: &str,
    reads: &[(i64, i64)],
    hit: Option<HitCategory>,
) -> Result<(), RecordsError> {
    let mut tallies: BTreeMap<(i64, String), Tally> = BTreeMap::new();
    for &(first_seen, period) in reads {
        let (day, hour) = local_day_hour(rules, first_seen);
        let t = tallies.entry((period, day)).or_default();
        t.hours |= 1 << hour;
        match hit {
            Some(category) => t.hits[category_index(category)] += 1,
            None => t.reads += 1,
        }
    }
    for ((period, day), t) in tallies {
        add(c, trailer, period, &day, t, 1).await?;
    }
    Ok(())
}

/// Adds (`sign` 1) or takes away (-1) a tally.
async fn add(
    c: &mut AnyConnection,
    trailer: &str,
    period: i64,
    day: &str,
    t: Tally,
    sign: i64,
) -> Result<(), RecordsError> {
    let pg = is_pg(c);
    sqlx::query(sql(
        pg,
        "INSERT INTO use_log (trailer_id, period_id, day, hours, reads, stolen_vehicle, \
         stolen_plate, warrant, suspended_revoked, missing_person, investigative) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (trailer_id, period_id, day) DO UPDATE SET \
         hours = use_log.hours | excluded.hours, reads = use_log.reads + excluded.reads, \
         stolen_vehicle = use_log.stolen_vehicle + excluded.stolen_vehicle, \
         stolen_plate = use_log.stolen_plate + excluded.stolen_plate, \
         warrant = use_log.warrant + excluded.warrant, \
         suspended_revoked = use_log.suspended_revoked + excluded.suspended_revoked, \
         missing_person = use_log.missing_person + excluded.missing_person, \
         investigative = use_log.investigative + excluded.investigative",
    ))
    .bind(trailer)
    .bind(period)
    .bind(day)
    .bind(if sign > 0 { t.hours } else { 0 })
    .bind(sign * t.reads)
    .bind(sign * t.hits[0])
    .bind(sign * t.hits[1])
    .bind(sign * t.hits[2])
    .bind(sign * t.hits[3])
    .bind(sign * t.hits[4])
    .bind(sign * t.hits[5])
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// A period of use arrived (or closed): the reads counted under no period (0) that fall in it
/// move to it, with their hits. After an offline stretch alerts go first, and their reads came
/// before the record of the period they belong to.
pub(super) async fn attribute(
    c: &mut AnyConnection,
    rules: &Rules,
    trailer: &str,
    period: i64,
    start: i64,
    end: i64,
) -> Result<(), RecordsError> {
    let pg = is_pg(c);
    let reads = sqlx::query(sql(
        pg,
        "SELECT read_id, first_seen FROM reads WHERE trailer_id = ? AND period_id = 0 \
         AND first_seen >= ? AND first_seen <= ?",
    ))
    .bind(trailer)
    .bind(start)
    .bind(end)
    .fetch_all(&mut *c)
    .await?;
    if reads.is_empty() {
        return Ok(());
    }
    let mut moved: BTreeMap<String, Tally> = BTreeMap::new();
    for r in &reads {
        let (read_id, first_seen): (i64, i64) = (r.get(0), r.get(1));
        let (day, hour) = local_day_hour(rules, first_seen);
        let t = moved.entry(day).or_default();
        t.reads += 1;
        t.hours |= 1 << hour;
        // Each category once per read, however many lists it was on.
        let categories = sqlx::query(sql(
            pg,
            "SELECT DISTINCT category FROM alerts WHERE trailer_id = ? AND read_id = ?",
        ))
        .bind(trailer)
        .bind(read_id)
        .fetch_all(&mut *c)
        .await?;
        for cat in &categories {
            if let Some(i) = category_named(&cat.get::<String, _>(0)) {
                t.hits[i] += 1;
            }
        }
    }
    sqlx::query(sql(
        pg,
        "UPDATE reads SET period_id = ? WHERE trailer_id = ? AND period_id = 0 \
         AND first_seen >= ? AND first_seen <= ?",
    ))
    .bind(period)
    .bind(trailer)
    .bind(start)
    .bind(end)
    .execute(&mut *c)
    .await?;
    for (day, t) in moved {
        add(c, trailer, 0, &day, t, -1).await?;
        add(c, trailer, period, &day, t, 1).await?;
    }
    // A day left with nothing under no period is no row of the log.
    sqlx::query(sql(
        pg,
        "DELETE FROM use_log WHERE trailer_id = ? AND period_id = 0 AND reads = 0 \
         AND stolen_vehicle = 0 AND stolen_plate = 0 AND warrant = 0 \
         AND suspended_revoked = 0 AND missing_person = 0 AND investigative = 0",
    ))
    .bind(trailer)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// The column index of a category as the alerts table names it (`StolenVehicle`, ...).
fn category_named(name: &str) -> Option<usize> {
    [
        HitCategory::StolenVehicle,
        HitCategory::StolenPlate,
        HitCategory::Warrant,
        HitCategory::SuspendedRevokedLicence,
        HitCategory::MissingPersonAmber,
        HitCategory::ActiveInvestigation,
    ]
    .into_iter()
    .find(|c| format!("{c:?}") == name)
    .map(category_index)
}

/// One period of active use as the public log shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogPeriod {
    pub reader: String,
    /// 0: reads that arrived before (or without) their period's record.
    pub period_id: i64,
    /// Local date-times (`YYYY-MM-DD HH:MM`); absent for period 0, `end` while still in use.
    pub start: Option<String>,
    pub end: Option<String>,
    /// Local hours of the day in which the reader collected (`"07-09, 14"`).
    pub hours: String,
    pub reads: i64,
    pub hits: BTreeMap<&'static str, i64>,
    /// The databases the reads were compared with.
    pub databases: Vec<String>,
    /// Where a stationary reader stood (its public place), unless security information.
    pub location: Option<String>,
    /// First and last local day with reads.
    pub first_day: String,
    pub last_day: String,
}

/// Reads and hits per local day across all readers (the log's chart).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogDay {
    pub day: String,
    pub reads: i64,
    pub hits: i64,
}

/// The public log of use for local days `from..=to` (`YYYY-MM-DD`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UseLog {
    pub from: String,
    pub to: String,
    pub periods: Vec<LogPeriod>,
    pub days: Vec<LogDay>,
    pub total_reads: i64,
    pub total_hits: BTreeMap<&'static str, i64>,
}

/// Hours of the day as ranges: bits 7, 8, 9 and 14 give `"07-09, 14"`.
pub fn hour_ranges(mask: i64) -> String {
    let mut out = Vec::new();
    let mut h = 0;
    while h < 24 {
        if mask & (1 << h) != 0 {
            let start = h;
            while h + 1 < 24 && mask & (1 << (h + 1)) != 0 {
                h += 1;
            }
            out.push(if start == h { format!("{start:02}") } else { format!("{start:02}-{h:02}") });
        }
        h += 1;
    }
    out.join(", ")
}

fn local_minute(rules: &Rules, ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|ts| {
            ts.to_zoned_datetime(rules.time_zone.clone()).strftime("%Y-%m-%d %H:%M").to_string()
        })
        .unwrap_or_default()
}

/// The local hours of the day in which `[start, end)` falls (every hour from a day on).
fn span_hours(rules: &Rules, start: i64, end: i64) -> i64 {
    const HOUR: i64 = 3_600_000;
    if end - start >= 24 * HOUR {
        return (1 << 24) - 1;
    }
    let mut mask = 0i64;
    let mut t = start;
    while t < end.max(start + 1) {
        mask |= 1 << local_day_hour(rules, t).1;
        t = (t.div_euclid(HOUR) + 1) * HOUR;
    }
    mask
}

/// Milliseconds at the local midnights that start `from` and end `to`.
fn day_range(rules: &Rules, from: &str, to: &str) -> Option<(i64, i64)> {
    let midnight = |d: jiff::civil::Date| {
        d.to_zoned_datetime(rules.time_zone.clone()).ok().map(|z| z.timestamp().as_millisecond())
    };
    let from: jiff::civil::Date = from.parse().ok()?;
    let to: jiff::civil::Date = to.parse().ok()?;
    Some((midnight(from)?, midnight(to.tomorrow().ok()?)?))
}

impl Records {
    /// Adds to `log` the periods of use in its range that counted no read there: collecting
    /// with nothing read is use, and the public log shows it.
    async fn quiet_periods(
        &self,
        log: &mut UseLog,
        range: (i64, i64),
        now: i64,
        places: &super::locations::Places,
    ) -> Result<(), RecordsError> {
        let listed: std::collections::HashSet<(String, i64)> =
            log.periods.iter().map(|p| (p.reader.clone(), p.period_id)).collect();
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT trailer_id, period_id, start_ms, end_ms, lists, lat, lon FROM usage_periods \
             WHERE start_ms < ? AND (end_ms IS NULL OR end_ms >= ?) ORDER BY trailer_id, start_ms",
        ))
        .bind(range.1)
        .bind(range.0)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let (reader, period_id): (String, i64) = (r.get(0), r.get(1));
            if listed.contains(&(reader.clone(), period_id)) {
                continue;
            }
            let (start, end): (i64, Option<i64>) = (r.get(2), r.get(3));
            let (from, to) = (start.max(range.0), end.unwrap_or(now).min(range.1 - 1));
            if to < from {
                continue;
            }
            let lists: String = r.get(4);
            log.periods.push(LogPeriod {
                location: places.place_at(&reader, r.get(5), r.get(6), start),
                reader,
                period_id,
                start: Some(local_minute(&self.rules, start)),
                end: end.map(|e| local_minute(&self.rules, e)),
                hours: hour_ranges(span_hours(&self.rules, from, to)),
                reads: 0,
                hits: CATEGORIES.iter().map(|c| (c.0, 0)).collect(),
                databases: lists.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
                first_day: local_day_hour(&self.rules, from).0,
                last_day: local_day_hour(&self.rules, to).0,
            });
        }
        log.periods.sort_by(|a, b| {
            (&a.reader, &a.first_day, a.period_id).cmp(&(&b.reader, &b.first_day, b.period_id))
        });
        Ok(())
    }

    /// The public log of use for the local days `from..=to`. Built from the tallies, the
    /// periods of use and the public location list only: no read is touched.
    pub async fn use_log(&self, from: &str, to: &str, now: i64) -> Result<UseLog, RecordsError> {
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT u.trailer_id, u.period_id, MIN(u.day), MAX(u.day), CAST(SUM(u.reads) AS BIGINT), \
             CAST(SUM(u.stolen_vehicle) AS BIGINT), CAST(SUM(u.stolen_plate) AS BIGINT), CAST(SUM(u.warrant) AS BIGINT), \
             CAST(SUM(u.suspended_revoked) AS BIGINT), CAST(SUM(u.missing_person) AS BIGINT), CAST(SUM(u.investigative) AS BIGINT), \
             MIN(p.start_ms), MIN(p.end_ms), MIN(p.lists), MIN(p.lat), MIN(p.lon) \
             FROM use_log u LEFT JOIN usage_periods p \
             ON p.trailer_id = u.trailer_id AND p.period_id = u.period_id \
             WHERE u.day >= ? AND u.day <= ? \
             GROUP BY u.trailer_id, u.period_id ORDER BY u.trailer_id, MIN(u.day), u.period_id",
        ))
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        // Hours are a bit mask per day: OR them per period in code (no portable aggregate).
        let masks = sqlx::query(sql(
            self.pg,
            "SELECT trailer_id, period_id, hours FROM use_log WHERE day >= ? AND day <= ?",
        ))
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let mut hours: BTreeMap<(String, i64), i64> = BTreeMap::new();
        for r in &masks {
            *hours.entry((r.get(0), r.get(1))).or_default() |= r.get::<i64, _>(2);
        }
        let places = self.public_places(now).await?;
        let range = day_range(&self.rules, from, to)
            .ok_or_else(|| RecordsError::Invalid("from and to are dates: YYYY-MM-DD".into()))?;
        let mut log = UseLog {
            from: from.into(),
            to: to.into(),
            periods: Vec::with_capacity(rows.len()),
            days: Vec::new(),
            total_reads: 0,
            total_hits: CATEGORIES.iter().map(|c| (c.0, 0)).collect(),
        };
        for r in &rows {
            let reader: String = r.get(0);
            let period_id: i64 = r.get(1);
            let start: Option<i64> = r.get(11);
            let mut hits = BTreeMap::new();
            for (i, (name, _)) in CATEGORIES.iter().enumerate() {
                let n: i64 = r.get(5 + i);
                hits.insert(*name, n);
                *log.total_hits.entry(name).or_default() += n;
            }
            let reads: i64 = r.get(4);
            log.total_reads += reads;
            let lists: Option<String> = r.get(13);
            let location = match (r.get::<Option<f64>, _>(14), r.get::<Option<f64>, _>(15)) {
                (Some(lat), Some(lon)) => places.place_at(&reader, lat, lon, start.unwrap_or(0)),
                _ => None,
            };
            let end: Option<i64> = r.get(12);
            // Hours collecting: the period's span (within the range); reads only for period 0,
            // which has no span.
            let mask = match start {
                Some(start) => {
                    span_hours(&self.rules, start.max(range.0), end.unwrap_or(now).min(range.1))
                }
                None => hours.get(&(reader.clone(), period_id)).copied().unwrap_or(0),
            };
            log.periods.push(LogPeriod {
                hours: hour_ranges(mask),
                reader,
                period_id,
                start: start.map(|s| local_minute(&self.rules, s)),
                end: end.map(|e| local_minute(&self.rules, e)),
                reads,
                hits,
                databases: lists
                    .unwrap_or_default()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                location,
                first_day: r.get(2),
                last_day: r.get(3),
            });
        }
        self.quiet_periods(&mut log, range, now, &places).await?;
        let days = sqlx::query(sql(
            self.pg,
            "SELECT day, CAST(SUM(reads) AS BIGINT), CAST(SUM(stolen_vehicle + stolen_plate + warrant + \
             suspended_revoked + missing_person + investigative) AS BIGINT) FROM use_log \
             WHERE day >= ? AND day <= ? GROUP BY day ORDER BY day",
        ))
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        log.days = days
            .iter()
            .map(|r| LogDay { day: r.get(0), reads: r.get(1), hits: r.get(2) })
            .collect();
        Ok(log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_masks_read_as_ranges() {
        assert_eq!(hour_ranges(0), "");
        assert_eq!(hour_ranges((1 << 7) | (1 << 8) | (1 << 9) | (1 << 14)), "07-09, 14");
        assert_eq!(hour_ranges((1 << 24) - 1), "00-23");
        assert_eq!(hour_ranges(1 << 23), "23");
    }

    #[test]
    fn a_read_belongs_to_the_period_it_falls_in() {
        let p = [(1, 100, Some(200)), (2, 300, None)];
        assert_eq!(period_of(&p, 150), 1);
        assert_eq!(period_of(&p, 250), 0, "between periods");
        assert_eq!(period_of(&p, 10_000), 2, "the open period");
        assert_eq!(period_of(&p, 50), 0);
    }

    #[test]
    fn local_days_follow_the_agency_time_zone() {
        let rules = Rules::default();
        // 2026-11-23 03:30 UTC is still the 22nd, 21:30, in Minnesota (UTC-6 in November).
        let ms = 1_795_404_600_000;
        assert_eq!(local_day_hour(&rules, ms), ("2026-11-22".to_string(), 21));
    }
}

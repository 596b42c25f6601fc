//! The fixed-location history: where each reader stood, from when until when, under what name,
//! and whether the location is security information (withheld from everything public, still
//! reported to the BCA with that mark). Ingestion makes the rows ([`super::write`]); operators
//! name them, mark them and close them here.
use super::{Records, RecordsError, distance_m, iso_date, iso_time, sql};
use serde::Serialize;
use sqlx::Row;
use std::collections::BTreeMap;
use trailer_wire::console::PublicLocation;

/// A location as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocationView {
    pub id: i64,
    pub reader: String,
    pub place: String,
    pub lat: f64,
    pub lon: f64,
    pub from: String,
    pub until: Option<String>,
    pub security: bool,
}

/// Public places per reader, for the log of use ([`Records::public_places`]).
#[derive(Debug)]
pub struct Places {
    by_reader: BTreeMap<String, Vec<Place>>,
    radius_m: f64,
}

#[derive(Debug)]
struct Place {
    lat: f64,
    lon: f64,
    first_ms: i64,
    last_ms: i64,
    name: String,
    security: bool,
}

impl Places {
    /// The public name of where `reader` stood at (lat, lon) around `at`; `None` when that
    /// location is security information or unknown.
    pub fn place_at(&self, reader: &str, lat: f64, lon: f64, at: i64) -> Option<String> {
        let near = self
            .by_reader
            .get(reader)?
            .iter()
            .filter(|p| distance_m(p.lat, p.lon, lat, lon) <= self.radius_m)
            .min_by_key(|p| {
                if (p.first_ms..=p.last_ms).contains(&at) {
                    0
                } else {
                    p.first_ms.abs_diff(at).min(p.last_ms.abs_diff(at))
                }
            })?;
        (!near.security).then(|| near.name.clone())
    }
}

fn display_place(place: String, lat: f64, lon: f64) -> String {
    if place.is_empty() { format!("{lat:.5}, {lon:.5}") } else { place }
}

/// A determination that a location is, or is no longer, security information.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Determination {
    pub location_id: i64,
    pub reader: String,
    pub place: String,
    pub at: String,
    pub decided_by: String,
    pub security: bool,
    pub reason: String,
}

impl Records {
    /// The public list of reader locations: current and previous, with dates, except those
    /// marked security information and those the server learnt of less than the review period
    /// before `now`.
    pub async fn public_locations(&self, now: i64) -> Result<Vec<PublicLocation>, RecordsError> {
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT trailer_id, place, lat, lon, first_ms, last_ms, current FROM locations \
             WHERE security = 0 AND created_ms <= ? ORDER BY trailer_id, first_ms",
        ))
        .bind(now.saturating_sub(self.rules.review_ms))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let (lat, lon): (f64, f64) = (r.get(2), r.get(3));
                PublicLocation {
                    reader: r.get(0),
                    place: display_place(r.get(1), lat, lon),
                    lat,
                    lon,
                    from: iso_date(r.get(4)),
                    until: if r.get::<i64, _>(6) == 1 { None } else { Some(iso_date(r.get(5))) },
                }
            })
            .collect())
    }

    /// How many locations are withheld from the public list as security information.
    pub async fn withheld_locations(&self) -> Result<i64, RecordsError> {
        Ok(sqlx::query(sql(self.pg, "SELECT COUNT(*) FROM locations WHERE security <> 0"))
            .fetch_one(&self.pool)
            .await?
            .get::<i64, _>(0))
    }

    /// Every location, withheld ones included, for operators.
    pub async fn locations(&self, reader: Option<&str>) -> Result<Vec<LocationView>, RecordsError> {
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT id, trailer_id, place, lat, lon, first_ms, last_ms, current, security \
             FROM locations WHERE (? = '' OR trailer_id = ?) ORDER BY trailer_id, first_ms",
        ))
        .bind(reader.unwrap_or(""))
        .bind(reader.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let (lat, lon): (f64, f64) = (r.get(3), r.get(4));
                LocationView {
                    id: r.get(0),
                    reader: r.get(1),
                    place: display_place(r.get(2), lat, lon),
                    lat,
                    lon,
                    from: iso_date(r.get(5)),
                    until: (r.get::<i64, _>(7) == 0).then(|| iso_date(r.get(6))),
                    security: r.get::<i64, _>(8) != 0,
                }
            })
            .collect())
    }

    /// Every security determination, oldest first, with its location: for an in-camera review
    /// of what the agency withholds (never public).
    pub async fn security_determinations(&self) -> Result<Vec<Determination>, RecordsError> {
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT d.location_id, l.trailer_id, l.place, l.lat, l.lon, d.at_ms, d.decided_by, \
             d.security, d.reason FROM security_determinations d \
             JOIN locations l ON l.id = d.location_id ORDER BY d.id",
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let (lat, lon): (f64, f64) = (r.get(3), r.get(4));
                Determination {
                    location_id: r.get(0),
                    reader: r.get(1),
                    place: display_place(r.get(2), lat, lon),
                    at: iso_time(r.get(5)),
                    decided_by: r.get(6),
                    security: r.get::<i64, _>(7) != 0,
                    reason: r.get(8),
                }
            })
            .collect())
    }

    /// Every location with its public name and mark, for the log of use (one still under
    /// review counts as withheld).
    pub async fn public_places(&self, now: i64) -> Result<Places, RecordsError> {
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT trailer_id, place, lat, lon, first_ms, last_ms, \
             CASE WHEN created_ms > ? THEN 1 ELSE security END FROM locations",
        ))
        .bind(now.saturating_sub(self.rules.review_ms))
        .fetch_all(&self.pool)
        .await?;
        let mut places = Places { by_reader: BTreeMap::new(), radius_m: self.rules.new_location_m };
        for r in &rows {
            let (lat, lon): (f64, f64) = (r.get(2), r.get(3));
            places.by_reader.entry(r.get(0)).or_default().push(Place {
                lat,
                lon,
                name: display_place(r.get(1), lat, lon),
                first_ms: r.get(4),
                last_ms: r.get(5),
                security: r.get::<i64, _>(6) != 0,
            });
        }
        Ok(places)
    }
}

super::session::committed! {
    /// Names a location (what the public list and the BCA notice show).
    fn rename_location(id: i64, place: &str) -> ();
    /// Marks a location as security information (withheld from the public) or clears the mark,
    /// recording the determination: who made it (`by`) and why. If the BCA was already told of
    /// the location, a correction notice is due. Returns whether one is.
    fn set_location_security(id: i64, security: bool, by: &str, reason: &str, now: i64) -> bool;
    /// Ends a reader's current deployment at `at` (an operator took it away while it was
    /// offline); its next position opens a new one.
    fn end_deployment(reader: &str, at: i64) -> bool;
    /// Starts a reader's deployment where an operator set it up (a trailer without a GPS fix,
    /// or placed before it reports): the position is placed as a trailer's own would be (the
    /// same place when near its current one, else a new place with its BCA notice), then named
    /// and marked as the operator says. Returns the location's id.
    fn start_deployment(reader: &str, lat: f64, lon: f64, place: Option<&str>, security_by: Option<&str>, now: i64) -> i64;
}

impl super::Session {
    /// Names a location (what the public list and the BCA notice show).
    pub async fn rename_location(&mut self, id: i64, place: &str) -> Result<(), RecordsError> {
        let place = place.trim();
        if place.is_empty() || place.chars().count() > 200 || place.chars().any(char::is_control) {
            return Err(RecordsError::Invalid(
                "a place name is 1-200 characters, without control characters".into(),
            ));
        }
        let done = sqlx::query(sql(self.pg, "UPDATE locations SET place = ? WHERE id = ?"))
            .bind(place)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(RecordsError::Invalid(format!("no location {id}")));
        }
        Ok(())
    }

    /// Marks a location as security information (withheld from the public) or clears the mark,
    /// recording the determination: who made it (`by`) and why. If the BCA was already told of
    /// the location, a correction notice is due. Returns whether one is.
    pub async fn set_location_security(
        &mut self,
        id: i64,
        security: bool,
        by: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, RecordsError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 1000 {
            return Err(RecordsError::Invalid(
                "reason: why the location is (or is no longer) security information, up to \
                 1000 characters"
                    .into(),
            ));
        }
        let done = sqlx::query(sql(
            self.pg,
            "UPDATE locations SET security = ? WHERE id = ? AND security <> ?",
        ))
        .bind(i64::from(security))
        .bind(id)
        .bind(i64::from(security))
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 0 {
            let exists = sqlx::query(sql(self.pg, "SELECT 1 FROM locations WHERE id = ?"))
                .bind(id)
                .fetch_optional(&mut *self.tx)
                .await?;
            return match exists {
                Some(_) => Ok(false),
                None => Err(RecordsError::Invalid(format!("no location {id}"))),
            };
        }
        sqlx::query(sql(
            self.pg,
            "INSERT INTO security_determinations (location_id, at_ms, decided_by, security, reason) \
             VALUES (?, ?, ?, ?, ?)",
        ))
        .bind(id)
        .bind(now)
        .bind(by)
        .bind(i64::from(security))
        .bind(reason)
        .execute(&mut *self.tx)
        .await?;
        self.correct_notice(id, now).await
    }

    /// Ends a reader's current deployment at `at` (an operator took it away while it was
    /// offline); its next position opens a new one.
    pub async fn end_deployment(&mut self, reader: &str, at: i64) -> Result<bool, RecordsError> {
        let closed = super::write::close_current(&mut self.tx, reader, Some(at), at).await?;
        Ok(closed)
    }

    /// Starts a reader's deployment where an operator set it up (a trailer without a GPS fix,
    /// or placed before it reports): the position is placed as a trailer's own would be (the
    /// same place when near its current one, else a new place with its BCA notice), then named
    /// and marked as the operator says. Returns the location's id.
    pub async fn start_deployment(
        &mut self,
        reader: &str,
        lat: f64,
        lon: f64,
        place: Option<&str>,
        security_by: Option<&str>,
        now: i64,
    ) -> Result<i64, RecordsError> {
        if !trailer_wire::topic::valid_id(reader) {
            return Err(RecordsError::Invalid(format!("invalid reader id {reader:?}")));
        }
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(RecordsError::Invalid("lat -90..90 and lon -180..180 degrees".into()));
        }
        // A typing error must not announce a new reader to the BCA: the reader is one the
        // server has heard from.
        let known = sqlx::query(sql(
            self.pg,
            "SELECT 1 FROM trailer_status WHERE trailer_id = ? \
             UNION SELECT 1 FROM locations WHERE trailer_id = ?",
        ))
        .bind(reader)
        .bind(reader)
        .fetch_optional(&mut *self.tx)
        .await?;
        if known.is_none() {
            return Err(RecordsError::Invalid(format!(
                "no reader {reader:?} has connected to this server yet: check the id"
            )));
        }
        super::write::note_location(&mut self.tx, &self.rules, reader, lat, lon, now, now).await?;
        let id: i64 = sqlx::query(sql(
            self.pg,
            "SELECT id FROM locations WHERE trailer_id = ? AND current = 1",
        ))
        .bind(reader)
        .fetch_one(&mut *self.tx)
        .await?
        .get(0);
        if let Some(place) = place {
            self.rename_location(id, place).await?;
        }
        if let Some(by) = security_by {
            // A place already told to the BCA gets its correction, as when marked later.
            let why = "marked security information when the deployment was started";
            self.set_location_security(id, true, by, why, now).await?;
        }
        Ok(id)
    }
}

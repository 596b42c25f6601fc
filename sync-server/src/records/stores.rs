//! The stores a trailer runs on, as its status reports them ([`trailer_wire::StoreInfo`]).
//!
//! Stores get replaced in the field and restored from older copies. Their records never collide
//! (ids are unique for the life of a trailer id), but such a store lacks what the server sent to
//! the one before it: the ACP digests (without them it would collect a participant's plates), the
//! current hotlists, the holds, its configuration. So each run of a store is recorded, and:
//! - the first store heard of from a trailer is sent the ACP list and the hotlists;
//! - a store id not the trailer's current one is a **new store** (a disk swapped, a re-flash, a
//!   spare unit, an old disk put back);
//! - the current store with an `opens` already seen under another run is a **restored** older
//!   copy;
//!
//! and either is shown to operators (`trailer_status`), written in the audit trail, and sent again
//! everything its store must hold. Only online statuses count: the broker publishes a last will
//! late, and an old store's will must not look like a store change.
use super::{RecordsError, is_pg, sql};
use sqlx::{AnyConnection, Row};
use trailer_wire::{Downlink, HoldCommand, HoldKind, Message, StoreInfo};

/// What a status said about the trailer's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// The first store the server hears of for this trailer.
    First,
    /// A run of the store already known (a restart), or a status already seen.
    Same,
    /// Another store than the trailer's current one.
    NewStore { previous: String },
    /// The current store, from an older copy.
    Restored,
}

impl StoreEvent {
    fn name(&self) -> &'static str {
        match self {
            StoreEvent::First => "first",
            StoreEvent::Same => "reopened",
            StoreEvent::NewStore { .. } => "new-store",
            StoreEvent::Restored => "restored",
        }
    }
}

fn hex_id(v: u64) -> String {
    format!("{v:016x}")
}

/// Records this run of the trailer's store and says what it is.
pub(crate) async fn note(
    c: &mut AnyConnection,
    trailer: &str,
    info: &StoreInfo,
    now: i64,
) -> Result<StoreEvent, RecordsError> {
    let pg = is_pg(c);
    let (store, run) = (hex_id(info.store_id), hex_id(info.run));
    let seen = sqlx::query(sql(
        pg,
        "SELECT 1 FROM trailer_stores WHERE trailer_id = ? AND store_id = ? AND run = ?",
    ))
    .bind(trailer)
    .bind(&store)
    .bind(&run)
    .fetch_optional(&mut *c)
    .await?
    .is_some();
    if seen {
        return Ok(StoreEvent::Same);
    }
    let current: Option<String> = sqlx::query(sql(
        pg,
        "SELECT store_id FROM trailer_stores WHERE trailer_id = ? \
         ORDER BY first_seen DESC, opens DESC LIMIT 1",
    ))
    .bind(trailer)
    .fetch_optional(&mut *c)
    .await?
    .map(|r| r.get(0));
    let event = match current {
        None => StoreEvent::First,
        Some(cur) if cur != store => StoreEvent::NewStore { previous: cur },
        Some(_) => {
            let max_opens: i64 = sqlx::query(sql(
                pg,
                "SELECT COALESCE(MAX(opens), 0) FROM trailer_stores \
                 WHERE trailer_id = ? AND store_id = ?",
            ))
            .bind(trailer)
            .bind(&store)
            .fetch_one(&mut *c)
            .await?
            .get(0);
            if (info.opens as i64) > max_opens { StoreEvent::Same } else { StoreEvent::Restored }
        }
    };
    sqlx::query(sql(
        pg,
        "INSERT INTO trailer_stores (trailer_id, store_id, created_ms, opens, run, first_seen, \
         event) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(trailer)
    .bind(&store)
    .bind(info.created)
    .bind(info.opens as i64)
    .bind(&run)
    .bind(now)
    .bind(event.name())
    .execute(&mut *c)
    .await?;
    Ok(event)
}

/// What was sent again to a store that lacks it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resent {
    pub acp_digests: usize,
    pub hotlists: usize,
    pub holds: usize,
    pub config: bool,
    /// A suspension order in force.
    pub suspension: bool,
}

/// Queues for `trailer` everything its store must hold: the ACP digests first, then the newest
/// version of every hotlist, every active hold that names its reads, and its newest applied
/// configuration.
pub(crate) async fn send_everything(
    c: &mut AnyConnection,
    rules: &super::Rules,
    trailer: &str,
    now: i64,
) -> Result<Resent, RecordsError> {
    Ok(Resent {
        acp_digests: super::acp::send_list(c, rules, trailer, now).await?,
        hotlists: super::hotlists::send_lists(c, trailer, now).await?,
        holds: send_holds(c, trailer, now).await?,
        config: send_config(c, rules, trailer, now).await?,
        suspension: super::oversight::send_suspension(c, trailer, now).await?,
    })
}

/// Queues every active hold that names reads of `trailer` (its pictures may be kept there only).
pub(crate) async fn send_holds(
    c: &mut AnyConnection,
    trailer: &str,
    now: i64,
) -> Result<usize, RecordsError> {
    let pg = is_pg(c);
    let rows = sqlx::query(sql(
        pg,
        "SELECT h.id, h.kind, h.case_number, r.read_id FROM holds h \
         JOIN held_reads r ON r.hold_id = h.id \
         WHERE r.trailer_id = ? AND h.released_ms IS NULL ORDER BY h.id, r.read_id",
    ))
    .bind(trailer)
    .fetch_all(&mut *c)
    .await?;
    let mut holds: Vec<(i64, String, String, Vec<u64>)> = Vec::new();
    for r in &rows {
        let (id, read): (i64, i64) = (r.get(0), r.get(3));
        match holds.last_mut() {
            Some(h) if h.0 == id => h.3.push(read as u64),
            _ => holds.push((id, r.get(1), r.get(2), vec![read as u64])),
        }
    }
    for (hold_id, kind, case_number, read_ids) in &holds {
        let kind = if kind == "exculpatory" {
            HoldKind::Exculpatory
        } else {
            HoldKind::ActiveInvestigation
        };
        let summary = format!("hold {hold_id} ({} reads), sent again", read_ids.len());
        let command = HoldCommand::Place {
            hold_id: *hold_id as u64,
            kind,
            case_number: case_number.clone(),
            read_ids: read_ids.clone(),
        };
        super::downlinks::enqueue(c, trailer, "hold", &summary, "sync-server", now, |id| {
            Downlink::Hold { downlink_id: id, command }
        })
        .await?;
    }
    // Holds on a plate and a period: the trailer finds its own reads of them.
    let on_plates = sqlx::query(sql(
        pg,
        "SELECT id, kind, case_number, plate, from_ms, to_ms FROM holds \
         WHERE released_ms IS NULL AND plate IS NOT NULL ORDER BY id",
    ))
    .fetch_all(&mut *c)
    .await?;
    for r in &on_plates {
        let kind = if r.get::<String, _>(1) == "exculpatory" {
            HoldKind::Exculpatory
        } else {
            HoldKind::ActiveInvestigation
        };
        let (typed, zeroed) = super::plate_pair(&r.get::<String, _>(3));
        let plates = if typed == zeroed { vec![typed] } else { vec![typed, zeroed] };
        let (id, case): (i64, String) = (r.get(0), r.get(2));
        let period = (r.get::<i64, _>(4), r.get::<i64, _>(5));
        super::retention::queue_plate_hold(
            c,
            trailer,
            id,
            kind,
            &case,
            &plates,
            period,
            "sync-server",
            now,
        )
        .await?;
    }
    Ok(holds.len() + on_plates.len())
}

/// Queues again the newest configuration the trailer applied, if the server ever sent one
/// (signed anew: a signature names its downlink).
async fn send_config(
    c: &mut AnyConnection,
    rules: &super::Rules,
    trailer: &str,
    now: i64,
) -> Result<bool, RecordsError> {
    let Some(key) = rules.config_key.clone() else { return Ok(false) };
    let pg = is_pg(c);
    let frame: Option<Vec<u8>> = sqlx::query(sql(
        pg,
        "SELECT frame FROM downlinks WHERE trailer_id = ? AND kind = 'config' AND applied = 1 \
         ORDER BY id DESC LIMIT 1",
    ))
    .bind(trailer)
    .fetch_optional(&mut *c)
    .await?
    .map(|r| r.get(0));
    let Some(Ok(Message::Downlink(Downlink::Config { toml, .. }))) =
        frame.as_deref().map(trailer_wire::decode)
    else {
        return Ok(false);
    };
    let summary = "configuration, sent again to a new store";
    super::downlinks::enqueue(c, trailer, "config", summary, "sync-server", now, |id| {
        let signature = trailer_wire::signed::sign(&key, trailer, id, &toml).unwrap_or_default();
        Downlink::Config { downlink_id: id, toml, signature }
    })
    .await?;
    Ok(true)
}

/// Notes on the trailer's status row what happened to its store, for operators.
pub(crate) async fn show(
    c: &mut AnyConnection,
    trailer: &str,
    info: &StoreInfo,
    event: &StoreEvent,
    now: i64,
) -> Result<(), RecordsError> {
    let pg = is_pg(c);
    let changed = matches!(event, StoreEvent::NewStore { .. } | StoreEvent::Restored);
    sqlx::query(sql(
        pg,
        "UPDATE trailer_status SET store_id = ?, \
         store_event = CASE WHEN ? = 1 THEN ? ELSE store_event END, \
         store_event_ms = CASE WHEN ? = 1 THEN ? ELSE store_event_ms END WHERE trailer_id = ?",
    ))
    .bind(hex_id(info.store_id))
    .bind(i64::from(changed))
    .bind(event.name())
    .bind(i64::from(changed))
    .bind(now)
    .bind(trailer)
    .execute(&mut *c)
    .await?;
    Ok(())
}

//! Applying the server's downlinks to the store. No I/O beyond the store: the link decodes a
//! command, calls [`apply`], and queues the answer like any outbox item, so the server learns
//! of every command whether it was applied or refused, and why.
//!
//! Each command is applied at most once: its answer is recorded under its id, and a redelivered
//! command (a lost ack, a reconnect) is answered again from that record. Hotlists arrive in
//! chunks, each answered on arrival and kept across restarts, so a transfer resumes where the
//! link dropped; the version is imported (atomically, by the store) only when every chunk is
//! here and the SHA-256 of the whole matches.
use crate::store::hotlist::parse_csv;
use crate::store::{HoldRecord, Store, StoreError};
use sha2::{Digest, Sha256};
use trailer_wire::{Downlink, DownlinkAck, HoldCommand};

/// What the link must do besides answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Nothing,
    /// Publish health at once.
    SendHealth,
    /// A picture was queued: send it.
    Pump,
}

pub fn downlink_id(d: &Downlink) -> u64 {
    match d {
        Downlink::Hotlist(c) => c.downlink_id,
        Downlink::Hold { downlink_id, .. }
        | Downlink::AcpAdd { downlink_id, .. }
        | Downlink::Config { downlink_id, .. }
        | Downlink::SendPicture { downlink_id, .. }
        | Downlink::SendHealth { downlink_id } => *downlink_id,
    }
}

/// Applies `d` once, records and queues the answer. Returns the answer and what else to do.
pub fn apply(
    store: &Store,
    trailer: &str,
    d: &Downlink,
    us_o_as_zero: bool,
) -> Result<(DownlinkAck, Follow), StoreError> {
    let id = downlink_id(d);
    if let Some(answer) = store.downlink_answer(id)? {
        store.requeue_downlink_answer(id)?;
        return Ok((answer, Follow::Nothing));
    }
    let (result, follow) = run(store, d, us_o_as_zero)?;
    let answer = DownlinkAck {
        trailer_id: trailer.into(),
        downlink_id: id,
        applied: result.is_ok(),
        reason: Some(match result {
            Ok(done) => done,
            Err(refused) => refused,
        }),
    };
    store.record_downlink_answer(&answer)?;
    Ok((answer, follow))
}

/// `Ok(what was done)` or `Err(why it was refused)`; store errors abort (no answer recorded,
/// so the redelivered command is tried again).
fn run(
    store: &Store,
    d: &Downlink,
    us_o_as_zero: bool,
) -> Result<(Result<String, String>, Follow), StoreError> {
    Ok(match d {
        Downlink::Hotlist(c) => {
            if c.count == 0 || c.index >= c.count {
                return Ok((
                    Err(format!("chunk {} of {} is not a chunk", c.index, c.count)),
                    Follow::Nothing,
                ));
            }
            if let Some(current) = store.hotlist_meta(&c.list_name)?
                && current.version >= c.version
            {
                return Ok((
                    Ok(format!(
                        "hotlist {} version {} is already superseded by version {}",
                        c.list_name, c.version, current.version
                    )),
                    Follow::Nothing,
                ));
            }
            let Some(whole) =
                store.stage_chunk(&c.list_name, c.version, c.index, c.count, &c.bytes)?
            else {
                return Ok((
                    Ok(format!("chunk {} of {} kept", c.index + 1, c.count)),
                    Follow::Nothing,
                ));
            };
            let result = import(store, c, &whole, us_o_as_zero);
            store.drop_chunks(&c.list_name, c.version)?;
            (result?, Follow::Nothing)
        }
        Downlink::Hold {
            command: HoldCommand::Place { hold_id, kind, case_number, read_ids },
            ..
        } => {
            if case_number.trim().is_empty() {
                (Err("a hold needs a case number".into()), Follow::Nothing)
            } else {
                let hold = HoldRecord {
                    kind: *kind,
                    case_number: case_number.clone(),
                    read_ids: read_ids.clone(),
                };
                store.place_hold(*hold_id, &hold)?;
                (Ok(format!("hold {hold_id} placed on {} reads", read_ids.len())), Follow::Nothing)
            }
        }
        Downlink::Hold { command: HoldCommand::Release { hold_id }, .. } => {
            if store.release_hold(*hold_id)? {
                (Ok(format!("hold {hold_id} released")), Follow::Nothing)
            } else {
                (Ok(format!("hold {hold_id} was not held here")), Follow::Nothing)
            }
        }
        Downlink::AcpAdd { hashes, .. } => {
            let destroyed = store.acp_add(hashes)?;
            (
                Ok(format!(
                    "{} ACP digests added; {destroyed} stored reads destroyed",
                    hashes.len()
                )),
                Follow::Nothing,
            )
        }
        Downlink::Config { .. } => (
            Err("remote configuration changes are not accepted by this software version; \
                 change /etc/trailer-alpr/appliance.toml on the trailer"
                .into()),
            Follow::Nothing,
        ),
        Downlink::SendPicture { read_id, kind, .. } => {
            if store.queue_picture(*read_id, *kind)? {
                (Ok(format!("{kind:?} of read {read_id} queued")), Follow::Pump)
            } else {
                (
                    Err(format!("no {kind:?} of read {read_id} here (destroyed or never taken)")),
                    Follow::Nothing,
                )
            }
        }
        Downlink::SendHealth { .. } => (Ok("health sent".into()), Follow::SendHealth),
    })
}

fn import(
    store: &Store,
    c: &trailer_wire::HotlistChunk,
    whole: &[u8],
    us_o_as_zero: bool,
) -> Result<Result<String, String>, StoreError> {
    let digest: [u8; 32] = Sha256::digest(whole).into();
    if digest != c.sha256 {
        return Ok(Err(format!(
            "hotlist {} version {}: the SHA-256 of the {} chunks does not match; send it again",
            c.list_name, c.version, c.count
        )));
    }
    let Ok(text) = std::str::from_utf8(whole) else {
        return Ok(Err(format!("hotlist {} version {} is not UTF-8 text", c.list_name, c.version)));
    };
    let entries = match parse_csv(text, us_o_as_zero) {
        Ok(e) => e,
        Err(e) => return Ok(Err(format!("hotlist {} version {}: {e}", c.list_name, c.version))),
    };
    // The databases the list comes from, as the public log of use names them.
    let mut sources: Vec<&str> = entries.iter().map(|e| e.source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    let source = if sources.is_empty() { c.list_name.clone() } else { sources.join("; ") };
    let meta = store.import_hotlist(&c.list_name, c.version, &source, &entries)?;
    Ok(Ok(format!(
        "hotlist {} version {} imported: {} entries",
        meta.name, meta.version, meta.entries
    )))
}

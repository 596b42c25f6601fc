//! Applying the server's downlinks to the store. No I/O beyond the store: the link decodes a
//! command, calls [`apply`], and queues the answer like any outbox item, so the server learns
//! of every command whether it was applied or refused, and why.
//!
//! Each command is applied at most once: its answer is recorded under its id, and a redelivered
//! command (a lost ack, a reconnect) is answered again from that record. Hotlists arrive in
//! chunks, each answered on arrival and kept across restarts, so a transfer resumes where the
//! link dropped; the version is imported (atomically, by the store) only when every chunk is
//! here and the SHA-256 of the whole matches.
use crate::config::Config;
use crate::store::hotlist::parse_csv;
use crate::store::{HoldRecord, Store, StoreError};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Notify;
use trailer_wire::{Downlink, DownlinkAck, HoldCommand};

/// What the trailer knows about itself for downlinks.
#[derive(Debug, Clone, Default)]
pub struct Remote {
    /// The engine's O/0 rule, for parsing hotlists like reads.
    pub us_o_as_zero: bool,
    /// Where a remote configuration change is written, and what the running configuration
    /// holds; a remote configuration change is refused without them. The file may not exist
    /// yet: the installed configuration (`config_source`) is read-only, and the first change
    /// from afar goes to a writable file of the state directory ([`crate::trial::active`]).
    pub config_file: Option<PathBuf>,
    /// The file the running configuration was read from (kept as `FILE.previous` by a change);
    /// `config_file` itself when not given.
    pub config_source: Option<PathBuf>,
    pub config: Option<Config>,
    /// Raised to stop the appliance so that systemd starts it again on a new configuration.
    pub restart: Option<Arc<Notify>>,
    /// The trailer's certificate and key, for a renewed certificate.
    pub identity: Option<super::renew::Identity>,
    /// The configuration file whose trial ends when the daemon is ready ([`crate::trial`]).
    pub on_ready: Option<PathBuf>,
}

/// What the link must do besides answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Nothing,
    /// Publish health at once.
    SendHealth,
    /// A picture was queued: send it.
    Pump,
    /// The configuration file changed: stop, so systemd restarts the appliance on it.
    Restart,
    /// The certificate was renewed: connect again with it.
    Reconnect,
}

pub fn downlink_id(d: &Downlink) -> u64 {
    match d {
        Downlink::Hotlist(c) => c.downlink_id,
        Downlink::Hold { downlink_id, .. }
        | Downlink::AcpAdd { downlink_id, .. }
        | Downlink::Config { downlink_id, .. }
        | Downlink::SendPicture { downlink_id, .. }
        | Downlink::Certificate { downlink_id, .. }
        | Downlink::Suspension { downlink_id, .. }
        | Downlink::HotlistWithdraw { downlink_id, .. }
        | Downlink::SendHealth { downlink_id } => *downlink_id,
    }
}

/// Applies `d` once, records and queues the answer. Returns the answer and what else to do.
pub fn apply(
    store: &Store,
    trailer: &str,
    d: &Downlink,
    remote: &Remote,
) -> Result<(DownlinkAck, Follow), StoreError> {
    let id = downlink_id(d);
    if let Some(answer) = store.downlink_answer(id)? {
        store.requeue_downlink_answer(id)?;
        return Ok((answer, Follow::Nothing));
    }
    let (result, follow) = run(store, trailer, d, remote)?;
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
    trailer: &str,
    d: &Downlink,
    remote: &Remote,
) -> Result<(Result<String, String>, Follow), StoreError> {
    let us_o_as_zero = remote.us_o_as_zero;
    Ok(match d {
        Downlink::Hotlist(c) => {
            if c.count == 0 || c.index >= c.count {
                return Ok((
                    Err(format!("chunk {} of {} is not a chunk", c.index, c.count)),
                    Follow::Nothing,
                ));
            }
            if let Some(through) = store.hotlist_withdrawn(&c.list_name)?
                && through >= c.version
            {
                return Ok((
                    Err(format!("hotlist {} version {} was withdrawn", c.list_name, c.version)),
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
        Downlink::Hold {
            command: HoldCommand::PlacePlate { hold_id, kind, case_number, plates, from_ms, to_ms },
            ..
        } => {
            if case_number.trim().is_empty() || plates.is_empty() || from_ms >= to_ms {
                (
                    Err("a hold on a plate needs a case number, the plate and a period".into()),
                    Follow::Nothing,
                )
            } else {
                let held =
                    store.hold_plate(*hold_id, *kind, case_number, plates, (*from_ms, *to_ms))?;
                (Ok(format!("hold {hold_id} placed on {held} reads of the plate")), Follow::Nothing)
            }
        }
        Downlink::Hold { command: HoldCommand::Release { hold_id }, .. } => {
            if store.release_hold(*hold_id)? {
                (Ok(format!("hold {hold_id} released")), Follow::Nothing)
            } else {
                (Ok(format!("hold {hold_id} was not held here")), Follow::Nothing)
            }
        }
        Downlink::AcpAdd { key_fingerprint, hashes, probes, .. } => {
            let result = store.acp_add(*key_fingerprint, hashes, probes)?.map(|destroyed| {
                format!("{} ACP digests added; {destroyed} stored reads destroyed", hashes.len())
            });
            // Health carries the list's size and the key: the server sees the change at once.
            (result, Follow::SendHealth)
        }
        Downlink::Config { downlink_id, toml, signature } => {
            match change_config(remote, trailer, *downlink_id, toml, signature) {
                Ok(Some(file)) => (
                    Ok(format!(
                        "configuration saved to {}; restarting to apply it",
                        file.display()
                    )),
                    Follow::Restart,
                ),
                Ok(None) => (Ok("configuration unchanged".into()), Follow::Nothing),
                Err(refused) => (Err(refused), Follow::Nothing),
            }
        }
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
        Downlink::HotlistWithdraw { list_name, through_version, .. } => {
            let was = store.withdraw_hotlist(list_name, *through_version)?;
            let done = if was {
                format!("hotlist {list_name} withdrawn: reads are matched against it no more")
            } else {
                format!("hotlist {list_name} was not loaded here; no version of it will be")
            };
            (Ok(done), Follow::Nothing)
        }
        // The daemon sees the state in the store within a second, closes the period of active
        // use (the public log shows the gap, with its reason) and stops analysing frames.
        Downlink::Suspension { order, in_force: true, .. } => {
            store.set_suspension(Some(order))?;
            (Ok(format!("collection stopped under suspension order {order}")), Follow::SendHealth)
        }
        Downlink::Suspension { order, in_force: false, .. } => {
            store.set_suspension(None)?;
            (Ok(format!("suspension order {order} lifted; collection resumes")), Follow::SendHealth)
        }
        Downlink::Certificate { chain_pem, .. } => match &remote.identity {
            None => (Err("this trailer has no certificate files to renew".into()), Follow::Nothing),
            Some(id) => match id.install(trailer, chain_pem, store.now()) {
                Ok(done) => (Ok(done), Follow::Reconnect),
                Err(refused) => (Err(refused), Follow::Nothing),
            },
        },
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

/// Checks a new configuration (the agency's signature first) and writes it over the running one
/// (atomically, the old one kept as `FILE.previous`), on trial until the daemon starts on it
/// ([`crate::trial`]). `Ok(None)` if it changes nothing; `Err(why not)` if refused.
fn change_config(
    remote: &Remote,
    trailer: &str,
    downlink_id: u64,
    text: &str,
    signature: &[u8],
) -> Result<Option<PathBuf>, String> {
    let (Some(file), Some(current)) = (&remote.config_file, &remote.config) else {
        return Err("this appliance does not run from a configuration file".into());
    };
    let Some(key_file) = &current.sync.config_key_file else {
        return Err("refused: no configuration key here (sync.config_key_file)".into());
    };
    let public = read_public_key(key_file)?;
    if !trailer_wire::signed::verify(&public, trailer, downlink_id, text, signature) {
        return Err("refused: the configuration does not carry the agency's signature".into());
    }
    let new = Config::parse(text).map_err(|e| format!("refused: {e}"))?;
    if let Some(why) = current.remote_change_refused(&new) {
        return Err(format!("refused: {why}"));
    }
    if new == *current {
        return Ok(None);
    }
    let source = remote.config_source.as_deref().unwrap_or(file);
    replace_file(file, source, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    crate::trial::put_on_trial(file).map_err(|e| format!("cannot mark it on trial: {e}"))?;
    Ok(Some(file.clone()))
}

/// The agency's configuration key: 64 hex digits (or 32 bytes).
fn read_public_key(path: &Path) -> Result<[u8; 32], String> {
    crate::store::seal::read_key(path)
        .map_err(|e| format!("refused: configuration key {}: {e}", path.display()))
}

/// Writes `bytes` to `file` through a synced temporary file and a rename; the running
/// configuration (`source`, which may be another file) stays as `FILE.previous`. A power cut
/// leaves the old file or the new one, never half of one.
fn replace_file(file: &Path, source: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{name}.new"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::copy(source, dir.join(format!("{name}.previous")))?;
    std::fs::rename(&tmp, file)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{DAY_MS, ManualClock};
    use trailer_wire::{HoldKind, HotlistChunk};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 60, Arc::new(ManualClock::new(DAY_MS))).expect("open");
        (dir, store)
    }

    /// A redelivered downlink is answered from the record, not applied again.
    #[test]
    fn a_downlink_is_applied_once() {
        let (_dir, store) = store();
        let hold = Downlink::Hold {
            downlink_id: 5,
            command: HoldCommand::Place {
                hold_id: 1,
                kind: HoldKind::ActiveInvestigation,
                case_number: "24-1".into(),
                read_ids: vec![42],
            },
        };
        let remote = Remote::default();
        let (first, _) = apply(&store, "t1", &hold, &remote).expect("apply");
        assert!(first.applied && store.is_held(42).expect("held"));
        store.release_hold(1).expect("release");
        let (again, _) = apply(&store, "t1", &hold, &remote).expect("apply again");
        assert_eq!(again, first);
        assert!(!store.is_held(42).expect("held"), "not placed a second time");
    }

    /// A suspension order is kept by the store (across a restart) until its lift arrives.
    #[test]
    fn a_suspension_order_is_kept_until_lifted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock::new(DAY_MS));
        let remote = Remote::default();
        let order = |downlink_id, in_force| Downlink::Suspension {
            downlink_id,
            order: "DPS-2026-7".into(),
            in_force,
        };
        {
            let store = Store::open(dir.path(), 60, clock.clone()).expect("open");
            assert_eq!(store.suspension().expect("state"), None);
            let (a, follow) = apply(&store, "t1", &order(1, true), &remote).expect("apply");
            assert!(a.applied && a.reason.as_deref().is_some_and(|r| r.contains("stopped")));
            assert_eq!(follow, Follow::SendHealth);
        }
        let store = crate::store::tests::reopen(dir.path(), 60, clock);
        assert_eq!(store.suspension().expect("state").as_deref(), Some("DPS-2026-7"));
        apply(&store, "t1", &order(2, false), &remote).expect("lift");
        assert_eq!(store.suspension().expect("state"), None);
    }

    /// Chunks whose whole does not match the digest are refused and nothing is imported.
    #[test]
    fn a_hotlist_with_the_wrong_digest_is_refused() {
        let (_dir, store) = store();
        let chunk = |downlink_id, index, bytes: &[u8]| {
            Downlink::Hotlist(HotlistChunk {
                downlink_id,
                list_name: "mn-state".into(),
                version: 1,
                index,
                count: 2,
                sha256: [7; 32],
                bytes: bytes.to_vec(),
            })
        };
        let remote = Remote::default();
        let (a, _) = apply(&store, "t1", &chunk(1, 0, b"ABC123,MN,"), &remote).expect("chunk");
        assert!(a.applied, "{a:?}");
        let (b, _) =
            apply(&store, "t1", &chunk(2, 1, b"stolen vehicle,MN BCA\n"), &remote).expect("chunk");
        assert!(!b.applied && b.reason.as_deref().is_some_and(|r| r.contains("SHA-256")), "{b:?}");
        assert!(store.hotlist_meta("mn-state").expect("meta").is_none());
    }

    /// A withdrawn list is matched no more, survives no restart, and a chunk of a withdrawn
    /// version still on its way cannot bring it back; a newer version can.
    #[test]
    fn a_withdrawn_hotlist_stays_withdrawn() {
        use sha2::Digest;
        let (_dir, store) = store();
        let remote = Remote::default();
        let csv = b"INV123,MN,active investigation,agency,C-9\n".to_vec();
        let whole = |downlink_id, version| {
            Downlink::Hotlist(HotlistChunk {
                downlink_id,
                list_name: "case-9".into(),
                version,
                index: 0,
                count: 1,
                sha256: sha2::Sha256::digest(&csv).into(),
                bytes: csv.clone(),
            })
        };
        let (a, _) = apply(&store, "t1", &whole(1, 3), &remote).expect("import");
        assert!(a.applied, "{a:?}");
        assert_eq!(store.match_plate("INV123", false).expect("match").len(), 1);
        let withdraw = Downlink::HotlistWithdraw {
            downlink_id: 2,
            list_name: "case-9".into(),
            through_version: 4,
        };
        let (w, _) = apply(&store, "t1", &withdraw, &remote).expect("withdraw");
        assert!(w.applied, "{w:?}");
        assert!(store.match_plate("INV123", false).expect("match").is_empty());
        assert!(store.hotlists().expect("lists").is_empty());
        let (late, _) = apply(&store, "t1", &whole(3, 4), &remote).expect("late chunk");
        assert!(!late.applied && late.reason.as_deref().is_some_and(|r| r.contains("withdrawn")));
        assert!(store.match_plate("INV123", false).expect("match").is_empty());
        let (newer, _) = apply(&store, "t1", &whole(4, 5), &remote).expect("newer");
        assert!(newer.applied, "{newer:?}");
        assert_eq!(store.match_plate("INV123", false).expect("match").len(), 1);
    }

    /// A hold on a plate and a period holds the trailer's own reads of it, and only those.
    #[test]
    fn a_hold_on_a_plate_holds_its_reads_of_the_period() {
        let (_dir, store) = store();
        let mut ids = Vec::new();
        for plate in ["HLD123", "OTHER1", "HLD123"] {
            let mut meta = crate::store::sample_read(plate);
            (meta.first_seen, meta.best_seen) = (DAY_MS - 500, DAY_MS - 100);
            match store.insert_read(meta, crate::store::NewPictures::default()).expect("read") {
                crate::store::Inserted::Stored(id) => ids.push(id),
                other => panic!("{other:?}"),
            }
        }
        let first_seen = store.read(ids[0]).expect("read").expect("some").meta.first_seen;
        let hold = Downlink::Hold {
            downlink_id: 9,
            command: HoldCommand::PlacePlate {
                hold_id: 4,
                kind: HoldKind::Exculpatory,
                case_number: "24-CR-881".into(),
                plates: vec!["HLD123".into()],
                from_ms: first_seen - 1000,
                to_ms: first_seen + 1000,
            },
        };
        let (a, _) = apply(&store, "t1", &hold, &Remote::default()).expect("apply");
        assert!(a.applied && a.reason.as_deref().is_some_and(|r| r.contains("2 reads")), "{a:?}");
        let held: Vec<bool> = ids.iter().map(|id| store.is_held(*id).expect("held")).collect();
        assert_eq!(held, [true, false, true]);
    }
}

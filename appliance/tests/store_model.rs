//! Property test: random sequences of store, ack, hold, release, clock, purge and ACP operations
//! against a simple in-memory model of what the law and the outbox require.
use appliance::clock::{Clock, DAY_MS, ManualClock};
use appliance::store::acp::{acp_digest, acp_probe, key_fingerprint};
use appliance::store::{HoldRecord, Inserted, NewPictures, Store, sample_read};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use trailer_wire::{AckRef, HoldKind};

const KEY: &[u8] = b"model-acp-key";
const RETENTION_DAYS: u32 = 3;
const PLATES: [&str; 5] = ["AAA111", "BBB222", "CCC333", "DDD444", "EEE555"];

#[derive(Debug, Clone)]
enum Op {
    Store(usize),
    Ack(usize),
    Hold(usize),
    Release(usize),
    AdvanceHours(u32),
    Purge,
    Acp(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PLATES.len()).prop_map(Op::Store),
        2 => any::<usize>().prop_map(Op::Ack),
        1 => any::<usize>().prop_map(Op::Hold),
        1 => any::<usize>().prop_map(Op::Release),
        2 => (1u32..60).prop_map(Op::AdvanceHours),
        2 => Just(Op::Purge),
        1 => (0..PLATES.len()).prop_map(Op::Acp),
    ]
}

#[derive(Debug)]
struct ModelRead {
    plate: &'static str,
    collected: i64,
    synced: bool,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000 * DAY_MS);
        let store = Store::open(dir.path(), RETENTION_DAYS, Arc::new(clock.clone())).expect("open")
            .with_acp_key(KEY.to_vec());
        let mut model: BTreeMap<u64, ModelRead> = BTreeMap::new();
        let mut holds: BTreeMap<u64, u64> = BTreeMap::new(); // hold id -> read id
        let mut acp: BTreeSet<&str> = BTreeSet::new();
        let mut next_hold = 1;
        let held = |holds: &BTreeMap<u64, u64>, id: u64| holds.values().any(|&r| r == id);
        for op in ops {
            match op {
                Op::Store(p) => {
                    let pics = NewPictures { plate_crop: Some(vec![1; 100]), context: Some(vec![2; 300]) };
                    match store.insert_read(sample_read(PLATES[p]), pics).expect("insert") {
                        Inserted::Stored(id) => {
                            prop_assert!(!acp.contains(PLATES[p]), "an ACP plate was written");
                            model.insert(id, ModelRead { plate: PLATES[p], collected: clock.now_ms(), synced: false });
                        }
                        Inserted::DestroyedAcp => prop_assert!(acp.contains(PLATES[p])),
                    }
                }
                Op::Ack(i) if !model.is_empty() => {
                    let id = *model.keys().nth(i % model.len()).expect("key");
                    store.ack(&[AckRef::Read(id)]).expect("ack");
                    if let Some(r) = model.get_mut(&id) { r.synced = true; }
                }
                Op::Hold(i) if !model.is_empty() => {
                    let id = *model.keys().nth(i % model.len()).expect("key");
                    let rec = HoldRecord { kind: HoldKind::ActiveInvestigation, case_number: "C".into(), read_ids: vec![id] };
                    store.place_hold(next_hold, &rec).expect("hold");
                    holds.insert(next_hold, id);
                    next_hold += 1;
                }
                Op::Release(i) if !holds.is_empty() => {
                    let h = *holds.keys().nth(i % holds.len()).expect("hold");
                    prop_assert!(store.release_hold(h).expect("release"));
                    holds.remove(&h);
                }
                Op::AdvanceHours(h) => clock.advance(i64::from(h) * 3_600_000),
                Op::Purge => {
                    let cutoff = clock.now_ms() - i64::from(RETENTION_DAYS) * DAY_MS;
                    let expect: usize = model.iter().filter(|(id, r)| r.collected < cutoff && !held(&holds, **id)).count();
                    prop_assert_eq!(store.purge().expect("purge"), expect);
                    let keep: BTreeMap<u64, ModelRead> = std::mem::take(&mut model)
                        .into_iter()
                        .filter(|(id, r)| r.collected >= cutoff || held(&holds, *id))
                        .collect();
                    model = keep;
                }
                Op::Acp(p) => {
                    acp.insert(PLATES[p]);
                    let expect = model.iter().filter(|(id, r)| r.plate == PLATES[p] && !held(&holds, **id)).count();
                    // Found by the fast digest (an addition) or the slow one (the list sent again).
                    let probes = if p % 2 == 0 { vec![acp_probe(KEY, PLATES[p])] } else { vec![] };
                    let done = store.acp_add(key_fingerprint(KEY), &[acp_digest(KEY, PLATES[p])], &probes);
                    prop_assert_eq!(done.expect("store").expect("applied"), expect);
                    let keep: BTreeMap<u64, ModelRead> = std::mem::take(&mut model)
                        .into_iter()
                        .filter(|(id, r)| r.plate != PLATES[p] || held(&holds, *id))
                        .collect();
                    model = keep;
                }
                _ => {}
            }
            // The store holds exactly the model's reads, with their sync state, and its outbox
            // holds exactly the unsynced ones.
            let stored: BTreeMap<u64, (String, bool)> = store.reads().expect("reads").into_iter()
                .map(|r| (r.meta.read_id, (r.meta.plate, r.synced))).collect();
            let expected: BTreeMap<u64, (String, bool)> = model.iter()
                .map(|(id, r)| (*id, (r.plate.to_string(), r.synced))).collect();
            prop_assert_eq!(&stored, &expected);
            let pending: BTreeSet<u64> = store.pending(usize::MAX, &|_| false).expect("pending").into_iter()
                .filter_map(|r| if let AckRef::Read(id) = r { Some(id) } else { None }).collect();
            let unsynced: BTreeSet<u64> = model.iter().filter(|(_, r)| !r.synced).map(|(id, _)| *id).collect();
            prop_assert_eq!(pending, unsynced);
        }
        prop_assert!(store.check().expect("check").clean());
    }
}

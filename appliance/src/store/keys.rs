//! Key encodings of the store's trees (the table in the module doc describes them).
use trailer_wire::{AckRef, PictureKind};

/// Read ids carry their collection day in the top 24 bits, so the day partition that holds a
/// read is known from its id alone; the low 40 bits come from sled's id generator (unique and
/// increasing across restarts; 2^40 ids outlast the box).
pub const DAY_SHIFT: u32 = 40;
const LOW_MASK: u64 = (1 << DAY_SHIFT) - 1;

pub fn read_id(day: u32, generated: u64) -> u64 {
    (u64::from(day) << DAY_SHIFT) | (generated & LOW_MASK)
}

pub fn day_of(read_id: u64) -> u32 {
    (read_id >> DAY_SHIFT) as u32
}

/// The first and last read id a day can hold.
pub fn day_ids(day: u32) -> (u64, u64) {
    (read_id(day, 0), read_id(day, LOW_MASK))
}

/// The key of a day's read count in its reads tree (u64 BE), kept with every change so
/// retention and the start-up check never count a day by scanning it. It sorts after every
/// read id.
pub const COUNT: &[u8] = &[0xff, 0xff];

/// Outbox priorities: lower goes first.
pub fn priority(r: &AckRef) -> u8 {
    match r {
        AckRef::Alert(_) => 0,
        AckRef::ActiveUse(_) | AckRef::Deployment(_) | AckRef::Downlink(_) => 1,
        AckRef::Read(_) => 2,
        AckRef::Picture(_, PictureKind::PlateCrop) => 3,
        AckRef::Picture(_, PictureKind::Context) => 4,
    }
}

/// The day partition an outbox item lives in (`None`: the global outbox).
pub fn partition_of(r: &AckRef) -> Option<u32> {
    match *r {
        AckRef::Read(id) | AckRef::Picture(id, _) => Some(day_of(id)),
        _ => None,
    }
}

pub fn kind_byte(k: PictureKind) -> u8 {
    match k {
        PictureKind::PlateCrop => 0,
        PictureKind::Context => 1,
    }
}

pub fn outbox_key(r: &AckRef) -> [u8; 11] {
    let (tag, id, sub) = match *r {
        AckRef::Read(id) => (1, id, 0),
        AckRef::Picture(id, k) => (2, id, kind_byte(k)),
        AckRef::Alert(id) => (3, id, 0),
        AckRef::ActiveUse(id) => (4, id, 0),
        AckRef::Deployment(id) => (5, id, 0),
        AckRef::Downlink(id) => (6, id, 0),
    };
    let mut k = [0u8; 11];
    k[0] = priority(r);
    k[1] = tag;
    k[2..10].copy_from_slice(&id.to_be_bytes());
    k[10] = sub;
    k
}

pub fn parse_outbox_key(k: &[u8]) -> Option<AckRef> {
    if k.len() != 11 {
        return None;
    }
    let id = u64::from_be_bytes(k[2..10].try_into().ok()?);
    Some(match (k[1], k[10]) {
        (1, _) => AckRef::Read(id),
        (2, 0) => AckRef::Picture(id, PictureKind::PlateCrop),
        (2, 1) => AckRef::Picture(id, PictureKind::Context),
        (3, _) => AckRef::Alert(id),
        (4, _) => AckRef::ActiveUse(id),
        (5, _) => AckRef::Deployment(id),
        (6, _) => AckRef::Downlink(id),
        _ => return None,
    })
}

pub fn read_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

pub fn picture_key(id: u64, kind: PictureKind) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[..8].copy_from_slice(&id.to_be_bytes());
    k[8] = kind_byte(kind);
    k
}

/// The read id at the start of a reads or pictures key.
pub fn id_in(k: &[u8]) -> Option<u64> {
    k.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
}

pub fn held_key(read_id: u64, hold_id: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&read_id.to_be_bytes());
    k[8..].copy_from_slice(&hold_id.to_be_bytes());
    k
}

pub fn be_u64(v: &[u8]) -> Option<u64> {
    v.try_into().ok().map(u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_day_and_keys_round_trip() {
        let id = read_id(20_412, 1_234_567);
        assert_eq!(day_of(id), 20_412);
        let (lo, hi) = day_ids(20_412);
        assert!(lo <= id && id <= hi && hi < day_ids(20_413).0);
        for r in [
            AckRef::Read(id),
            AckRef::Picture(id, PictureKind::Context),
            AckRef::Alert(5),
            AckRef::ActiveUse(6),
        ] {
            assert_eq!(parse_outbox_key(&outbox_key(&r)), Some(r));
        }
        assert_eq!(id_in(&picture_key(id, PictureKind::PlateCrop)), Some(id));
        assert!(read_key(day_ids(1_000_000).1).as_slice() < COUNT, "counts sort after reads");
        assert_eq!(partition_of(&AckRef::Picture(id, PictureKind::PlateCrop)), Some(20_412));
        assert_eq!(partition_of(&AckRef::Alert(id)), None);
    }
}

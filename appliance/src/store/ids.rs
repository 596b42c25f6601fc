//! Record ids that are unique for the life of a trailer id, whatever happens to its store.
//!
//! Stores are replaced in the field (a failed disk swapped, a re-flash, a spare unit taking over
//! a trailer's id) and restored from older copies. The server keeps everything it received under
//! `(trailer id, record id)`, so an id a new or restored store hands out again would collide with
//! a record of an earlier life. A counter kept in the store cannot prevent that: a new store
//! starts it again, and a restored copy turns it back. The ids are therefore made from the time
//! they were issued and random bits, as UUIDv7 does in 128 bits:
//!
//! ```text
//! read id    | day (24) | 1 | ms of the day (27) | random (12) |
//! other ids  | ms since 1970 (48)                 | random (16) |
//! ```
//!
//! - A store's later life issues its ids at later times than its earlier life did, so a new or
//!   restored store never reissues an id the server holds while the clock runs forward. The
//!   random bits separate two stores issuing at the same millisecond (a spare unit running beside
//!   the original under the same id) and a clock set back into a millisecond already used: two
//!   records then collide only if 12 (reads) or 16 random bits also match, and the server,
//!   which compares the content of every record it already holds, reports such a collision
//!   rather than dropping it.
//! - Within one store, ids only grow: an id at or below the last one issued becomes the last one
//!   plus one. The last ones are read back from the trees at open (their keys sort by id), so a
//!   clock that steps back across a restart does not reissue either.
//! - The bit after the day marks the scheme: read ids of the counter-based scheme before it
//!   (sled's `generate_id`, far below 2^39) can never equal one of these; the other ids of that
//!   scheme are below 2^40, these are above 2^56.
//!
//! The read id keeps its collection day in its top 24 bits ([`super::keys::day_of`]), as before.
use super::keys::{DAY_SHIFT, day_of, read_id};
use crate::clock::{DAY_MS, UnixMs};
use std::sync::{Mutex, PoisonError};

/// Marks a read id of this scheme (bit 39 of the part below the day).
const TIMED: u64 = 1 << (DAY_SHIFT - 1);
const READ_RANDOM_BITS: u32 = 12;
const OTHER_RANDOM_BITS: u32 = 16;

/// The read-id part below the day for a time and random bits.
fn read_low(ms_of_day: u64, random: u64) -> u64 {
    TIMED | (ms_of_day << READ_RANDOM_BITS) | (random & ((1 << READ_RANDOM_BITS) - 1))
}

/// Issues ids; one per store (the store clones share it).
#[derive(Debug, Default)]
pub struct Ids {
    last_read: Mutex<Reads>,
    last_other: Mutex<u64>,
}

#[derive(Debug, Default)]
struct Reads {
    /// The largest read id issued or held.
    last: u64,
    /// The last read id issued while the clock was behind `last`'s day.
    behind: u64,
}

impl Ids {
    /// Starts from the largest ids the store already holds.
    pub fn starting_after(last_read: u64, last_other: u64) -> Ids {
        Ids {
            last_read: Mutex::new(Reads { last: last_read, behind: 0 }),
            last_other: Mutex::new(last_other),
        }
    }

    /// A new read id collected at `now`. `taken` says whether an id is already used in its day
    /// (asked only when the clock went back into an earlier day than the last read's).
    pub fn next_read(&self, now: UnixMs, random: u64, taken: &dyn Fn(u64) -> bool) -> u64 {
        let now = now.max(0);
        let day = (now / DAY_MS) as u32;
        let ms_of_day = (now % DAY_MS) as u64;
        let mut reads = self.last_read.lock().unwrap_or_else(PoisonError::into_inner);
        let mut id = read_id(day, read_low(ms_of_day, random));
        if day >= day_of(reads.last) {
            if id <= reads.last {
                id = reads.last + 1;
            }
            reads.last = id;
        } else {
            // The clock is behind the last read: ids of this day may have been issued already.
            if day_of(reads.behind) == day && id <= reads.behind {
                id = reads.behind + 1;
            }
            while taken(id) {
                id += 1;
            }
            reads.behind = id;
        }
        id
    }

    /// A new id for an alert, a period of use or a deployment event, issued at `now`.
    pub fn next_other(&self, now: UnixMs, random: u64) -> u64 {
        let mut last = self.last_other.lock().unwrap_or_else(PoisonError::into_inner);
        let stamp = (now.max(0) as u64) << OTHER_RANDOM_BITS;
        let mut id = stamp | (random & ((1 << OTHER_RANDOM_BITS) - 1));
        if id <= *last {
            id = *last + 1;
        }
        *last = id;
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const T: UnixMs = 20_400 * DAY_MS + 12 * 3_600_000;

    #[test]
    fn read_ids_keep_their_day_and_grow_within_a_store() {
        let ids = Ids::default();
        let a = ids.next_read(T, 4095, &|_| false);
        let b = ids.next_read(T, 0, &|_| false);
        let c = ids.next_read(T + 1, 0, &|_| false);
        assert_eq!(day_of(a), 20_400);
        assert!(a < b && b < c, "{a} {b} {c}: the same millisecond still grows");
        assert!(a & TIMED != 0, "marked as the timed scheme");
        // A store of the counter scheme (ids from sled's generate_id) never meets these.
        assert!(read_id(20_400, 10_000_000) < read_id(20_400, read_low(0, 0)));
        let other = ids.next_other(T, 0);
        assert!(other > 1 << 56, "above every counter-issued id");
        assert!(ids.next_other(T, 0) > other);
    }

    /// A new store (or a restored copy) issuing later than the earlier life never repeats one of
    /// its ids, whatever its counters say: the clock moved on.
    #[test]
    fn a_later_life_of_the_store_never_repeats_an_id() {
        let first = Ids::default();
        let mut earlier = HashSet::new();
        for i in 0..2_000 {
            earlier.insert(first.next_read(T + i, rand::random(), &|_| false));
            earlier.insert(first.next_other(T + i, rand::random()));
        }
        let restored = Ids::starting_after(0, 0);
        for i in 0..2_000 {
            assert!(!earlier.contains(&restored.next_read(T + 2_000 + i, 0, &|_| false)));
            assert!(!earlier.contains(&restored.next_other(T + 2_000 + i, 0)));
        }
    }

    /// A clock set back: within the day of the last read ids continue from it; into an earlier
    /// day, ids already in use there are skipped.
    #[test]
    fn a_clock_set_back_does_not_reissue_within_the_store() {
        let ids = Ids::default();
        let last = ids.next_read(T, 7, &|_| false);
        assert_eq!(ids.next_read(T - 60_000, 7, &|_| false), last + 1);
        let yesterday = T - DAY_MS;
        let used = read_id(20_399, read_low((yesterday % DAY_MS) as u64, 7));
        let id = ids.next_read(yesterday, 7, &|id| id == used);
        assert_eq!(id, used + 1, "the used id is skipped");
        let o = ids.next_other(T, 1);
        assert_eq!(ids.next_other(T - 3_600_000, 1), o + 1);
    }
}

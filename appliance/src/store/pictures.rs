//! Where pictures live: append-only segment files beside sled, one per collection day.
//!
//! Measured (see `make bench-store`): pictures inside sled cost about 2-3x their size on disk
//! (sled's log-structured segments and their garbage), while plain files cost their size rounded
//! to 4 KiB blocks. Per-day segments keep that exactness and make retention cheap: when every
//! read of a day is gone the whole file is unlinked (one syscall for a day of pictures), and a
//! single picture dropped earlier (quota, or a held day) has its bytes freed at once by punching
//! a hole in the file (`fallocate(PUNCH_HOLE)`), so disk use follows what the store holds.
//!
//! Durability: a picture is appended and the segment `fdatasync`ed before the read that points
//! to it is committed in sled. A crash in between leaves unreferenced bytes in the segment,
//! never a read without its picture.
use super::seal::Seal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where one picture's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PictureRef {
    pub day: u32,
    pub offset: u64,
    pub len: u32,
    /// FNV-1a of the bytes: a damaged segment is detected on read, not served.
    pub checksum: u64,
}

pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[derive(Debug)]
pub struct PictureLog {
    dir: PathBuf,
    /// Open segments by day (appends go to the collection day's segment).
    open: Mutex<HashMap<u32, File>>,
    /// Each picture is sealed on its own ([`super::seal`]): a segment holds no JPEG in clear.
    seal: Arc<Seal>,
}

/// The associated data of a sealed picture.
const TREE: &str = "picture";

impl PictureLog {
    pub fn open(dir: &Path, seal: Arc<Seal>) -> std::io::Result<PictureLog> {
        std::fs::create_dir_all(dir)?;
        Ok(PictureLog { dir: dir.to_path_buf(), open: Mutex::new(HashMap::new()), seal })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, day: u32) -> PathBuf {
        self.dir.join(format!("day-{day:08}.seg"))
    }

    fn with_segment<T>(
        &self,
        day: u32,
        f: impl FnOnce(&mut File) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        let mut open =
            self.open.lock().map_err(|_| std::io::Error::other("picture log lock poisoned"))?;
        if !open.contains_key(&day) {
            // Keep few handles: a trailer appends to today's segment only.
            if open.len() >= 4 {
                open.clear();
            }
            let f = OpenOptions::new().create(true).read(true).append(true).open(self.path(day))?;
            open.insert(day, f);
        }
        let file = open.get_mut(&day).ok_or_else(|| std::io::Error::other("segment vanished"))?;
        f(file)
    }

    /// Appends pictures to the day's segment (not yet durable: call [`PictureLog::sync`]).
    pub fn append(&self, day: u32, picture: &[u8]) -> std::io::Result<PictureRef> {
        let bytes = &self.seal.seal(TREE, picture);
        self.with_segment(day, |f| {
            let offset = f.seek(SeekFrom::End(0))?;
            f.write_all(bytes)?;
            Ok(PictureRef { day, offset, len: bytes.len() as u32, checksum: checksum(bytes) })
        })
    }

    /// Makes every append to `day` durable.
    pub fn sync(&self, day: u32) -> std::io::Result<()> {
        self.with_segment(day, |f| f.sync_data())
    }

    pub fn read(&self, r: &PictureRef) -> std::io::Result<Vec<u8>> {
        let f = File::open(self.path(r.day))?;
        let mut buf = vec![0u8; r.len as usize];
        f.read_exact_at(&mut buf, r.offset)?;
        if checksum(&buf) != r.checksum {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "picture checksum mismatch",
            ));
        }
        self.seal.open(TREE, &buf).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "picture does not open with the store key",
            )
        })
    }

    /// Frees one picture's bytes now (the file keeps its size; the blocks go back to the disk).
    pub fn punch(&self, r: &PictureRef) -> std::io::Result<()> {
        let f = match OpenOptions::new().write(true).open(self.path(r.day)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        use nix::fcntl::{FallocateFlags, fallocate};
        let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
        match fallocate(&f, flags, r.offset as i64, i64::from(r.len)) {
            Ok(()) => Ok(()),
            // A filesystem without hole punching frees the bytes when the day's file goes.
            Err(nix::errno::Errno::EOPNOTSUPP) => Ok(()),
            Err(e) => Err(std::io::Error::from(e)),
        }
    }

    /// Removes a whole day's segment.
    pub fn remove_day(&self, day: u32) -> std::io::Result<()> {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&day);
        }
        match std::fs::remove_file(self.path(day)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Days that have a segment file.
    pub fn days(&self) -> std::io::Result<Vec<u32>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let name = e?.file_name();
            let name = name.to_string_lossy();
            if let Some(d) = name
                .strip_prefix("day-")
                .and_then(|s| s.strip_suffix(".seg"))
                .and_then(|s| s.parse().ok())
            {
                out.push(d);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Bytes the segments really occupy on disk (allocated blocks, holes excluded).
    pub fn disk_bytes(&self) -> std::io::Result<u64> {
        let mut total = 0;
        for e in std::fs::read_dir(&self.dir)? {
            total += e?.metadata()?.blocks() * 512;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_punch_and_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PictureLog::open(dir.path(), Arc::new(Seal::none())).expect("open");
        let a = log.append(5, &vec![1u8; 64 * 1024]).expect("append");
        let b = log.append(5, b"second").expect("append");
        log.sync(5).expect("sync");
        assert_eq!(b.offset, 64 * 1024);
        assert_eq!(log.read(&b).expect("read"), b"second");
        let before = log.disk_bytes().expect("du");
        log.punch(&a).expect("punch");
        assert!(log.disk_bytes().expect("du") < before, "punching frees blocks");
        assert_eq!(log.read(&b).expect("read"), b"second", "other pictures untouched");
        assert!(log.read(&a).is_err(), "a punched picture fails its checksum");
        assert_eq!(log.days().expect("days"), vec![5]);
        log.remove_day(5).expect("remove");
        assert!(log.days().expect("days").is_empty());
    }
}

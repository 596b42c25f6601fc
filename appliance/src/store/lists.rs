//! The hotlists the trailer matches reads against: each list's current version is one
//! [`Snapshot`] file under `hotlists/`, named by list and version, loaded at open and held in
//! memory. The `hotlist_meta` tree says which version is current; a switch is: write the new
//! file (synced, then renamed into place), commit the meta record, drop the old file. A crash
//! at any point leaves either version whole, and files no meta record names are removed at open.
use super::hotlist::{self, HotEntry, HotlistError, ListMeta, Snapshot};
use super::seal::Seal;
use super::{Store, StoreError, decode, encode};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

/// The loaded lists, by name. The one owner of the in-memory snapshots.
#[derive(Debug)]
pub struct Lists {
    dir: PathBuf,
    loaded: RwLock<BTreeMap<String, Arc<Snapshot>>>,
    /// A list's file is sealed whole (it is a list of plates).
    seal: Arc<Seal>,
}

/// The associated data of a sealed hotlist file.
const FILE: &str = "hotlist-file";

/// Default-tree key prefix: `withdrawn-hotlist/NAME` → the newest withdrawn version (u64 BE).
const WITHDRAWN: &[u8] = b"withdrawn-hotlist/";

fn file_name(name: &str, version: u64) -> String {
    format!("{name}.{version:020}.hl")
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl Lists {
    /// Loads the current version of every list named in `meta`. A missing or damaged file is
    /// logged and its list left out (the server resends it), never a failed start.
    pub fn open(dir: &Path, meta: &sled::Tree, seal: Arc<Seal>) -> Result<Lists, StoreError> {
        std::fs::create_dir_all(dir)?;
        let mut loaded = BTreeMap::new();
        let mut wanted = std::collections::HashSet::new();
        for kv in meta.iter() {
            let (k, v) = kv?;
            let name = String::from_utf8_lossy(&k).into_owned();
            let m: ListMeta = decode(&seal, "hotlist_meta", &name, &v)?;
            let file = file_name(&m.name, m.version);
            wanted.insert(file.clone());
            let opened = std::fs::read(dir.join(&file))
                .map_err(|e| HotlistError::Snapshot(format!("{file}: {e}")))
                .and_then(|sealed| {
                    seal.open(FILE, &sealed).map_err(|_| {
                        HotlistError::Snapshot(format!("{file} does not open with the store key"))
                    })
                })
                .and_then(Snapshot::decode)
                .and_then(|s| {
                    if s.meta() == &m {
                        Ok(s)
                    } else {
                        Err(HotlistError::Snapshot(format!("{file} holds another version")))
                    }
                });
            match opened {
                Ok(s) => {
                    loaded.insert(name, Arc::new(s));
                }
                Err(e) => tracing::error!(list = %name, version = m.version, error = %e,
                    "hotlist unavailable until the server sends it again"),
            }
        }
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let n = e.file_name().to_string_lossy().into_owned();
            if !wanted.contains(&n) {
                std::fs::remove_file(e.path())?;
            }
        }
        Ok(Lists { dir: dir.to_path_buf(), loaded: RwLock::new(loaded), seal })
    }

    fn snapshots(&self) -> Vec<Arc<Snapshot>> {
        self.loaded.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }
}

impl Store {
    /// Imports a new version of a hotlist, replacing the current one atomically.
    pub fn import_hotlist(
        &self,
        name: &str,
        version: u64,
        source: &str,
        entries: &[HotEntry],
    ) -> Result<ListMeta, StoreError> {
        if !trailer_wire::topic::valid_id(name) {
            return Err(HotlistError::BadName(name.to_string()).into());
        }
        let current = self.hotlist_meta(name)?;
        if let Some(c) = &current
            && c.version >= version
        {
            return Err(
                HotlistError::Stale { name: name.into(), version, current: c.version }.into()
            );
        }
        let meta = ListMeta {
            name: name.into(),
            version,
            source: source.into(),
            entries: entries.len() as u64,
        };
        let bytes = Snapshot::encode(&meta, entries)?;
        // 1. The new version's file, durable before anything names it.
        let dir = &self.lists.dir;
        let file = dir.join(file_name(name, version));
        let tmp = dir.join(format!(".{}.tmp", file_name(name, version)));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&self.lists.seal.seal(FILE, &bytes))?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &file)?;
        sync_dir(dir)?;
        let snap = Arc::new(Snapshot::decode(bytes)?);
        // 2. Switch.
        self.hotlist_meta
            .insert(name.as_bytes(), encode(&self.seal, "hotlist_meta", &name, &meta)?)?;
        self.db.flush()?;
        self.lists
            .loaded
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string(), snap);
        // 3. The old version goes.
        if let Some(c) = current {
            match std::fs::remove_file(dir.join(file_name(name, c.version))) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(meta)
    }

    /// Withdraws a list (the agency stopped using it): it is matched no more, its file and
    /// staged chunks go, and no version up to `through` is imported again. True if it was
    /// loaded.
    pub fn withdraw_hotlist(&self, name: &str, through: u64) -> Result<bool, StoreError> {
        let mut key = WITHDRAWN.to_vec();
        key.extend_from_slice(name.as_bytes());
        let through = self.hotlist_withdrawn(name)?.map_or(through, |t| t.max(through));
        self.db.insert(key, &through.to_be_bytes())?;
        let current = self.hotlist_meta(name)?;
        self.hotlist_meta.remove(name.as_bytes())?;
        self.db.flush()?;
        self.lists.loaded.write().unwrap_or_else(PoisonError::into_inner).remove(name);
        if let Some(c) = &current {
            match std::fs::remove_file(self.lists.dir.join(file_name(name, c.version))) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        self.drop_chunks(name, u64::MAX)?;
        Ok(current.is_some())
    }

    /// The newest withdrawn version of a list, if it was ever withdrawn.
    pub fn hotlist_withdrawn(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let mut key = WITHDRAWN.to_vec();
        key.extend_from_slice(name.as_bytes());
        Ok(self.db.get(key)?.and_then(|v| v.as_ref().try_into().ok()).map(u64::from_be_bytes))
    }

    /// The current version of a list, as recorded (whether or not its file loaded).
    pub fn hotlist_meta(&self, name: &str) -> Result<Option<ListMeta>, StoreError> {
        match self.hotlist_meta.get(name.as_bytes())? {
            None => Ok(None),
            Some(v) => decode(&self.seal, "hotlist_meta", &name, &v).map(Some),
        }
    }

    /// The lists reads are compared against now (the databases the public log names).
    pub fn hotlists(&self) -> Result<Vec<ListMeta>, StoreError> {
        Ok(self.lists.snapshots().iter().map(|s| s.meta().clone()).collect())
    }

    /// Every list entry the plate matches (exactly, or within one known OCR confusion): per
    /// list, the entries of the first variant found.
    pub fn match_plate(
        &self,
        plate: &str,
        ocr_tolerance: bool,
    ) -> Result<Vec<(ListMeta, HotEntry)>, StoreError> {
        let mut hits = Vec::new();
        let candidates = hotlist::variants(plate, ocr_tolerance);
        for snap in self.lists.snapshots() {
            for p in &candidates {
                let found = snap.lookup(p);
                if !found.is_empty() {
                    hits.extend(found.into_iter().map(|e| (snap.meta().clone(), e)));
                    break;
                }
            }
        }
        Ok(hits)
    }
}

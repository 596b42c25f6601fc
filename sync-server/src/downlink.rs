//! Building downlinks for trailers: hotlist versions cut into chunks with the digest of the
//! whole, holds, ACP digests and requests. The queue itself is in the records
//! ([`crate::records::Records::enqueue_downlink`]); the server's link sends it.
use crate::records::{Records, RecordsError};
use sha2::{Digest, Sha256};
use trailer_wire::{Downlink, HoldCommand, HoldKind, HotlistChunk, PictureKind};

/// Chunk size for hotlists: well under the broker's message limit, small enough that a chunk
/// crosses a slow cellular link in seconds.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// A hotlist file cut into `(index, count, bytes)` chunks, with the SHA-256 of the whole.
pub fn chunks(file: &[u8], chunk_bytes: usize) -> ([u8; 32], Vec<Vec<u8>>) {
    let digest: [u8; 32] = Sha256::digest(file).into();
    let parts: Vec<Vec<u8>> = if file.is_empty() {
        vec![Vec::new()]
    } else {
        file.chunks(chunk_bytes.max(1)).map(<[u8]>::to_vec).collect()
    };
    (digest, parts)
}

/// Queues a hotlist version (CSV: plate,state,category,source[,case_number]) for `trailer`.
/// Returns the downlink ids, one per chunk.
pub async fn queue_hotlist(
    records: &Records,
    trailer: &str,
    name: &str,
    version: u64,
    file: &[u8],
    actor: &str,
    now: i64,
) -> Result<Vec<u64>, RecordsError> {
    let mut tx = records.begin_write().await?;
    let ids = queue_hotlist_on(&mut tx, trailer, name, version, file, actor, now).await?;
    tx.commit().await?;
    Ok(ids)
}

/// [`queue_hotlist`] inside the caller's transaction (a trailer's first status).
pub(crate) async fn queue_hotlist_on(
    c: &mut sqlx::AnyConnection,
    trailer: &str,
    name: &str,
    version: u64,
    file: &[u8],
    actor: &str,
    now: i64,
) -> Result<Vec<u64>, RecordsError> {
    let (sha256, parts) = chunks(file, CHUNK_BYTES);
    let count = parts.len() as u32;
    let mut ids = Vec::with_capacity(parts.len());
    for (index, bytes) in parts.into_iter().enumerate() {
        let summary = format!("hotlist {name} version {version}, chunk {} of {count}", index + 1);
        let (list_name, index) = (name.to_string(), index as u32);
        ids.push(
            crate::records::enqueue_on(
                c,
                trailer,
                "hotlist",
                &summary,
                actor,
                now,
                |downlink_id| {
                    Downlink::Hotlist(HotlistChunk {
                        downlink_id,
                        list_name,
                        version,
                        index,
                        count,
                        sha256,
                        bytes,
                    })
                },
            )
            .await?,
        );
    }
    // Each chunk names its list: a superseded or withdrawn version's unsent chunks are
    // cancelled by it.
    let pg = crate::records::is_pg(c);
    for id in &ids {
        sqlx::query(crate::records::sql(pg, "UPDATE downlinks SET list_name = ? WHERE id = ?"))
            .bind(name)
            .bind(*id as i64)
            .execute(&mut *c)
            .await?;
    }
    Ok(ids)
}

/// What else an operator can send a trailer.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    PlaceHold {
        hold_id: u64,
        kind: HoldKind,
        case_number: String,
        read_ids: Vec<u64>,
    },
    ReleaseHold {
        hold_id: u64,
    },
    SendHealth,
    SendPicture {
        read_id: u64,
        kind: PictureKind,
    },
    /// A whole appliance configuration (TOML); the trailer refuses changes to its identity, its
    /// store and its link, writes the rest and restarts on it.
    Config {
        toml: String,
    },
}

impl Command {
    fn kind(&self) -> &'static str {
        match self {
            Command::PlaceHold { .. } => "hold.place",
            Command::ReleaseHold { .. } => "hold.release",
            Command::SendHealth => "send_health",
            Command::SendPicture { .. } => "send_picture",
            Command::Config { .. } => "config",
        }
    }

    /// A summary for the queue and the audit trail (never a plate).
    pub fn summary(&self) -> String {
        match self {
            Command::PlaceHold { hold_id, kind, case_number, read_ids } => {
                format!(
                    "place hold {hold_id} ({kind:?}, case {case_number}) on {} reads",
                    read_ids.len()
                )
            }
            Command::ReleaseHold { hold_id } => format!("release hold {hold_id}"),
            Command::SendHealth => "send health now".into(),
            Command::SendPicture { read_id, kind } => {
                format!("send the {kind:?} of read {read_id}")
            }
            Command::Config { toml } => {
                let digest = Sha256::digest(toml.as_bytes());
                format!(
                    "configuration ({} bytes, sha256 {})",
                    toml.len(),
                    hex::encode(&digest[..6])
                )
            }
        }
    }

    fn build(self, trailer: &str, config_key: Option<&[u8]>, downlink_id: u64) -> Downlink {
        match self {
            Command::PlaceHold { hold_id, kind, case_number, read_ids } => Downlink::Hold {
                downlink_id,
                command: HoldCommand::Place { hold_id, kind, case_number, read_ids },
            },
            Command::ReleaseHold { hold_id } => {
                Downlink::Hold { downlink_id, command: HoldCommand::Release { hold_id } }
            }
            Command::SendHealth => Downlink::SendHealth { downlink_id },
            Command::SendPicture { read_id, kind } => {
                Downlink::SendPicture { downlink_id, read_id, kind }
            }
            Command::Config { toml } => {
                let signature = config_key
                    .and_then(|k| trailer_wire::signed::sign(k, trailer, downlink_id, &toml).ok())
                    .unwrap_or_default();
                Downlink::Config { downlink_id, toml, signature }
            }
        }
    }
}

/// Queues one command for `trailer`; returns its downlink id.
pub async fn queue(
    records: &Records,
    trailer: &str,
    command: Command,
    actor: &str,
    now: i64,
) -> Result<u64, RecordsError> {
    let mut s = records.session().await?;
    let id = queue_in(&mut s, trailer, command, actor, now).await?;
    s.commit().await?;
    Ok(id)
}

/// [`queue`] on the caller's session (a command and its audit entry).
pub async fn queue_in(
    s: &mut crate::records::Session,
    trailer: &str,
    command: Command,
    actor: &str,
    now: i64,
) -> Result<u64, RecordsError> {
    let summary = command.summary();
    let kind = command.kind();
    let key = s.rules().config_key.clone();
    if matches!(command, Command::Config { .. }) && key.is_none() {
        return Err(RecordsError::Invalid(
            "no configuration signing key: set pki.dir (sync-server pki init makes \
             config-signing.key); trailers refuse unsigned configurations"
                .into(),
        ));
    }
    s.enqueue_downlink(trailer, kind, &summary, actor, now, |id| {
        command.build(trailer, key.as_deref(), id)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_file_in_order_with_its_digest() {
        let file: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
        let (digest, parts) = chunks(&file, CHUNK_BYTES);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), file);
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&file)));
        assert_eq!(chunks(b"", CHUNK_BYTES).1.len(), 1, "an empty list is one empty chunk");
    }
}

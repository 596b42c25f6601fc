//! The binary frame: `[version][kind][postcard body]`, with a size limit per kind.
//!
//! postcard was chosen for the cellular link: varint integers and length-prefixed strings give
//! about 40 bytes for a read's metadata, and the format is stable and documented. Unknown kinds and
//! versions are refused with an error that says so, never guessed at.
use crate::PROTOCOL_VERSION;
use crate::message::*;
use thiserror::Error;

/// Largest frame of any kind; the broker's `message_size_limit` is set to this.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// Kind bytes. Never reuse a retired number.
mod kind {
    pub const READ_BATCH: u8 = 1;
    pub const PICTURE: u8 = 2;
    pub const ALERT: u8 = 3;
    pub const HEALTH: u8 = 4;
    pub const ACTIVE_USE: u8 = 5;
    pub const DEPLOYMENT: u8 = 6;
    pub const STATUS: u8 = 7;
    pub const CERT_REQUEST: u8 = 8;
    pub const ACK: u8 = 16;
    pub const DOWNLINK: u8 = 17;
    pub const DOWNLINK_ACK: u8 = 18;
}

/// Names and limits of each kind (frame bytes, header included).
fn kind_info(kind: u8) -> Option<(&'static str, usize)> {
    Some(match kind {
        kind::READ_BATCH => ("read batch", 64 * 1024),
        kind::PICTURE => ("picture", MAX_FRAME_BYTES),
        kind::ALERT => ("alert", 4 * 1024),
        kind::HEALTH => ("health", 4 * 1024),
        kind::ACTIVE_USE => ("active use", 8 * 1024),
        kind::DEPLOYMENT => ("deployment", 4 * 1024),
        kind::STATUS => ("status", 1024),
        kind::CERT_REQUEST => ("certificate request", 8 * 1024),
        kind::ACK => ("ack", 64 * 1024),
        kind::DOWNLINK => ("downlink", MAX_FRAME_BYTES),
        kind::DOWNLINK_ACK => ("downlink ack", 4 * 1024),
        _ => return None,
    })
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("corrupt frame: empty payload")]
    Empty,
    #[error("corrupt frame: {0} byte(s), shorter than the 2-byte header")]
    Truncated(usize),
    #[error(
        "unsupported protocol version {got} (this build speaks version {supported}): {}",
        if got < supported { "the sender runs older software; upgrade it" }
        else { "the sender runs newer software; upgrade this end" }
    )]
    UnsupportedVersion { got: u8, supported: u8 },
    #[error("unsupported message kind {0}")]
    UnknownKind(u8),
    #[error("{kind} frame of {len} bytes exceeds its limit of {max} bytes")]
    TooLarge { kind: &'static str, len: usize, max: usize },
    #[error("corrupt {kind} frame: {reason}")]
    Corrupt { kind: &'static str, reason: String },
    #[error("corrupt {kind} frame: {trailing} trailing byte(s) after the message")]
    Trailing { kind: &'static str, trailing: usize },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error("{kind} message encodes to {len} bytes, over its limit of {max} bytes")]
    TooLarge { kind: &'static str, len: usize, max: usize },
    #[error("cannot encode {kind} message: {reason}")]
    Serialize { kind: &'static str, reason: String },
}

fn kind_of(msg: &Message) -> u8 {
    match msg {
        Message::ReadBatch(_) => kind::READ_BATCH,
        Message::Picture(_) => kind::PICTURE,
        Message::Alert(_) => kind::ALERT,
        Message::Health(_) => kind::HEALTH,
        Message::ActiveUse(_) => kind::ACTIVE_USE,
        Message::Deployment(_) => kind::DEPLOYMENT,
        Message::Status(_) => kind::STATUS,
        Message::Ack(_) => kind::ACK,
        Message::Downlink(_) => kind::DOWNLINK,
        Message::DownlinkAck(_) => kind::DOWNLINK_ACK,
        Message::CertRequest(_) => kind::CERT_REQUEST,
    }
}

fn body<T: serde::Serialize>(
    out: &mut Vec<u8>,
    v: &T,
    kind: &'static str,
) -> Result<(), EncodeError> {
    let bytes = postcard::to_allocvec(v)
        .map_err(|e| EncodeError::Serialize { kind, reason: e.to_string() })?;
    out.extend_from_slice(&bytes);
    Ok(())
}

/// Encodes a message into one frame, refusing frames over the kind's limit.
pub fn encode(msg: &Message) -> Result<Vec<u8>, EncodeError> {
    let k = kind_of(msg);
    let (name, max) = kind_info(k).unwrap_or(("unknown", 0));
    let mut out = vec![PROTOCOL_VERSION, k];
    match msg {
        Message::ReadBatch(m) => body(&mut out, m, name)?,
        Message::Picture(m) => body(&mut out, m, name)?,
        Message::Alert(m) => body(&mut out, m, name)?,
        Message::Health(m) => body(&mut out, m, name)?,
        Message::ActiveUse(m) => body(&mut out, m, name)?,
        Message::Deployment(m) => body(&mut out, m, name)?,
        Message::Status(m) => body(&mut out, m, name)?,
        Message::Ack(m) => body(&mut out, m, name)?,
        Message::Downlink(m) => body(&mut out, m, name)?,
        Message::DownlinkAck(m) => body(&mut out, m, name)?,
        Message::CertRequest(m) => body(&mut out, m, name)?,
    }
    if out.len() > max {
        return Err(EncodeError::TooLarge { kind: name, len: out.len(), max });
    }
    Ok(out)
}

fn parse<'a, T: serde::Deserialize<'a>>(
    bytes: &'a [u8],
    kind: &'static str,
) -> Result<T, DecodeError> {
    let (v, rest) = postcard::take_from_bytes(bytes)
        .map_err(|e| DecodeError::Corrupt { kind, reason: e.to_string() })?;
    if !rest.is_empty() {
        return Err(DecodeError::Trailing { kind, trailing: rest.len() });
    }
    Ok(v)
}

/// Decodes one frame. Checks version, kind and size before touching the body.
pub fn decode(frame: &[u8]) -> Result<Message, DecodeError> {
    match frame.len() {
        0 => return Err(DecodeError::Empty),
        1 => return Err(DecodeError::Truncated(1)),
        _ => {}
    }
    if frame[0] != PROTOCOL_VERSION {
        return Err(DecodeError::UnsupportedVersion { got: frame[0], supported: PROTOCOL_VERSION });
    }
    let k = frame[1];
    let (name, max) = kind_info(k).ok_or(DecodeError::UnknownKind(k))?;
    if frame.len() > max {
        return Err(DecodeError::TooLarge { kind: name, len: frame.len(), max });
    }
    let b = &frame[2..];
    Ok(match k {
        kind::READ_BATCH => Message::ReadBatch(parse(b, name)?),
        kind::PICTURE => Message::Picture(parse(b, name)?),
        kind::ALERT => Message::Alert(parse(b, name)?),
        kind::HEALTH => Message::Health(parse(b, name)?),
        kind::ACTIVE_USE => Message::ActiveUse(parse(b, name)?),
        kind::DEPLOYMENT => Message::Deployment(parse(b, name)?),
        kind::STATUS => Message::Status(parse(b, name)?),
        kind::ACK => Message::Ack(parse(b, name)?),
        kind::DOWNLINK => Message::Downlink(parse(b, name)?),
        kind::DOWNLINK_ACK => Message::DownlinkAck(parse(b, name)?),
        kind::CERT_REQUEST => Message::CertRequest(parse(b, name)?),
        other => return Err(DecodeError::UnknownKind(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_read(id: u64) -> ReadMeta {
        ReadMeta {
            read_id: id,
            camera_id: "cam0".into(),
            plate: "ABC123".into(),
            confidence_pm: 970,
            first_seen: 1_790_000_000_000,
            best_seen: 1_790_000_000_400,
            position: Position::from_degrees(44.1636, -93.9994, FixQuality::Fix3d),
            plate_box: [100, 200, 120, 40],
            pictures: PictureSet { plate_crop: true, context: true },
        }
    }

    /// Golden vector: the bytes of this batch are part of the protocol. If this test fails, the
    /// wire format changed: bump PROTOCOL_VERSION (old trailers would be misread) or undo it.
    #[test]
    fn golden_read_batch() {
        let msg =
            Message::ReadBatch(ReadBatch { trailer_id: "T1".into(), reads: vec![sample_read(7)] });
        let bytes = encode(&msg).expect("encodes");
        assert_eq!(
            hex::encode(&bytes),
            "020102543101070463616d3006414243313233ca0780b083c59868a0b683c59868\
             c0d296a5039faeb980070364c80178280101"
        );
        assert_eq!(decode(&bytes).expect("decodes"), msg);
    }

    #[test]
    fn golden_ack() {
        let msg = Message::Ack(Ack {
            refs: vec![AckRef::Read(7), AckRef::Picture(7, PictureKind::Context), AckRef::Alert(9)],
        });
        let bytes = encode(&msg).expect("encodes");
        assert_eq!(hex::encode(&bytes), "02100300070107010209");
        assert_eq!(decode(&bytes).expect("decodes"), msg);
    }

    /// Golden vector of a status with its store identity (version 2).
    #[test]
    fn golden_status() {
        let msg = Message::Status(Status {
            trailer_id: "T1".into(),
            online: true,
            time: 1_790_000_000_000,
            software_version: "0.2.0".into(),
            store: StoreInfo { store_id: 0x0102_0304_0506_0708, created: 5, opens: 3, run: 9 },
        });
        let bytes = encode(&msg).expect("encodes");
        assert_eq!(
            hex::encode(&bytes),
            "02070254310180b083c5986805302e322e30\
             888e98a8c0e08081010a0309"
        );
        assert_eq!(decode(&bytes).expect("decodes"), msg);
    }

    #[test]
    fn read_metadata_is_compact() {
        let one = encode(&Message::ReadBatch(ReadBatch {
            trailer_id: "trailer-01".into(),
            reads: vec![sample_read(1)],
        }))
        .expect("encodes");
        assert!(one.len() < 80, "one read's metadata is {} bytes", one.len());
    }

    #[test]
    fn errors_say_what_was_wrong() {
        assert_eq!(decode(&[]), Err(DecodeError::Empty));
        assert_eq!(decode(&[1]), Err(DecodeError::Truncated(1)));
        assert_eq!(
            decode(&[9, 1, 0]),
            Err(DecodeError::UnsupportedVersion { got: 9, supported: PROTOCOL_VERSION })
        );
        // A trailer or server of the previous version is refused with both versions named.
        let old = decode(&[1, kind::READ_BATCH, 0]).expect_err("version 1");
        assert_eq!(
            old.to_string(),
            "unsupported protocol version 1 (this build speaks version 2): the sender runs \
             older software; upgrade it"
        );
        let v = PROTOCOL_VERSION;
        assert_eq!(decode(&[v, 200]), Err(DecodeError::UnknownKind(200)));
        let err = decode(&[v, kind::READ_BATCH, 0xff, 0xff]).expect_err("corrupt");
        assert!(err.to_string().starts_with("corrupt read batch frame"), "{err}");
        let mut big = vec![v, kind::STATUS];
        big.resize(5000, 0);
        assert!(matches!(decode(&big), Err(DecodeError::TooLarge { kind: "status", .. })));
        let mut trailing = encode(&Message::Ack(Ack { refs: vec![] })).expect("encodes");
        trailing.push(0);
        assert!(matches!(decode(&trailing), Err(DecodeError::Trailing { .. })));
    }

    #[test]
    fn oversized_messages_are_refused_at_encode() {
        let reads = (0..5000).map(sample_read).collect();
        let err = encode(&Message::ReadBatch(ReadBatch { trailer_id: "T".into(), reads }))
            .expect_err("too big");
        assert!(matches!(err, EncodeError::TooLarge { kind: "read batch", .. }));
    }

    #[test]
    fn random_bytes_never_panic() {
        // A small deterministic xorshift: every prefix of noise must decode to an error or a
        // message, never a panic or an allocation bomb.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..2000usize {
            let mut buf = vec![PROTOCOL_VERSION];
            for _ in 0..len % 300 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(x as u8);
            }
            let _ = decode(&buf);
        }
    }

    #[test]
    fn every_kind_round_trips() {
        let pos = Position::from_degrees(45.0, -93.0, FixQuality::Configured);
        let msgs = vec![
            Message::Picture(Picture {
                trailer_id: "T".into(),
                read_id: 1,
                kind: PictureKind::PlateCrop,
                jpeg: vec![0xff, 0xd8],
            }),
            Message::Alert(Alert {
                trailer_id: "T".into(),
                alert_id: 2,
                read: sample_read(1),
                list_name: "MN".into(),
                list_version: 3,
                category: HitCategory::StolenVehicle,
                case_number: None,
            }),
            Message::Health(Health {
                trailer_id: "T".into(),
                time: 1,
                camera: CameraState::Up,
                position: pos,
                disk_used_pm: 10,
                storage_full: false,
                store_repairs: 0,
                battery_mv: Some(12600),
                solar_mw: None,
                modem_rssi_dbm: Some(-80),
                backlog_items: 3,
                backlog_oldest: Some(5),
                last_read: None,
                dropped_frames: 4,
                software_version: "0.1.0".into(),
                acp_key_fingerprint: Some([1; 8]),
                acp_entries: 2,
                config_rolled_back: None,
                destroyed: vec![(20_400, 12)],
            }),
            Message::ActiveUse(ActiveUse {
                trailer_id: "T".into(),
                period_id: 1,
                start: 1,
                end: Some(2),
                start_reason: UsageReason::DaemonStart,
                end_reason: Some(UsageReason::EndOfStream),
                position: pos,
                lists_compared: vec!["MN".into()],
            }),
            Message::Deployment(DeploymentEvent {
                trailer_id: "T".into(),
                event_id: 4,
                kind: DeploymentEventKind::Start,
                time: 9,
                position: pos,
                note: "Main St".into(),
            }),
            Message::Status(Status {
                trailer_id: "T".into(),
                online: false,
                time: 0,
                software_version: String::new(),
                store: StoreInfo { store_id: u64::MAX, created: -1, opens: 0, run: 1 },
            }),
            Message::Downlink(Downlink::AcpAdd {
                downlink_id: 1,
                key_fingerprint: [3; 8],
                hashes: vec![[7; 32]],
                probes: vec![],
            }),
            Message::Downlink(Downlink::Hold {
                downlink_id: 2,
                command: HoldCommand::Place {
                    hold_id: 1,
                    kind: HoldKind::Exculpatory,
                    case_number: "C-1".into(),
                    read_ids: vec![1, 2],
                },
            }),
            Message::DownlinkAck(DownlinkAck {
                trailer_id: "T".into(),
                downlink_id: 1,
                applied: true,
                reason: None,
            }),
            Message::CertRequest(CertRequest { trailer_id: "T".into(), csr_der: vec![0x30, 1] }),
            Message::Downlink(Downlink::Certificate { downlink_id: 3, chain_pem: "PEM".into() }),
        ];
        for m in msgs {
            let b = encode(&m).expect("encodes");
            assert_eq!(decode(&b).expect("decodes"), m);
            assert_eq!(
                m.trailer_id().is_some(),
                !matches!(m, Message::Ack(_) | Message::Downlink(_))
            );
        }
    }
}

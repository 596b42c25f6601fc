//! The MQTT topic tree.
//!
//! ```text
//! trailer/{id}/up/{reads|pictures|alerts|health|usage|deployments|downlink-acks|cert-request}
//! trailer/{id}/status                                     trailer (and its last will), retained
//! trailer/{id}/down/ack                                   server -> trailer, end-to-end acks
//! trailer/{id}/down/cmd                                   server -> trailer, downlinks
//! console/{user}/req, console/{user}/resp                 operator <-> server, JSON
//! console/live/...                                        server -> operators, retained JSON
//! ```
//! The broker binds a client to its own `{id}` through the certificate CN (`%u` ACL patterns);
//! the server re-checks that a payload's trailer id matches its topic.
use thiserror::Error;

/// The shared-subscription group the server instances join to split ingestion.
pub const INGEST_SHARE_GROUP: &str = "ingest";

/// Kinds of uplink topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpKind {
    Reads,
    Pictures,
    Alerts,
    Health,
    Usage,
    Deployments,
    DownlinkAcks,
    /// A trailer asks for its certificate to be renewed (a request its own new key signed).
    CertRequest,
}

impl UpKind {
    pub const ALL: [UpKind; 8] = [
        UpKind::Reads,
        UpKind::Pictures,
        UpKind::Alerts,
        UpKind::Health,
        UpKind::Usage,
        UpKind::Deployments,
        UpKind::DownlinkAcks,
        UpKind::CertRequest,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            UpKind::Reads => "reads",
            UpKind::Pictures => "pictures",
            UpKind::Alerts => "alerts",
            UpKind::Health => "health",
            UpKind::Usage => "usage",
            UpKind::Deployments => "deployments",
            UpKind::DownlinkAcks => "downlink-acks",
            UpKind::CertRequest => "cert-request",
        }
    }
    fn parse(s: &str) -> Option<UpKind> {
        UpKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A parsed topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    Up { trailer: String, kind: UpKind },
    Status { trailer: String },
    DownAck { trailer: String },
    DownCmd { trailer: String },
    ConsoleRequest { user: String },
    ConsoleResponse { user: String },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TopicError {
    #[error("topic {0:?} is not part of the protocol")]
    Unknown(String),
    #[error("invalid identifier {0:?}: use 1-64 of A-Z a-z 0-9 - _ .")]
    BadId(String),
}

/// Trailer ids and user names: what may appear in a topic segment and a certificate CN.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !id.starts_with('.')
}

impl Topic {
    pub fn up(trailer: &str, kind: UpKind) -> String {
        format!("trailer/{trailer}/up/{}", kind.as_str())
    }
    pub fn status(trailer: &str) -> String {
        format!("trailer/{trailer}/status")
    }
    pub fn down_ack(trailer: &str) -> String {
        format!("trailer/{trailer}/down/ack")
    }
    pub fn down_cmd(trailer: &str) -> String {
        format!("trailer/{trailer}/down/cmd")
    }
    pub fn console_request(user: &str) -> String {
        format!("console/{user}/req")
    }
    pub fn console_response(user: &str) -> String {
        format!("console/{user}/resp")
    }
    /// The filter every server instance subscribes to, as one member of the share group.
    pub fn ingest_filter() -> String {
        format!("$share/{INGEST_SHARE_GROUP}/trailer/+/up/+")
    }
    pub fn status_filter() -> &'static str {
        "trailer/+/status"
    }

    pub fn parse(topic: &str) -> Result<Topic, TopicError> {
        let unknown = || TopicError::Unknown(topic.to_string());
        let parts: Vec<&str> = topic.split('/').collect();
        let id = |s: &str| {
            if valid_id(s) { Ok(s.to_string()) } else { Err(TopicError::BadId(s.to_string())) }
        };
        match parts.as_slice() {
            ["trailer", t, "up", k] => {
                Ok(Topic::Up { trailer: id(t)?, kind: UpKind::parse(k).ok_or_else(unknown)? })
            }
            ["trailer", t, "status"] => Ok(Topic::Status { trailer: id(t)? }),
            ["trailer", t, "down", "ack"] => Ok(Topic::DownAck { trailer: id(t)? }),
            ["trailer", t, "down", "cmd"] => Ok(Topic::DownCmd { trailer: id(t)? }),
            ["console", u, "req"] => Ok(Topic::ConsoleRequest { user: id(u)? }),
            ["console", u, "resp"] => Ok(Topic::ConsoleResponse { user: id(u)? }),
            _ => Err(unknown()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for k in UpKind::ALL {
            let t = Topic::up("T-01", k);
            assert_eq!(Topic::parse(&t), Ok(Topic::Up { trailer: "T-01".into(), kind: k }));
        }
        assert_eq!(Topic::parse(&Topic::status("x")), Ok(Topic::Status { trailer: "x".into() }));
        assert_eq!(Topic::parse(&Topic::down_ack("x")), Ok(Topic::DownAck { trailer: "x".into() }));
        assert_eq!(
            Topic::parse(&Topic::console_request("ann")),
            Ok(Topic::ConsoleRequest { user: "ann".into() })
        );
    }

    #[test]
    fn rejects_foreign_topics_and_ids() {
        assert!(matches!(Topic::parse("trailer/x/up/movies"), Err(TopicError::Unknown(_))));
        assert!(matches!(Topic::parse("other"), Err(TopicError::Unknown(_))));
        assert!(matches!(Topic::parse("trailer/../status"), Err(TopicError::BadId(_))));
        assert!(matches!(Topic::parse("trailer//status"), Err(TopicError::BadId(_))));
        assert!(!valid_id("a+b"));
        assert!(!valid_id(&"a".repeat(65)));
    }
}

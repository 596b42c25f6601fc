//! Who may do what at the broker: the roles of Mosquitto's dynamic security plugin, and the
//! commands that bring the broker's clients in line with the server's registry.
//!
//! The ACL file cannot do this: its `%u` patterns apply to every certificate (an operator could
//! publish as a trailer named like them), and it never checks subscriptions (any certificate
//! could join the `$share/ingest` group, where a message handed to a member that may not read it
//! is dropped for the whole group). With the plugin, a client the broker does not know may do
//! nothing at all (the default access denies every publish and subscription), and each known
//! client has exactly one role:
//!
//! | client | role | may |
//! |---|---|---|
//! | an enrolled trailer `T` | `trailer:T` | publish `trailer/T/status` and its exact uplink topics; subscribe `trailer/T/down/#` |
//! | a console user `U` with an active role | `operator:U` | publish `console/U/req`; subscribe `console/U/resp`, `console/U/live/#` |
//! | a dispatch system `D` (`[[forward]] mqtt_client`) | `dispatch:D` | subscribe `dispatch/D/hits`; publish `dispatch/D/ack` |
//! | a server instance | `server` | the ingest and console share groups, statuses, every downlink, console answers and live topics, dispatch hits and their acknowledgements, the plugin's control topic |
//!
//! The plugin of Mosquitto 2.0 has no `%u` in its ACLs, so each trailer and operator has a role
//! of its own with literal topics. The server is the one owner of those roles: from its
//! registry (enrolled trailers, console users, server certificates) and its dispatch targets
//! it derives the clients the
//! broker should have ([`Desired`]), and sends the plugin what differs ([`plan`]): a full pass
//! after every connection, then only the changes. Every command is idempotent (creating what
//! exists is refused harmlessly), so a lost or repeated pass does no harm. A revoked trailer or
//! a disabled user is disabled at the broker, which also disconnects it at once.
use serde_json::{Value, json};
use std::collections::BTreeMap;
use trailer_wire::UpKind;

/// The plugin's request and response topics.
pub const CONTROL_TOPIC: &str = "$CONTROL/dynamic-security/v1";
pub const CONTROL_RESPONSE: &str = "$CONTROL/dynamic-security/v1/response";
/// The role every server instance holds.
pub const SERVER_ROLE: &str = "server";

/// The kind of a client the server manages at the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Trailer,
    Operator,
    Dispatch,
    Server,
}

/// A client as the registry wants it: enabled (`true`) or disabled.
pub type Desired = BTreeMap<String, (Kind, bool)>;

fn acl(kind: &str, topic: String) -> Value {
    json!({"acltype": kind, "topic": topic, "allow": true})
}

/// The role a client holds.
pub fn role_name(kind: Kind, name: &str) -> String {
    match kind {
        Kind::Trailer => format!("trailer:{name}"),
        Kind::Operator => format!("operator:{name}"),
        Kind::Dispatch => format!("dispatch:{name}"),
        Kind::Server => SERVER_ROLE.to_string(),
    }
}

/// The ACLs of a role: exact topics only.
pub fn acls(kind: Kind, name: &str) -> Vec<Value> {
    match kind {
        Kind::Trailer => {
            let mut out: Vec<Value> = UpKind::ALL
                .iter()
                .map(|k| acl("publishClientSend", trailer_wire::Topic::up(name, *k)))
                .collect();
            out.push(acl("publishClientSend", trailer_wire::Topic::status(name)));
            out.push(acl("subscribePattern", format!("trailer/{name}/down/#")));
            out
        }
        Kind::Operator => vec![
            acl("publishClientSend", format!("console/{name}/req")),
            acl("subscribePattern", format!("console/{name}/resp")),
            acl("subscribePattern", format!("console/{name}/live/#")),
        ],
        Kind::Dispatch => vec![
            acl("subscribePattern", crate::forward::mqtt::hits_topic(name)),
            acl("publishClientSend", crate::forward::mqtt::ack_topic(name)),
        ],
        Kind::Server => [
            (
                "subscribePattern",
                format!("$share/{}/trailer/+/up/+", trailer_wire::topic::INGEST_SHARE_GROUP),
            ),
            ("subscribePattern", "trailer/+/status".into()),
            ("subscribePattern", "$share/console/console/+/req".into()),
            ("subscribePattern", CONTROL_RESPONSE.into()),
            ("subscribePattern", crate::forward::mqtt::ACK_FILTER.into()),
            ("publishClientSend", crate::forward::mqtt::hits_topic("+")),
            ("publishClientSend", "trailer/+/down/ack".into()),
            ("publishClientSend", "trailer/+/down/cmd".into()),
            // Only to clear a retained message a trailer left on an uplink topic.
            ("publishClientSend", "trailer/+/up/+".into()),
            ("publishClientSend", "console/+/resp".into()),
            ("publishClientSend", "console/+/live/#".into()),
            ("publishClientSend", CONTROL_TOPIC.into()),
        ]
        .into_iter()
        .map(|(k, t)| acl(k, t))
        .collect(),
    }
}

/// The plugin's configuration file as `broker-config` writes it first: nothing allowed by
/// default, the server role, and the server instances (`servers`, their certificates' CNs).
/// Trailers and operators are added by the running server.
pub fn bootstrap(servers: &[String]) -> Value {
    json!({
        "defaultACLAccess": {
            "publishClientSend": false,
            "publishClientReceive": true,
            "subscribe": false,
            "unsubscribe": true
        },
        "clients": servers.iter().map(|s| json!({
            "username": s,
            "textname": "sync server instance",
            "roles": [{"rolename": SERVER_ROLE}]
        })).collect::<Vec<_>>(),
        "groups": [],
        "roles": [{"rolename": SERVER_ROLE, "acls": acls(Kind::Server, "")}]
    })
}

/// The commands that take the broker from `applied` (what the server last sent it; empty after
/// a connection, so everything is sent) to `desired`.
pub fn plan(desired: &Desired, applied: &Desired) -> Vec<Value> {
    let mut out = Vec::new();
    for (name, (kind, enabled)) in desired {
        if applied.get(name) == Some(&(*kind, *enabled)) {
            continue;
        }
        let role = role_name(*kind, name);
        if *enabled {
            if *kind != Kind::Server {
                out.push(
                    json!({"command": "createRole", "rolename": role, "acls": acls(*kind, name)}),
                );
            } else {
                // The server role was written when the broker was first configured; an ACL a
                // later release added is added to it here (one it has is refused harmlessly).
                for a in acls(Kind::Server, "") {
                    let mut add = json!({"command": "addRoleACL", "rolename": role});
                    if let (Some(add), Some(a)) = (add.as_object_mut(), a.as_object()) {
                        add.extend(a.clone());
                    }
                    out.push(add);
                }
            }
            // A name is a trailer's or a user's, never both (the registry refuses the other), so
            // a client that exists already holds this role.
            out.push(json!({"command": "createClient", "username": name,
                            "roles": [{"rolename": role}]}));
            out.push(json!({"command": "enableClient", "username": name}));
        } else {
            out.push(json!({"command": "disableClient", "username": name}));
        }
    }
    out
}

/// The server's side of the plugin: what it has applied, and the next pass. No I/O: the
/// server's broker connection publishes what [`Admin::pass`] returns and hands back the answers.
#[derive(Debug, Default)]
pub struct Admin {
    applied: Desired,
}

impl Admin {
    /// A new connection: the broker may have restarted with an older state; send everything.
    pub fn on_connected(&mut self) {
        self.applied.clear();
    }

    /// The request that brings the broker to `desired`, if anything differs.
    pub fn pass(&mut self, desired: Desired) -> Option<Vec<u8>> {
        let commands = plan(&desired, &self.applied);
        self.applied = desired;
        if commands.is_empty() {
            return None;
        }
        serde_json::to_vec(&json!({ "commands": commands })).ok()
    }

    /// The plugin's answer: errors are returned for the log, and the next pass sends everything
    /// again.
    pub fn on_response(&mut self, payload: &[u8]) -> Vec<String> {
        let errors = errors(payload);
        if !errors.is_empty() {
            self.applied.clear();
        }
        errors
    }
}

/// Errors in the plugin's answer that are not the harmless ones of an idempotent pass.
pub fn errors(response: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<Value>(response) else {
        return vec!["unreadable response from the broker's security plugin".into()];
    };
    v["responses"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| {
                    let e = r["error"].as_str()?;
                    let harmless = e.contains("already exists")
                        || e.contains("Client not found") && r["command"] == "disableClient";
                    (!harmless).then(|| format!("{}: {e}", r["command"].as_str().unwrap_or("?")))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailer_may_use_its_own_topics_only() {
        let a = acls(Kind::Trailer, "t1");
        let topics: Vec<&str> = a.iter().filter_map(|v| v["topic"].as_str()).collect();
        assert!(topics.contains(&"trailer/t1/up/reads") && topics.contains(&"trailer/t1/status"));
        assert!(topics.iter().all(|t| t.starts_with("trailer/t1/")), "{topics:?}");
        assert!(!topics.iter().any(|t| t.contains('+')), "no wildcard for a trailer: {topics:?}");
        let o = acls(Kind::Operator, "alice");
        assert!(
            o.iter().all(|v| v["topic"].as_str().is_some_and(|t| t.starts_with("console/alice/")))
        );
    }

    #[test]
    fn a_dispatch_system_may_take_its_hits_and_answer_only() {
        let d = acls(Kind::Dispatch, "cad");
        let topics: Vec<(&str, &str)> =
            d.iter().filter_map(|v| Some((v["acltype"].as_str()?, v["topic"].as_str()?))).collect();
        assert_eq!(
            topics,
            [("subscribePattern", "dispatch/cad/hits"), ("publishClientSend", "dispatch/cad/ack")]
        );
        let server = acls(Kind::Server, "");
        let has = |kind: &str, topic: &str| {
            server.iter().any(|v| v["acltype"] == kind && v["topic"] == topic)
        };
        assert!(
            has("publishClientSend", "dispatch/+/hits")
                && has("subscribePattern", "dispatch/+/ack")
        );
    }

    #[test]
    fn a_server_gets_the_acls_a_later_release_added() {
        let mut desired = Desired::new();
        desired.insert("sync-server".into(), (Kind::Server, true));
        let c = plan(&desired, &Desired::new());
        let added: Vec<&str> = c
            .iter()
            .filter(|c| c["command"] == "addRoleACL" && c["rolename"] == SERVER_ROLE)
            .filter_map(|c| c["topic"].as_str())
            .collect();
        assert!(added.contains(&"dispatch/+/ack"), "{c:?}");
        assert_eq!(added.len(), acls(Kind::Server, "").len());
        assert!(!c.iter().any(|c| c["command"] == "createRole"), "the server role exists: {c:?}");
    }

    #[test]
    fn the_plan_sends_what_changed() {
        let mut desired = Desired::new();
        desired.insert("t1".into(), (Kind::Trailer, true));
        desired.insert("alice".into(), (Kind::Operator, false));
        let all = plan(&desired, &Desired::new());
        let commands: Vec<&str> = all.iter().filter_map(|c| c["command"].as_str()).collect();
        assert_eq!(commands, ["disableClient", "createRole", "createClient", "enableClient"]);
        assert!(plan(&desired, &desired).is_empty(), "nothing changed, nothing sent");
        let mut revoked = desired.clone();
        revoked.insert("t1".into(), (Kind::Trailer, false));
        let c = plan(&revoked, &desired);
        assert_eq!(c, vec![json!({"command": "disableClient", "username": "t1"})]);
    }

    #[test]
    fn an_error_makes_the_next_pass_send_everything() {
        let mut admin = Admin::default();
        let mut desired = Desired::new();
        desired.insert("t1".into(), (Kind::Trailer, true));
        assert!(admin.pass(desired.clone()).is_some());
        assert!(admin.pass(desired.clone()).is_none());
        assert!(admin.on_response(br#"{"responses":[{"command":"createRole"}]}"#).is_empty());
        assert!(admin.pass(desired.clone()).is_none());
        let e = admin.on_response(br#"{"responses":[{"command":"createRole","error":"x"}]}"#);
        assert_eq!(e, ["createRole: x"]);
        assert!(admin.pass(desired.clone()).is_some(), "sent again after an error");
        admin.on_connected();
        assert!(admin.pass(desired).is_some(), "sent again after a reconnection");
    }

    #[test]
    fn harmless_errors_of_an_idempotent_pass_are_not_reported() {
        let r = br#"{"responses":[{"command":"createClient","error":"Client already exists"},
            {"command":"enableClient"},{"command":"createRole","error":"Role already exists"},
            {"command":"createClient","error":"Role not found"}]}"#;
        assert_eq!(errors(r), ["createClient: Role not found"]);
    }
}

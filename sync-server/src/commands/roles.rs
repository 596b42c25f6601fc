//! Role-based access "corresponding to the official duties" of each user (Minn. Stat. 13.824
//! subd. 7): which console command each role may run. Pure: the console's dispatcher asks
//! [`allowed`] before it touches the records, and refuses (and audits the refusal) otherwise.
use serde::{Deserialize, Serialize};

/// A console user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Trailer status only.
    Viewer,
    /// Alerts, deployments, hotlists.
    Operator,
    /// Plate searches (with a purpose and a case number).
    Investigator,
    /// Holds, ACP requests, release requests, BCA notices.
    RecordsSupervisor,
    /// The audit trail and its reports.
    Auditor,
    /// Users.
    Admin,
}

impl std::fmt::Display for Role {
    /// The role's name as commands and tables write it (`records-supervisor`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Investigator => "investigator",
            Role::RecordsSupervisor => "records-supervisor",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        })
    }
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Viewer,
        Role::Operator,
        Role::Investigator,
        Role::RecordsSupervisor,
        Role::Auditor,
        Role::Admin,
    ];
}

/// Every console command, by the name it has on the wire.
pub const COMMANDS: [&str; 50] = [
    "status",
    "whoami",
    "alerts.list",
    "alerts.ack",
    "deployments.list",
    "deployments.start",
    "deployments.end",
    "deployments.rename",
    "deployments.security",
    "notices.list",
    "notices.send",
    "notices.mark-sent",
    "hotlists.upload",
    "hotlists.list",
    "hotlists.approve",
    "hotlists.withdraw",
    "holds.place",
    "holds.release",
    "holds.list",
    "acp.add",
    "plates.search",
    "release.request",
    "release.review",
    "release.decide",
    "release.fulfil",
    "release.list",
    "publiclog.generate",
    "audit.report",
    "audit.verify",
    "users.manage",
    "reads.list",
    "reads.picture",
    "deadletters.list",
    "notices.render",
    "deployments.determinations",
    "suspension.order",
    "suspension.lift",
    "suspension.list",
    "audit.result",
    "audit.reported",
    "audit.results",
    "audit.export",
    "trailers.list",
    "trailers.enroll",
    "trailers.revoke",
    "trailers.health",
    "trailers.config",
    "trailers.downlinks",
    "release.files",
    "release.download",
];

/// Whether `role` may run `command`. Everyone may see trailer status and their own role;
/// beyond that each role has only its duties. An unknown command is allowed to nobody.
pub fn allowed(role: Role, command: &str) -> bool {
    if command == "status" || command == "whoami" {
        return true;
    }
    let family = command.split('.').next().unwrap_or_default();
    let duty = match role {
        Role::Viewer => false,
        // An investigation's hotlist is approved (and any list withdrawn) by a records
        // supervisor: a second person, not the operator who uploaded it.
        // Security determinations are for an in-camera review: supervisors and auditors.
        Role::Operator => {
            (matches!(family, "alerts" | "deployments") && command != "deployments.determinations")
                || matches!(
                    command,
                    "hotlists.upload" | "hotlists.list" | "trailers.list" | "trailers.health"
                )
        }
        Role::Investigator => matches!(command, "plates.search" | "reads.picture"),
        Role::RecordsSupervisor => {
            matches!(family, "holds" | "acp" | "release" | "notices" | "suspension")
                || matches!(
                    command,
                    "publiclog.generate"
                        | "hotlists.list"
                        | "hotlists.approve"
                        | "hotlists.withdraw"
                        | "reads.list"
                        | "deployments.determinations"
                )
        }
        Role::Auditor => {
            matches!(family, "audit")
                || matches!(
                    command,
                    "publiclog.generate"
                        | "release.list"
                        | "suspension.list"
                        | "deployments.determinations"
                )
        }
        Role::Admin => matches!(family, "users" | "trailers") || command == "deadletters.list",
    };
    duty && COMMANDS.contains(&command)
}

/// Commands that reach data about people and so need a purpose and a case number.
pub fn needs_purpose_and_case(command: &str) -> bool {
    matches!(
        command,
        "plates.search"
            | "holds.place"
            | "release.request"
            | "release.fulfil"
            | "reads.list"
            | "reads.picture"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole matrix, written out: each role against every command.
    #[test]
    fn each_role_can_do_exactly_its_duties() {
        use Role::*;
        let expect: &[(Role, &[&str])] = &[
            (Viewer, &["status", "whoami"]),
            (
                Operator,
                &[
                    "status",
                    "whoami",
                    "alerts.list",
                    "alerts.ack",
                    "deployments.list",
                    "deployments.start",
                    "deployments.end",
                    "deployments.rename",
                    "deployments.security",
                    "hotlists.upload",
                    "hotlists.list",
                    "trailers.list",
                    "trailers.health",
                ],
            ),
            (Investigator, &["status", "whoami", "plates.search", "reads.picture"]),
            (
                RecordsSupervisor,
                &[
                    "status",
                    "whoami",
                    "notices.list",
                    "notices.send",
                    "notices.mark-sent",
                    "hotlists.list",
                    "hotlists.approve",
                    "hotlists.withdraw",
                    "holds.place",
                    "holds.release",
                    "holds.list",
                    "acp.add",
                    "release.request",
                    "release.review",
                    "release.decide",
                    "release.fulfil",
                    "release.list",
                    "release.files",
                    "release.download",
                    "publiclog.generate",
                    "reads.list",
                    "notices.render",
                    "deployments.determinations",
                    "suspension.order",
                    "suspension.lift",
                    "suspension.list",
                ],
            ),
            (
                Auditor,
                &[
                    "status",
                    "whoami",
                    "release.list",
                    "publiclog.generate",
                    "audit.report",
                    "audit.verify",
                    "audit.result",
                    "audit.reported",
                    "audit.results",
                    "audit.export",
                    "suspension.list",
                    "deployments.determinations",
                ],
            ),
            (
                Admin,
                &[
                    "status",
                    "whoami",
                    "users.manage",
                    "deadletters.list",
                    "trailers.list",
                    "trailers.enroll",
                    "trailers.revoke",
                    "trailers.health",
                    "trailers.config",
                    "trailers.downlinks",
                ],
            ),
        ];
        for (role, commands) in expect {
            for c in COMMANDS {
                assert_eq!(allowed(*role, c), commands.contains(&c), "{role:?} / {c}");
            }
        }
        assert_eq!(expect.len(), Role::ALL.len());
        for role in Role::ALL {
            let wire = serde_json::to_value(role).expect("json");
            assert_eq!(wire.as_str(), Some(role.to_string().as_str()), "one name for {role:?}");
        }
        for role in Role::ALL {
            assert!(!allowed(role, "alerts"), "a family alone is no command");
            assert!(!allowed(role, "users.drop-table"), "unknown commands are nobody's");
        }
    }

    #[test]
    fn searches_and_releases_need_a_purpose_and_a_case() {
        assert!(needs_purpose_and_case("plates.search"));
        assert!(needs_purpose_and_case("release.fulfil"));
        assert!(!needs_purpose_and_case("status"));
    }
}

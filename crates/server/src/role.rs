//! The roles a token carries and what each allows: the one owner of that rule.
//!
//! Roles are ordered, each allowing what the one before allows and more: `auditor` reads,
//! `approver` also approves, `operator` also moves runs and may override a guard, `admin` also
//! manages the server's workflows. An approval guard's own `approvers` and `not_by_initiator` apply on top of the
//! role: the role lets an actor ask, the guard decides whether the approval counts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A role, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads: status, runs, history, audit, audit verify, a run's event stream.
    Auditor,
    /// An auditor who may also approve (and withdraw an approval).
    Approver,
    /// An approver who may also start, check, advance, drive, roll back and abort runs, and
    /// override a guard (where the guard's or workflow's `overridable_by` names them).
    Operator,
    /// An operator who may also reload the server's workflows and upload new ones.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::Auditor, Role::Approver, Role::Operator, Role::Admin];

    /// The role's name as written in the tokens file and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Role::Auditor => "auditor",
            Role::Approver => "approver",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Whether this role allows `action`.
    pub fn allows(self, action: Action) -> bool {
        self >= action.needs()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a role: one of auditor, approver, operator, admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(text: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == text.trim())
            .ok_or_else(|| UnknownRole(text.to_owned()))
    }
}

/// What a request asks to do, as far as roles are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// status, runs, history, audit, audit verify, the event stream, the workflow list.
    Read,
    /// approve, approve --withdraw.
    Approve,
    /// start, check, advance, drive, rollback, abort.
    Operate,
    /// override: break-glass, marking a failing guard passed for one visit. It needs at least
    /// `operator` (the role that moves runs: an override is a move made possible), and the
    /// guard's or the workflow's `overridable_by` must also name the actor
    /// (`waygate_core::decide::may_override` decides that, on top).
    Override,
    /// Reloading the workflows, uploading one.
    Administer,
}

impl Action {
    /// The lowest role that allows this action.
    pub fn needs(self) -> Role {
        match self {
            Action::Read => Role::Auditor,
            Action::Approve => Role::Approver,
            Action::Operate => Role::Operator,
            Action::Override => Role::Operator,
            Action::Administer => Role::Admin,
        }
    }
}

/// Whether any of `roles` allows `action`.
pub fn any_allows(roles: &[Role], action: Action) -> bool {
    roles.iter().any(|r| r.allows(action))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_allows_what_the_one_below_does_and_more() {
        use Action::*;
        // (role, actions it allows)
        let cases: [(Role, &[Action]); 4] = [
            (Role::Auditor, &[Read]),
            (Role::Approver, &[Read, Approve]),
            (Role::Operator, &[Read, Approve, Operate, Override]),
            (Role::Admin, &[Read, Approve, Operate, Override, Administer]),
        ];
        for (role, allowed) in cases {
            for action in [Read, Approve, Operate, Override, Administer] {
                assert_eq!(
                    role.allows(action),
                    allowed.contains(&action),
                    "{role} {action:?}"
                );
            }
        }
    }

    #[test]
    fn roles_parse_by_name_only() {
        for role in Role::ALL {
            assert_eq!(role.name().parse::<Role>(), Ok(role));
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!("root".parse::<Role>().is_err());
    }
}

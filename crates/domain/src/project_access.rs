//! Who may see and change a project: its owner, or any admin. A project the
//! caller may not see does not exist for them (404, never 403), so the rule
//! is applied inside the store's statements rather than after a read.

use crate::UserId;

/// The caller of a project operation, as the visibility rule needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectAccess {
    pub caller: UserId,
    /// Admins see and change every project.
    pub admin: bool,
}

impl ProjectAccess {
    pub const fn new(caller: UserId, admin: bool) -> Self {
        Self { caller, admin }
    }

    /// Whether a project owned by `owner` is visible to this caller.
    pub fn sees(&self, owner: UserId) -> bool {
        self.admin || self.caller == owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_and_admins_see_a_project_others_do_not() {
        let owner = UserId::new();
        assert!(ProjectAccess::new(owner, false).sees(owner));
        assert!(!ProjectAccess::new(UserId::new(), false).sees(owner));
        assert!(ProjectAccess::new(UserId::new(), true).sees(owner));
    }
}

//! The one name of each child role: its process name (`PR_SET_NAME`), its seccomp policy, its
//! binary, its tracing spans, its crash records, the command line and the summary all use it.

use serde::{Deserialize, Serialize};

/// A child process's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The GPU process.
    Gpu,
    /// The renderer.
    Renderer,
}

impl Role {
    /// Both roles.
    pub const ALL: [Role; 2] = [Role::Gpu, Role::Renderer];

    /// The name: `gpu` or `renderer`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Gpu => "gpu",
            Role::Renderer => "renderer",
        }
    }

    /// The binary that runs it, a sibling of `triptych`.
    pub const fn binary(self) -> &'static str {
        match self {
            Role::Gpu => "triptych-gpu",
            Role::Renderer => "triptych-renderer",
        }
    }

    /// The role named `name`, if any.
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_fit_a_process_name() {
        for r in Role::ALL {
            assert_eq!(Role::from_name(r.as_str()), Some(r));
            // PR_SET_NAME keeps 15 bytes.
            assert!(r.as_str().len() <= 15);
        }
        assert_eq!(Role::from_name("launcher"), None);
    }
}

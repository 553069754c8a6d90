//! Process identifiers.

use std::fmt;
use std::sync::Arc;

/// A process identifier: the host entry the process runs on and a node-wide id that is
/// never reused. Shown as `{app:processes|0x00004}`, as in the seed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pid {
    pub host: Arc<str>,
    pub id: u64,
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}|0x{:05x}}}", self.host, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_renders_like_the_seed() {
        let pid = Pid {
            host: "app:processes".into(),
            id: 4,
        };
        assert_eq!(pid.to_string(), "{app:processes|0x00004}");
    }
}

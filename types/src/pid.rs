//! Process identifiers.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A process identifier: the node it runs on (in a cluster), the host entry it runs on and an
/// id that node never reuses. Shown as `{app:processes|0x00004}` on a node outside a cluster,
/// as in the seed, and `{b.7@app:processes|0x00004}` on node `b` (its incarnation 7) of a
/// cluster; inside a payload it is that text (a CBOR text string), so any language can read
/// it and send it back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid {
    /// The node of a cluster the process runs on; `None` outside a cluster.
    pub node: Option<NodeId>,
    /// The `process.host` (or `terminal.host`) entry the process runs on.
    pub host: Arc<str>,
    /// The node-wide id.
    pub id: u64,
}

/// A node of a cluster: its name, and which of the runs of a node of that name it is. A pid
/// of an earlier run of node `b` is never taken for one of today's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// 1 to 63 lowercase ASCII letters, digits, `-` and `_`, starting with a letter or digit.
    pub name: Arc<str>,
    /// Differs for each run of a node of this name (the cluster hands it out on join).
    pub incarnation: u64,
}

/// The longest node name, in bytes.
pub const MAX_NODE_NAME: usize = 63;

impl NodeId {
    /// Why `name` cannot name a node, if it cannot.
    pub fn check_name(name: &str) -> Result<(), String> {
        let fine = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        if name.is_empty() || name.len() > MAX_NODE_NAME {
            return Err(format!(
                "a node name is 1 to {MAX_NODE_NAME} bytes, not {}",
                name.len()
            ));
        }
        if !name.chars().all(fine) || name.starts_with(['-', '_']) {
            return Err(format!(
                "`{}`: a node name is lowercase letters, digits, `-` and `_`, and starts with a letter or digit",
                name.chars().take(100).collect::<String>()
            ));
        }
        Ok(())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.name, self.incarnation)
    }
}

impl Pid {
    /// The pid `id` on `host` of a node outside a cluster.
    pub fn new(host: impl Into<Arc<str>>, id: u64) -> Self {
        Pid {
            node: None,
            host: host.into(),
            id,
        }
    }

    /// The same pid on `node`.
    pub fn on(self, node: Option<NodeId>) -> Self {
        Pid { node, ..self }
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(node) => write!(f, "{{{node}@{}|0x{:05x}}}", self.host, self.id),
            None => write!(f, "{{{}|0x{:05x}}}", self.host, self.id),
        }
    }
}

/// Text that is not a pid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a pid like {{app:processes|0x00004}} or {{b.7@app:processes|0x00004}}")]
pub struct ParsePidError(String);

impl FromStr for Pid {
    type Err = ParsePidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParsePidError(s.chars().take(100).collect());
        let inner = s
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .ok_or_else(bad)?;
        let (host, id) = inner.rsplit_once('|').ok_or_else(bad)?;
        let id = id.strip_prefix("0x").ok_or_else(bad)?;
        if host.is_empty() || id.is_empty() {
            return Err(bad());
        }
        let id = u64::from_str_radix(id, 16).map_err(|_| bad())?;
        // A host entry has no `@`: one before the host names the node.
        let (node, host) = match host.split_once('@') {
            None => (None, host),
            Some((node, host)) => {
                let (name, incarnation) = node.rsplit_once('.').ok_or_else(bad)?;
                NodeId::check_name(name).map_err(|_| bad())?;
                if host.is_empty() || !incarnation.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                let incarnation = incarnation.parse().map_err(|_| bad())?;
                let name = Arc::from(name);
                (Some(NodeId { name, incarnation }), host)
            }
        };
        Ok(Pid::new(host, id).on(node))
    }
}

impl Serialize for Pid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Pid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload;

    #[test]
    fn a_pid_renders_like_the_seed() {
        assert_eq!(
            Pid::new("app:processes", 4).to_string(),
            "{app:processes|0x00004}"
        );
    }

    #[test]
    fn a_pid_parses_back_from_its_text() {
        let pid = Pid::new("app:processes", 0x1_0000_0042);
        assert_eq!(pid.to_string().parse::<Pid>(), Ok(pid));
        for bad in [
            "", "{}", "{|0x1}", "{a|1}", "{a|0x}", "{a|0xzz}", "a|0x1", "{a|0x1",
        ] {
            assert!(bad.parse::<Pid>().is_err(), "{bad:?} is not a pid");
        }
    }

    #[test]
    fn a_pid_of_a_cluster_names_its_node_and_incarnation() {
        let node = NodeId {
            name: "b".into(),
            incarnation: 7,
        };
        let pid = Pid::new("app:processes", 4).on(Some(node));
        assert_eq!(pid.to_string(), "{b.7@app:processes|0x00004}");
        assert_eq!(pid.to_string().parse::<Pid>(), Ok(pid.clone()));
        let earlier: Pid = "{b.6@app:processes|0x00004}".parse().expect("a pid");
        assert_ne!(earlier, pid, "another run of node b");
        for bad in [
            "{b@app:p|0x1}",
            "{.7@app:p|0x1}",
            "{B.7@app:p|0x1}",
            "{b.x@app:p|0x1}",
            "{b.7@|0x1}",
            "{b.-1@app:p|0x1}",
        ] {
            assert!(bad.parse::<Pid>().is_err(), "{bad:?} is not a pid");
        }
    }

    #[test]
    fn in_a_payload_a_pid_is_a_cbor_text_string() {
        let pid = Pid::new("h", 1);
        let bytes = payload::encode(&pid);
        // Major type 3 (text) with its length, 11, in the same byte; then the text.
        assert_eq!(bytes[0], 0x60 | 11);
        assert_eq!(&bytes[1..], b"{h|0x00001}");
        assert_eq!(payload::decode::<Pid>(&bytes), Ok(pid));
    }
}

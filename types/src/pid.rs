//! Process identifiers.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A process identifier: the host entry the process runs on and a node-wide id that is never
/// reused. Shown as `{app:processes|0x00004}`, as in the seed; inside a payload it is that
/// text (a CBOR text string), so any language can read it and send it back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid {
    /// The `process.host` (or `terminal.host`) entry the process runs on.
    pub host: Arc<str>,
    /// The node-wide id.
    pub id: u64,
}

impl Pid {
    pub fn new(host: impl Into<Arc<str>>, id: u64) -> Self {
        Pid {
            host: host.into(),
            id,
        }
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}|0x{:05x}}}", self.host, self.id)
    }
}

/// Text that is not a pid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a pid like {{app:processes|0x00004}}")]
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
        Ok(Pid::new(host, id))
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
    fn in_a_payload_a_pid_is_a_cbor_text_string() {
        let pid = Pid::new("h", 1);
        let bytes = payload::encode(&pid);
        // Major type 3 (text) with its length, 11, in the same byte; then the text.
        assert_eq!(bytes[0], 0x60 | 11);
        assert_eq!(&bytes[1..], b"{h|0x00001}");
        assert_eq!(payload::decode::<Pid>(&bytes), Ok(pid));
    }
}

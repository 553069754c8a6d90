//! Why a process ended, and the lifecycle events other processes hear about it.

use std::fmt;

use serde::de::{self, DeserializeSeed, Visitor};
use serde::{Deserialize, Serialize};

use crate::payload;
use crate::pid::Pid;
use crate::transcode::{Capture, Walk};

/// Why a process ended (`exit-reason` in the WIT). Only [`ExitReason::Normal`] is a normal
/// exit: every other reason is abnormal, which takes linked processes down and makes a
/// supervised service restart.
///
/// Inside a payload (e.g. a log field, or a reason forwarded in a message) a normal exit is
/// its returned value itself, and an abnormal one is a map with one entry naming it:
/// `{"error": "…"}`, `{"trap": "…"}`, `{"limit": "…"}`, `{"killed": "…"}`,
/// `{"cancelled": "…"}`, `{"link_down": "{app:processes|0x00004}"}`, `{"no_process": null}`,
/// `{"no_connection": "b.7"}`.
/// (A returned value that is itself such a one-entry map reads back as that reason.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// The entry point returned `ok`, with its CBOR-encoded value.
    Normal(Vec<u8>),
    /// The entry point returned `err`, with its message.
    Error(String),
    /// The guest trapped (a panic, `unreachable`, …), with the trap and panic message.
    Trap(String),
    /// The process broke a limit; says which and by how much.
    Limit(String),
    /// Ended by `terminate`; says by whom.
    Killed(String),
    /// Still running when a `cancel`'s grace period ran out; carries the cancel reason.
    Cancelled(String),
    /// A linked process ended abnormally and this one did not trap links.
    LinkDown(Pid),
    /// The target of a `monitor` or `link` was already gone.
    NoProcess,
    /// The process ran on another node of the cluster, and that node is down (it missed its
    /// heartbeats, lost its connection, or a message from it was lost): what became of the
    /// process is not known. Names the node (`b.7`).
    NoConnection(String),
}

impl ExitReason {
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal(_))
    }

    /// The returned value of a normal exit, decoded; `None` for an abnormal exit or a value
    /// that is not a `T`.
    pub fn value<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        match self {
            ExitReason::Normal(bytes) => payload::decode(bytes).ok(),
            _ => None,
        }
    }
}

/// How much of a returned value a reason's one-line form shows.
const SHOWN_VALUE: usize = 1024;

/// For people: one line, whatever the guest put in its messages (control characters are
/// escaped, a returned value is cut at 1 KiB).
impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use payload::printable;
        match self {
            ExitReason::Normal(value) => {
                write!(f, "{}", payload::display_within(value, SHOWN_VALUE))
            }
            ExitReason::Error(message) => write!(f, "error: {}", printable(message)),
            ExitReason::Trap(message) => write!(f, "trap: {}", printable(message)),
            ExitReason::Limit(message) => write!(f, "limit: {}", printable(message)),
            ExitReason::Killed(by) => write!(f, "killed by {}", printable(by)),
            ExitReason::Cancelled(reason) => write!(f, "cancelled: {}", printable(reason)),
            ExitReason::LinkDown(pid) => write!(f, "linked process {pid} exited"),
            ExitReason::NoProcess => write!(f, "no such process"),
            ExitReason::NoConnection(node) => {
                write!(f, "no connection to node {}", printable(node))
            }
        }
    }
}

/// A returned value is written as it is read ([`Walk`]), never decoded into a tree: what
/// another process returned can be logged or forwarded whatever its shape.
impl Serialize for ExitReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (key, detail): (&str, Option<&str>) = match self {
            ExitReason::Normal(bytes) => return Walk(bytes).serialize(serializer),
            ExitReason::Error(m) => ("error", Some(m)),
            ExitReason::Trap(m) => ("trap", Some(m)),
            ExitReason::Limit(m) => ("limit", Some(m)),
            ExitReason::Killed(m) => ("killed", Some(m)),
            ExitReason::Cancelled(m) => ("cancelled", Some(m)),
            ExitReason::LinkDown(pid) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("link_down", pid)?;
                return map.end();
            }
            ExitReason::NoProcess => ("no_process", None),
            ExitReason::NoConnection(node) => ("no_connection", Some(node)),
        };
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(key, &detail)?;
        map.end()
    }
}

/// Read without a tree as well: a one-entry map naming a reason is that reason, anything
/// else is a returned value, captured as CBOR as it is read ([`Capture`]).
impl<'de> Deserialize<'de> for ExitReason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ReasonVisitor)
    }
}

struct ReasonVisitor;

/// A returned value, written by `write` into a fresh payload.
fn normal<E>(write: impl FnOnce(Capture<'_>) -> Result<(), E>) -> Result<ExitReason, E> {
    let mut out = Vec::new();
    write(Capture {
        out: &mut out,
        depth: 0,
    })?;
    Ok(ExitReason::Normal(out))
}

/// The key of a one-entry map: captured as CBOR, and as text if it is text.
struct Key(Vec<u8>);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut out = Vec::new();
        Capture {
            out: &mut out,
            depth: 1,
        }
        .deserialize(deserializer)?;
        Ok(Key(out))
    }
}

impl<'de> Visitor<'de> for ReasonVisitor {
    type Value = ExitReason;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an exit reason or a returned value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<ExitReason, E> {
        normal(|c| c.visit_bool(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ExitReason, E> {
        normal(|c| c.visit_u64(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ExitReason, E> {
        normal(|c| c.visit_i64(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<ExitReason, E> {
        normal(|c| c.visit_u128(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<ExitReason, E> {
        normal(|c| c.visit_i128(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ExitReason, E> {
        normal(|c| c.visit_f64(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ExitReason, E> {
        normal(|c| c.visit_str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ExitReason, E> {
        normal(|c| c.visit_bytes(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<ExitReason, E> {
        normal(|c| c.visit_none())
    }

    fn visit_unit<E: de::Error>(self) -> Result<ExitReason, E> {
        normal(|c| c.visit_unit())
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<ExitReason, D::Error> {
        normal(|c| c.visit_some(d))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<ExitReason, A::Error> {
        normal(|c| c.visit_seq(seq))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<ExitReason, A::Error> {
        if map.size_hint() != Some(1) {
            return normal(|c| c.visit_map(map));
        }
        let Some(Key(key)) = map.next_key()? else {
            return normal(|c| {
                c.out.push(0xa0);
                Ok(())
            });
        };
        let name = payload::decode::<String>(&key).ok();
        let text = |map: &mut A| {
            let name = name.as_deref().unwrap_or_default();
            map.next_value::<String>()
                .map_err(|_| de::Error::custom(format!("`{name}` carries a text")))
        };
        match name.as_deref() {
            Some("error") => return text(&mut map).map(ExitReason::Error),
            Some("trap") => return text(&mut map).map(ExitReason::Trap),
            Some("limit") => return text(&mut map).map(ExitReason::Limit),
            Some("killed") => return text(&mut map).map(ExitReason::Killed),
            Some("cancelled") => return text(&mut map).map(ExitReason::Cancelled),
            Some("no_connection") => return text(&mut map).map(ExitReason::NoConnection),
            Some("link_down") => {
                return text(&mut map)?
                    .parse()
                    .map(ExitReason::LinkDown)
                    .map_err(de::Error::custom);
            }
            Some("no_process") => {
                map.next_value::<de::IgnoredAny>()?;
                return Ok(ExitReason::NoProcess);
            }
            _ => {}
        }
        // A one-entry map of the guest's own: its value follows the key already read.
        let mut out = vec![0xa1];
        out.extend_from_slice(&key);
        map.next_value_seed(Capture {
            out: &mut out,
            depth: 1,
        })?;
        Ok(ExitReason::Normal(out))
    }
}

/// A lifecycle event, delivered on a process's events (`event` in the WIT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A monitored process ended (the seed's `EXIT`).
    Exit { from: Pid, reason: ExitReason },
    /// A linked process ended abnormally and this process traps links (`LINK_DOWN`).
    LinkDown { from: Pid, reason: ExitReason },
    /// This process is asked to stop (`CANCEL`), with a reason.
    Cancel { reason: String },
    /// The node upgrades this process's entry to a new component: hand over by hibernating
    /// (the WIT's `event.upgrade`).
    Upgrade,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciborium::Value;

    fn round_trip(reason: ExitReason) -> ExitReason {
        payload::decode(&payload::encode(&reason)).expect("decodes")
    }

    #[test]
    fn every_reason_survives_a_payload() {
        let reasons = [
            ExitReason::Normal(payload::encode(&7)),
            ExitReason::Error("e".into()),
            ExitReason::Trap("t".into()),
            ExitReason::Limit("l".into()),
            ExitReason::Killed("k".into()),
            ExitReason::Cancelled("c".into()),
            ExitReason::LinkDown(Pid::new("h", 3)),
            ExitReason::NoProcess,
            ExitReason::NoConnection("b.7".into()),
        ];
        for reason in reasons {
            assert_eq!(round_trip(reason.clone()), reason);
        }
    }

    #[test]
    fn a_normal_exit_is_its_value_and_an_abnormal_one_a_one_entry_map() {
        assert_eq!(
            payload::encode(&ExitReason::Normal(payload::encode(&0))),
            payload::encode(&0)
        );
        let trap = payload::decode::<Value>(&payload::encode(&ExitReason::Trap("boom".into())));
        assert_eq!(
            trap,
            Ok(Value::Map(vec![(
                Value::Text("trap".into()),
                Value::Text("boom".into())
            )]))
        );
        assert_eq!(
            payload::display(&payload::encode(&ExitReason::NoProcess)),
            "{no_process: null}"
        );
    }

    #[test]
    fn a_returned_value_goes_through_as_it_is_without_a_tree() {
        // A map of the guest's own with one entry, and one whose key names no reason.
        for value in [
            payload::encode(
                &[("answer", 42)]
                    .into_iter()
                    .collect::<std::collections::BTreeMap<_, _>>(),
            ),
            payload::encode(
                &[(7, "x")]
                    .into_iter()
                    .collect::<std::collections::BTreeMap<_, _>>(),
            ),
            payload::encode(&vec![(); 3]),
        ] {
            let reason = ExitReason::Normal(value.clone());
            assert_eq!(payload::encode(&reason), value, "written as it is");
            assert_eq!(round_trip(reason.clone()), reason);
        }
        // Eight million one-byte integers: written and read back as bytes, never a tree.
        let mut big = vec![0x9a, 0x00, 0x80, 0x00, 0x00];
        big.resize(big.len() + (8 << 20), 0x00);
        let reason = ExitReason::Normal(big.clone());
        assert_eq!(payload::encode(&reason), big);
        assert_eq!(round_trip(reason.clone()), reason);
    }

    #[test]
    fn reasons_read_as_people_expect() {
        assert_eq!(ExitReason::Error("x".into()).to_string(), "error: x");
        assert_eq!(
            ExitReason::LinkDown(Pid::new("h", 1)).to_string(),
            "linked process {h|0x00001} exited"
        );
        assert_eq!(ExitReason::Normal(payload::encode(&"hi")).to_string(), "hi");
    }
}

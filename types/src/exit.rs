//! Why a process ended, and the lifecycle events other processes hear about it.

use std::fmt;

use ciborium::Value;
use serde::de::Error as _;
use serde::{Deserialize, Serialize};

use crate::payload;
use crate::pid::Pid;

/// Why a process ended (`exit-reason` in the WIT). Only [`ExitReason::Normal`] is a normal
/// exit: every other reason is abnormal, which takes linked processes down and makes a
/// supervised service restart.
///
/// Inside a payload (e.g. a log field, or a reason forwarded in a message) a normal exit is
/// its returned value itself, and an abnormal one is a map with one entry naming it:
/// `{"error": "…"}`, `{"trap": "…"}`, `{"limit": "…"}`, `{"killed": "…"}`,
/// `{"cancelled": "…"}`, `{"link_down": "{app:processes|0x00004}"}`, `{"no_process": null}`.
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
        }
    }
}

impl Serialize for ExitReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let text = |m: &String| Value::Text(m.clone());
        let (key, detail) = match self {
            ExitReason::Normal(bytes) => {
                return payload::decode::<Value>(bytes)
                    .unwrap_or(Value::Null)
                    .serialize(serializer);
            }
            ExitReason::Error(m) => ("error", text(m)),
            ExitReason::Trap(m) => ("trap", text(m)),
            ExitReason::Limit(m) => ("limit", text(m)),
            ExitReason::Killed(m) => ("killed", text(m)),
            ExitReason::Cancelled(m) => ("cancelled", text(m)),
            ExitReason::LinkDown(pid) => ("link_down", Value::Text(pid.to_string())),
            ExitReason::NoProcess => ("no_process", Value::Null),
        };
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(key, &detail)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for ExitReason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if let Value::Map(entries) = &value
            && let [(Value::Text(key), inner)] = entries.as_slice()
        {
            let text = || match inner {
                Value::Text(text) => Ok(text.clone()),
                _ => Err(D::Error::custom(format!("`{key}` carries a text"))),
            };
            match key.as_str() {
                "error" => return text().map(ExitReason::Error),
                "trap" => return text().map(ExitReason::Trap),
                "limit" => return text().map(ExitReason::Limit),
                "killed" => return text().map(ExitReason::Killed),
                "cancelled" => return text().map(ExitReason::Cancelled),
                "link_down" => {
                    return text()?
                        .parse()
                        .map(ExitReason::LinkDown)
                        .map_err(D::Error::custom);
                }
                "no_process" => return Ok(ExitReason::NoProcess),
                _ => {}
            }
        }
        Ok(ExitReason::Normal(payload::encode(&value)))
    }
}

/// A lifecycle event, delivered on a process's events channel (`event` in the WIT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A monitored process ended (the seed's `EXIT`).
    Exit { from: Pid, reason: ExitReason },
    /// A linked process ended abnormally and this process traps links (`LINK_DOWN`).
    LinkDown { from: Pid, reason: ExitReason },
    /// This process is asked to stop (`CANCEL`), with a reason.
    Cancel { reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn reasons_read_as_people_expect() {
        assert_eq!(ExitReason::Error("x".into()).to_string(), "error: x");
        assert_eq!(
            ExitReason::LinkDown(Pid::new("h", 1)).to_string(),
            "linked process {h|0x00001} exited"
        );
        assert_eq!(ExitReason::Normal(payload::encode(&"hi")).to_string(), "hi");
    }
}

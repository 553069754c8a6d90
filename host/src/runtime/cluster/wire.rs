//! The frames nodes send each other: CBOR, one NATS message each, on the receiver's subject
//! (`wasmhost.node.<name>.<incarnation>`). A frame says which node, incarnation and session
//! sent it and its place in that session's sequence to this receiver, so a receiver sees a
//! lost frame as a gap. Whatever arrives is bounded by the server's `max_payload` and is
//! checked before it is used: a malformed frame is counted and dropped.

use serde::{Deserialize, Serialize};
use wasmhost_types::{ExitReason, Pid, SpawnError};

/// The subject a node's frames are sent to.
pub fn subject(node: &str, incarnation: u64) -> String {
    format!("wasmhost.node.{node}.{incarnation}")
}

/// The subject a node's credits arrive on: what its peers grant its outboxes to them.
pub fn credit_subject(node: &str, incarnation: u64) -> String {
    format!("wasmhost.credit.{node}.{incarnation}")
}

/// `frames` more frames the sender of this (node `node`'s incarnation) lets the receiver
/// publish to it: it has taken that many off its inbox. Outside the outboxes' sequences, so
/// two nodes flooding each other never wait on each other's credit.
#[derive(Debug, Serialize, Deserialize)]
pub struct Credit {
    pub node: String,
    pub incarnation: u64,
    pub frames: u64,
}

pub fn encode_credit(credit: &Credit) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Err(err) = ciborium::into_writer(credit, &mut bytes) {
        tracing::error!("encoding a credit: {err}");
        bytes.clear();
    }
    bytes
}

/// The credit in `bytes`, or why it is not one.
pub fn decode_credit(bytes: &[u8]) -> Result<Credit, String> {
    let credit: Credit = ciborium::from_reader(bytes).map_err(|err| err.to_string())?;
    wasmhost_types::NodeId::check_name(&credit.node)?;
    Ok(credit)
}

/// One frame.
#[derive(Debug, Serialize, Deserialize)]
pub struct Frame {
    /// The sending node's name, incarnation and session.
    pub node: String,
    pub incarnation: u64,
    pub session: u64,
    /// Its place in the sender's sequence to this receiver, from 0 in each session.
    pub seq: u64,
    pub signal: Signal,
}

/// What a frame carries.
#[derive(Debug, Serialize, Deserialize)]
pub enum Signal {
    /// A message to a process of the receiver.
    Message {
        to: Pid,
        from: Option<Pid>,
        topic: String,
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// A process of the sender monitors `target`, a process of the receiver.
    Monitor { watcher: Pid, target: Pid },
    /// It no longer does.
    Demonitor { watcher: Pid, target: Pid },
    /// `from`, a process of the sender that `to` monitors, ended.
    Exit {
        from: Pid,
        to: Pid,
        reason: ExitReason,
    },
    /// `from`, a process of the sender, links to `to`, a process of the receiver.
    Link { from: Pid, to: Pid },
    /// It unlinks, or it ended normally.
    Unlink { from: Pid, to: Pid },
    /// `from`, linked to `to`, ended abnormally (or the link could not be made).
    LinkExit {
        from: Pid,
        to: Pid,
        reason: ExitReason,
    },
    /// `from` ends `to` at once (its authority was checked on its own node).
    Terminate { from: Pid, to: Pid },
    /// `from` asks `to` to stop, and ends it after `grace_ms`.
    Cancel {
        from: Pid,
        to: Pid,
        reason: String,
        grace_ms: u64,
    },
    /// `parent`, a process of the sender running `parent_entry`, asks for a child here;
    /// the answer is a `Spawned` with the same `req`.
    Spawn {
        req: u64,
        parent: Pid,
        parent_entry: String,
        entry: String,
        host: String,
        args: Vec<serde_bytes::ByteBuf>,
        monitored: bool,
        /// `spawn-linked`: the child is linked to `parent` before it runs.
        #[serde(default)]
        linked: bool,
    },
    /// The answer to the sender's `Spawn` numbered `req`.
    Spawned { req: u64, reply: SpawnReply },
    /// The sender is leaving the cluster: everything it sent came before this.
    Leaving,
}

/// A spawn's outcome on the wire.
#[derive(Debug, Serialize, Deserialize)]
pub enum SpawnReply {
    Spawned(Pid),
    UnknownEntry(String),
    UnknownHost(String),
    Limit(String),
    Denied(String),
}

impl From<Result<Pid, SpawnError>> for SpawnReply {
    fn from(result: Result<Pid, SpawnError>) -> Self {
        match result {
            Ok(pid) => SpawnReply::Spawned(pid),
            Err(SpawnError::UnknownEntry(e)) => SpawnReply::UnknownEntry(e),
            Err(SpawnError::UnknownHost(h)) => SpawnReply::UnknownHost(h),
            Err(SpawnError::Limit(m)) => SpawnReply::Limit(m),
            Err(SpawnError::Denied(m)) => SpawnReply::Denied(m),
        }
    }
}

impl From<SpawnReply> for Result<Pid, SpawnError> {
    fn from(reply: SpawnReply) -> Self {
        match reply {
            SpawnReply::Spawned(pid) => Ok(pid),
            SpawnReply::UnknownEntry(e) => Err(SpawnError::UnknownEntry(e)),
            SpawnReply::UnknownHost(h) => Err(SpawnError::UnknownHost(h)),
            SpawnReply::Limit(m) => Err(SpawnError::Limit(m)),
            SpawnReply::Denied(m) => Err(SpawnError::Denied(m)),
        }
    }
}

impl Signal {
    /// The pid of the receiver's process it is about, and the pid of the sender's (which
    /// must be of the sender: a node speaks only for its own processes).
    pub fn parties(&self) -> (Option<&Pid>, Option<&Pid>) {
        match self {
            Signal::Message { to, from, .. } => (Some(to), from.as_ref()),
            Signal::Monitor { watcher, target } | Signal::Demonitor { watcher, target } => {
                (Some(target), Some(watcher))
            }
            Signal::Exit { from, to, .. }
            | Signal::Link { from, to }
            | Signal::Unlink { from, to }
            | Signal::LinkExit { from, to, .. }
            | Signal::Terminate { from, to }
            | Signal::Cancel { from, to, .. } => (Some(to), Some(from)),
            Signal::Spawn { parent, .. } => (None, Some(parent)),
            Signal::Spawned { reply, .. } => match reply {
                SpawnReply::Spawned(child) => (None, Some(child)),
                _ => (None, None),
            },
            Signal::Leaving => (None, None),
        }
    }
}

/// What a frame costs on the wire beyond its payload and topic, at most: names, pids and
/// numbers.
pub const OVERHEAD: usize = 4 << 10;

pub fn encode(frame: &Frame) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(OVERHEAD);
    // Writing to a Vec fails only if serializing fails, and these types always serialize.
    if let Err(err) = ciborium::into_writer(frame, &mut bytes) {
        tracing::error!("encoding a cluster frame: {err}");
        bytes.clear();
    }
    bytes
}

/// The frame in `bytes`, or why it is not one.
pub fn decode(bytes: &[u8]) -> Result<Frame, String> {
    let frame: Frame = ciborium::from_reader(bytes).map_err(|err| err.to_string())?;
    wasmhost_types::NodeId::check_name(&frame.node)?;
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_survives_the_wire_and_garbage_is_refused() {
        let to: Pid = "{b.7@app:processes|0x00004}".parse().expect("a pid");
        let frame = Frame {
            node: "a".into(),
            incarnation: 3,
            session: 5,
            seq: 9,
            signal: Signal::Message {
                to: to.clone(),
                from: None,
                topic: "echo".into(),
                payload: vec![0xff; 1000],
            },
        };
        let bytes = encode(&frame);
        // The payload is one byte string, not a thousand integers of two bytes each.
        assert!(bytes.len() < 1000 + 250, "{} bytes", bytes.len());
        let back = decode(&bytes).expect("decodes");
        assert_eq!(
            (back.node.as_str(), back.incarnation, back.seq),
            ("a", 3, 9)
        );
        let Signal::Message {
            to: back_to,
            payload,
            ..
        } = back.signal
        else {
            panic!("not a message: {:?}", back.signal);
        };
        assert_eq!((back_to, payload.len()), (to, 1000));

        for garbage in [&b""[..], b"\xff\xff", &bytes[..bytes.len() / 2]] {
            assert!(decode(garbage).is_err());
        }
        let mut bad = frame;
        bad.node = "Not.A.Node".into();
        assert!(decode(&encode(&bad)).is_err());
    }
}

//! The Rust face of wasmhost's process ABI (`wit/wasmhost.wit`), shared by the host and the
//! guest SDK so that both speak of the same things with the same words and messages:
//!
//! - [`Pid`]: a process identifier, shown and carried in payloads as `{app:processes|0x00004}`;
//! - [`ExitReason`] and [`Event`]: why a process ended and what its monitors and links hear;
//! - [`SendError`], [`SpawnError`], [`RegisterError`], [`Denied`]: what `send`, `spawn`,
//!   `register` and the operations on other processes refuse, with the one message each is
//!   shown with;
//! - [`payload`]: payloads are CBOR (RFC 8949); how a pid and an exit reason look inside one
//!   is defined here and documented in the WIT, so any language can read and write them.
//!
//! ```
//! use wasmhost_types::{ExitReason, Pid, payload};
//!
//! let pid: Pid = "{app:processes|0x00004}".parse().unwrap();
//! assert_eq!(pid.id, 4);
//! // In a payload a pid is its text form, and an abnormal exit a one-entry map.
//! assert_eq!(payload::display(&payload::encode(&pid)), "{app:processes|0x00004}");
//! let reason = ExitReason::Trap("boom".into());
//! assert_eq!(payload::display(&payload::encode(&reason)), r#"{trap: "boom"}"#);
//! ```

mod errors;
mod exit;
pub mod payload;
mod pid;
pub mod transcode;

pub use errors::{Denied, Destination, RegisterError, SendError, SpawnError};
pub use exit::{Event, ExitReason};
pub use pid::{MAX_NODE_NAME, NodeId, ParsePidError, Pid};

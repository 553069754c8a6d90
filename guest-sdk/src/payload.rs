//! Payloads: serde values encoded as CBOR (RFC 8949), which the host can show in logs and
//! any language can decode.
//!
//! ```
//! use wasmhost_guest::payload;
//!
//! let bytes = payload::encode(&("echo", 3));
//! let back: (String, u32) = payload::decode(&bytes).unwrap();
//! assert_eq!(back, ("echo".to_string(), 3));
//! ```

pub use wasmhost_types::payload::{DecodeError, Raw, decode, display, encode};

/// Any payload value, for payloads of unknown shape.
pub use ciborium::Value;

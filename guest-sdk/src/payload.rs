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
//!
//! **Bytes.** serde writes a `Vec<u8>` or `[u8]` as a sequence, so CBOR gets an array of
//! integers: a byte each, plus a header byte for each one of 24 or more, and decoding it
//! reads them one by one. Send bytes as [`ByteBuf`] (owned) or [`Bytes`] (borrowed), or
//! mark a struct's field `#[serde(with = "wasmhost_guest::payload::serde_bytes")]`: one
//! CBOR byte string, copied whole, and what the Python, JavaScript and C libraries read as
//! bytes.
//!
//! ```
//! use wasmhost_guest::payload::{self, ByteBuf, Bytes};
//!
//! let data = [200u8; 32];
//! // A byte string: its header (0x58, length 32) and the bytes.
//! assert_eq!(payload::encode(&Bytes::new(&data)).len(), 2 + 32);
//! // An array: its header (0x98, 32), and each byte over 23 as two.
//! assert_eq!(payload::encode(&data.to_vec()).len(), 2 + 2 * 32);
//!
//! let back: ByteBuf = payload::decode(&payload::encode(&Bytes::new(&data))).unwrap();
//! assert_eq!(back.as_slice(), &data);
//! ```

pub use wasmhost_types::payload::{DecodeError, Raw, decode, display, encode};

/// Any payload value, for payloads of unknown shape.
pub use ciborium::Value;

/// Bytes as one CBOR byte string (see the module's documentation), and `serde_bytes` for
/// `#[serde(with = "wasmhost_guest::payload::serde_bytes")]` on a field.
pub use serde_bytes::{self, ByteBuf, Bytes};

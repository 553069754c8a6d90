//! Payloads: serde values encoded as CBOR (RFC 8949), which the host can show in logs and
//! any language can decode.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encodes `value` as a payload.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    // Serializing into a Vec only fails for values serde cannot represent at all
    // (e.g. a map with non-string keys that CBOR still takes); encode them as null.
    if ciborium::into_writer(value, &mut bytes).is_err() {
        bytes = vec![0xf6];
    }
    bytes
}

/// Decodes a payload into `T`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    ciborium::from_reader(bytes).map_err(|err| DecodeError(err.to_string()))
}

/// A payload that is not the expected type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot decode payload: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Any payload value, for payloads of unknown shape.
pub use ciborium::Value;

//! Payloads: one value encoded as CBOR (RFC 8949). Self-describing, so the host can show a
//! payload in a log line and any language can decode it.

use ciborium::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encodes `value` as a payload. A value serde cannot represent in CBOR at all is encoded as
/// null rather than lost silently in the middle of a message.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode payload: {0}")]
pub struct DecodeError(pub String);

/// The payload as an integer, if it is one.
pub fn as_integer(payload: &[u8]) -> Option<i64> {
    match decode::<Value>(payload).ok()? {
        Value::Integer(n) => i64::try_from(n).ok(),
        _ => None,
    }
}

/// A one-line rendering for people: strings bare at the top and quoted inside, maps as
/// `{k: v}`, bytes as hex.
pub fn display(payload: &[u8]) -> String {
    match decode::<Value>(payload) {
        Ok(value) => render(&value, true),
        Err(_) => format!("<{} bytes, not CBOR>", payload.len()),
    }
}

fn render(value: &Value, top: bool) -> String {
    match value {
        Value::Text(s) if top => s.clone(),
        Value::Text(s) => format!("{s:?}"),
        Value::Integer(n) => i128::from(*n).to_string(),
        Value::Float(x) => x.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Value::Array(items) => {
            let items: Vec<_> = items.iter().map(|v| render(v, false)).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Map(entries) => {
            let entries: Vec<_> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", render(k, true), render(v, false)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        Value::Tag(_, inner) => render(inner, top),
        _ => "?".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_render_readably() {
        assert_eq!(display(&encode(&0)), "0");
        assert_eq!(display(&encode(&"hi")), "hi");
        let map: std::collections::BTreeMap<&str, Vec<u8>> = [("a", vec![1u8])].into();
        assert_eq!(display(&encode(&map)), "{a: [1]}");
        assert_eq!(display(b"\xff\xff"), "<2 bytes, not CBOR>");
    }

    #[test]
    fn integers_are_recognised() {
        assert_eq!(as_integer(&encode(&3)), Some(3));
        assert_eq!(as_integer(&encode(&"3")), None);
    }
}

//! Payloads are CBOR (RFC 8949). The host decodes them only to show them to people.

use ciborium::Value;

/// Encodes a value as a payload.
pub fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail for the plain values the host encodes.
    let _ = ciborium::into_writer(value, &mut bytes);
    bytes
}

/// The payload as an integer, if it is one.
pub fn as_integer(payload: &[u8]) -> Option<i64> {
    match ciborium::from_reader::<Value, _>(payload).ok()? {
        Value::Integer(n) => i64::try_from(n).ok(),
        _ => None,
    }
}

/// A one-line rendering for logs: strings bare, maps as `{k: v}`, bytes as hex.
pub fn display(payload: &[u8]) -> String {
    match ciborium::from_reader::<Value, _>(payload) {
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

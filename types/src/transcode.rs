//! CBOR values moved between encoded bytes and serde without a tree in between.
//!
//! A payload came from another process, which may have made it as hostile as it liked:
//! eight mebibytes of one-byte integers decode into a `ciborium::Value` tree some forty times
//! that size. [`Walk`] serializes encoded bytes by walking them, item by item, straight into
//! any serializer; [`Capture`] writes whatever a deserializer hands it straight back out as
//! CBOR. Either holds at most the bytes it reads and one frame per level of nesting, and
//! nesting is bounded ([`MAX_DEPTH`]); what is not well-formed, or nested deeper, is an
//! error, never a panic.

use std::cell::RefCell;
use std::fmt;

use ciborium_ll::{Decoder, Encoder, Header};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, SerializeMap, SerializeSeq};
use serde::{Deserializer, Serialize, Serializer};

/// How deep arrays and maps may nest inside a value moved here.
pub const MAX_DEPTH: usize = 128;

/// Encoded CBOR, serialized as the value it encodes.
pub struct Walk<'a>(pub &'a [u8]);

impl Serialize for Walk<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let reader = RefCell::new(Reader {
            bytes: self.0,
            base: 0,
            decoder: Decoder::from(self.0),
        });
        Item {
            reader: &reader,
            depth: 0,
        }
        .serialize(serializer)
    }
}

/// Where the walk is. The decoder is made again after each string, which is taken as a
/// slice of `bytes` rather than copied through it.
struct Reader<'a> {
    bytes: &'a [u8],
    base: usize,
    decoder: Decoder<&'a [u8]>,
}

impl<'a> Reader<'a> {
    fn pull(&mut self) -> Result<Header, String> {
        loop {
            match self.decoder.pull() {
                Ok(Header::Tag(_)) => continue,
                Ok(header) => return Ok(header),
                Err(_) => return Err("not well-formed CBOR".into()),
            }
        }
    }

    /// The next `len` bytes, as a slice of the input.
    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let at = self.base + self.decoder.offset();
        let end = at
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or("a string longer than the payload")?;
        self.base = end;
        self.decoder = Decoder::from(&self.bytes[end..]);
        Ok(&self.bytes[at..end])
    }

    /// A whole byte or text string, joining the segments of an indefinite one.
    fn string(
        &mut self,
        len: Option<usize>,
        text: bool,
    ) -> Result<std::borrow::Cow<'a, [u8]>, String> {
        if let Some(len) = len {
            return self.take(len).map(std::borrow::Cow::Borrowed);
        }
        let mut joined = Vec::new();
        loop {
            match self.pull()? {
                Header::Break => return Ok(std::borrow::Cow::Owned(joined)),
                Header::Bytes(Some(len)) if !text => joined.extend_from_slice(self.take(len)?),
                Header::Text(Some(len)) if text => joined.extend_from_slice(self.take(len)?),
                _ => return Err("a broken indefinite-length string".into()),
            }
        }
    }

    /// Whether the next item of an indefinite-length container is its end.
    fn at_break(&mut self) -> Result<bool, String> {
        match self.pull()? {
            Header::Break => Ok(true),
            header => {
                self.decoder.push(header);
                Ok(false)
            }
        }
    }
}

/// The next item of the walk.
struct Item<'r, 'a> {
    reader: &'r RefCell<Reader<'a>>,
    depth: usize,
}

impl Item<'_, '_> {
    fn next(&self) -> Self {
        Item {
            reader: self.reader,
            depth: self.depth + 1,
        }
    }
}

impl Serialize for Item<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fail = |why: String| <S::Error as ser::Error>::custom(why);
        let header = self.reader.borrow_mut().pull().map_err(fail)?;
        let nested = matches!(header, Header::Array(_) | Header::Map(_));
        if nested && self.depth >= MAX_DEPTH {
            return Err(fail(format!("nested deeper than {MAX_DEPTH}")));
        }
        match header {
            Header::Positive(n) => serializer.serialize_u64(n),
            Header::Negative(n) => match i64::try_from(n) {
                Ok(n) => serializer.serialize_i64(-1 - n),
                Err(_) => serializer.serialize_i128(-1 - i128::from(n)),
            },
            Header::Float(x) => serializer.serialize_f64(x),
            Header::Simple(20) => serializer.serialize_bool(false),
            Header::Simple(21) => serializer.serialize_bool(true),
            Header::Simple(_) => serializer.serialize_unit(),
            Header::Bytes(len) => {
                let bytes = self.reader.borrow_mut().string(len, false).map_err(fail)?;
                serializer.serialize_bytes(&bytes)
            }
            Header::Text(len) => {
                let bytes = self.reader.borrow_mut().string(len, true).map_err(fail)?;
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| fail("text that is not UTF-8".into()))?;
                serializer.serialize_str(text)
            }
            Header::Array(len) => {
                let mut seq = serializer.serialize_seq(len)?;
                match len {
                    Some(len) => {
                        for _ in 0..len {
                            seq.serialize_element(&self.next())?;
                        }
                    }
                    None => {
                        while !self.reader.borrow_mut().at_break().map_err(fail)? {
                            seq.serialize_element(&self.next())?;
                        }
                    }
                }
                seq.end()
            }
            Header::Map(len) => {
                let mut map = serializer.serialize_map(len)?;
                match len {
                    Some(len) => {
                        for _ in 0..len {
                            map.serialize_entry(&self.next(), &self.next())?;
                        }
                    }
                    None => {
                        while !self.reader.borrow_mut().at_break().map_err(fail)? {
                            map.serialize_entry(&self.next(), &self.next())?;
                        }
                    }
                }
                map.end()
            }
            Header::Tag(_) | Header::Break => Err(fail("not well-formed CBOR".into())),
        }
    }
}

/// Writes what a deserializer hands it as CBOR into `out`: a value captured whole, whatever
/// its shape, without a tree in between.
pub struct Capture<'w> {
    pub out: &'w mut Vec<u8>,
    pub depth: usize,
}

impl Capture<'_> {
    fn header(&mut self, header: Header) {
        // Writing into a `Vec` cannot fail.
        let _ = Encoder::from(&mut *self.out).push(header);
    }

    /// Ends a container of `count` items whose header said `len`.
    fn close<E: de::Error>(&mut self, len: Option<usize>, count: usize) -> Result<(), E> {
        match len {
            None => {
                self.header(Header::Break);
                Ok(())
            }
            Some(len) if len == count => Ok(()),
            Some(len) => Err(E::custom(format!(
                "{count} items where {len} were announced"
            ))),
        }
    }

    fn nested(&mut self) -> Result<Capture<'_>, String> {
        if self.depth >= MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}"));
        }
        Ok(Capture {
            out: self.out,
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Capture<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Capture<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any CBOR value")
    }

    fn visit_bool<E: de::Error>(mut self, v: bool) -> Result<(), E> {
        self.header(Header::Simple(if v { 21 } else { 20 }));
        Ok(())
    }

    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<(), E> {
        self.header(Header::Positive(v));
        Ok(())
    }

    fn visit_i64<E: de::Error>(mut self, v: i64) -> Result<(), E> {
        match u64::try_from(v) {
            Ok(v) => self.header(Header::Positive(v)),
            Err(_) => self.header(Header::Negative((-1 - v) as u64)),
        }
        Ok(())
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<(), E> {
        let v = u64::try_from(v).map_err(|_| E::custom("an integer wider than 64 bits"))?;
        self.visit_u64(v)
    }

    fn visit_i128<E: de::Error>(mut self, v: i128) -> Result<(), E> {
        if let Ok(v) = i64::try_from(v) {
            return self.visit_i64(v);
        }
        let magnitude =
            u64::try_from(-1 - v).map_err(|_| E::custom("an integer wider than 64 bits"))?;
        self.header(Header::Negative(magnitude));
        Ok(())
    }

    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<(), E> {
        self.header(Header::Float(v));
        Ok(())
    }

    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<(), E> {
        self.header(Header::Text(Some(v.len())));
        self.out.extend_from_slice(v.as_bytes());
        Ok(())
    }

    fn visit_bytes<E: de::Error>(mut self, v: &[u8]) -> Result<(), E> {
        self.header(Header::Bytes(Some(v.len())));
        self.out.extend_from_slice(v);
        Ok(())
    }

    fn visit_none<E: de::Error>(mut self) -> Result<(), E> {
        self.header(Header::Simple(22));
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    // A length the deserializer knows (CBOR's own, for a definite-length item) is written as
    // it was, so a value comes out as the bytes it went in as; it is checked as items come.
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let len = seq.size_hint();
        self.header(Header::Array(len));
        let mut count = 0;
        loop {
            let item = self.nested().map_err(de::Error::custom)?;
            if seq.next_element_seed(item)?.is_none() {
                break;
            }
            count += 1;
        }
        self.close(len, count)
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let len = map.size_hint();
        self.header(Header::Map(len));
        let mut count = 0;
        loop {
            let key = self.nested().map_err(de::Error::custom)?;
            if map.next_key_seed(key)?.is_none() {
                break;
            }
            let value = self.nested().map_err(de::Error::custom)?;
            map.next_value_seed(value)?;
            count += 1;
        }
        self.close(len, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{decode, encode};
    use ciborium::Value;

    /// `bytes` walked into CBOR again, through serde.
    fn through_raw(bytes: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        ciborium::into_writer(&Walk(bytes), &mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    fn through_capture(bytes: &[u8]) -> Vec<u8> {
        struct Whole(Vec<u8>);
        impl<'de> serde::Deserialize<'de> for Whole {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let mut out = Vec::new();
                Capture {
                    out: &mut out,
                    depth: 0,
                }
                .deserialize(d)?;
                Ok(Whole(out))
            }
        }
        decode::<Whole>(bytes).expect("captured").0
    }

    #[test]
    fn values_come_through_both_ways_as_the_same_values() {
        let values = [
            encode(&0),
            encode(&-1_000_000_000_000i64),
            encode(&u64::MAX),
            encode(&1.5),
            encode(&"text"),
            encode(&(true, (), [1u8, 2])),
            encode(&Value::Bytes(vec![0, 255])),
            encode(&Value::Map(vec![(
                Value::Integer(1.into()),
                Value::Text("x".into()),
            )])),
            encode(&Value::Integer((-(1i128 << 64)).try_into().expect("fits"))),
        ];
        for bytes in values {
            let value = decode::<Value>(&bytes).expect("decodes");
            let raw = through_raw(&bytes).expect("walks");
            assert_eq!(decode::<Value>(&raw).expect("decodes"), value);
            let captured = through_capture(&bytes);
            assert_eq!(decode::<Value>(&captured).expect("decodes"), value);
        }
    }

    #[test]
    fn indefinite_lengths_and_tags_come_through() {
        // [_ 1, (_ "a" "b")] tagged 32, and {_ "k": h''}
        let bytes = [
            0xd8, 0x20, 0x9f, 0x01, 0x7f, 0x61, b'a', 0x61, b'b', 0xff, 0xff,
        ];
        let value = decode::<Value>(&through_raw(&bytes).expect("walks")).expect("decodes");
        assert_eq!(
            value,
            Value::Array(vec![Value::Integer(1.into()), Value::Text("ab".into())])
        );
        let map = [0xbf, 0x61, b'k', 0x40, 0xff];
        let value = decode::<Value>(&through_raw(&map).expect("walks")).expect("decodes");
        assert_eq!(
            value,
            Value::Map(vec![(Value::Text("k".into()), Value::Bytes(vec![]))])
        );
    }

    #[test]
    fn a_large_value_is_walked_without_a_tree() {
        // Eight mebibytes of zeros: 8 Mi items, which a `Value` tree would hold in ~400 MiB.
        let mut bytes = vec![0x9a, 0x00, 0x80, 0x00, 0x00];
        bytes.resize(bytes.len() + (8 << 20), 0x00);
        let raw = through_raw(&bytes).expect("walks");
        assert_eq!(raw, bytes);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let deep = vec![0x81u8; 100_000];
        assert!(through_raw(&deep).unwrap_err().contains("nested deeper"));
        assert!(through_raw(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(
            through_raw(&[0x62, 0xff, 0xfe])
                .unwrap_err()
                .contains("UTF-8")
        );
        assert!(through_raw(&[0x82, 0x01]).is_err(), "cut short");
    }
}

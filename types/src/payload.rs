//! Payloads: one value encoded as CBOR (RFC 8949). Self-describing, so the host can show a
//! payload in a log line and any language can decode it.
//!
//! Showing a payload to people ([`display`], [`display_within`]) never recurses and does
//! bounded work: it walks the encoding with an explicit stack, stops at a depth and an output
//! length, and escapes control characters, so a guest cannot exhaust the host's stack or
//! forge a log line with the payloads it sends.

use std::borrow::Cow;
use std::fmt::Write;

use ciborium_ll::{Decoder, Header};
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

/// A payload kept as its CBOR bytes: serialized as the value they encode (walked, never
/// decoded into a tree) and deserialized by capturing a value's bytes as they are read. For
/// what a process forwards, logs or keeps without looking inside — another process's data,
/// as large and as deep as it liked.
///
/// ```
/// use serde::Deserialize;
/// use wasmhost_types::payload::{self, Raw};
///
/// #[derive(Deserialize)]
/// struct Job {
///     id: u32,
///     data: Raw, // left as CBOR
/// }
///
/// let bytes = payload::encode(&serde_json_like());
/// # fn serde_json_like() -> std::collections::BTreeMap<&'static str, ciborium::Value> {
/// #     [("id", 7.into()), ("data", vec![ciborium::Value::from(1), 2.into()].into())].into()
/// # }
/// let job: Job = payload::decode(&bytes).unwrap();
/// assert_eq!(job.id, 7);
/// assert_eq!(payload::display(&job.data.0), "[1, 2]");
/// assert_eq!(payload::encode(&job.data), job.data.0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Raw(pub Vec<u8>);

impl Serialize for Raw {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::transcode::Walk(&self.0).serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Raw {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::DeserializeSeed;
        let mut out = Vec::new();
        crate::transcode::Capture {
            out: &mut out,
            depth: 0,
        }
        .deserialize(deserializer)?;
        Ok(Raw(out))
    }
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
    match Decoder::from(payload).pull().ok()? {
        Header::Positive(n) => i64::try_from(n).ok(),
        Header::Negative(n) => i64::try_from(n).ok().map(|n| -1 - n),
        _ => None,
    }
}

/// How deep [`display`] follows nested arrays and maps before it writes `…`.
pub const DISPLAY_DEPTH: usize = 32;

/// A one-line rendering for people: strings bare at the top and as map keys, quoted inside;
/// maps as `{k: v}`, arrays as `[a, b]`, bytes as hex.
pub fn display(payload: &[u8]) -> String {
    display_within(payload, usize::MAX)
}

/// Like [`display`], but at most about `max` bytes long: a longer rendering is cut and ends
/// with `…`. The work done is bounded by `max` too, whatever the payload's size.
pub fn display_within(payload: &[u8], max: usize) -> String {
    let mut renderer = Renderer {
        decoder: Decoder::from(payload),
        payload,
        base: 0,
        out: String::new(),
        stack: Vec::new(),
        max,
    };
    match renderer.run() {
        Ok(()) => renderer.out,
        Err(Invalid) => format!("<{} bytes, not CBOR>", payload.len()),
    }
}

/// `text` with its control characters (newlines, escapes, …) written as escapes, so it
/// stays on one line and cannot move a terminal's cursor.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    push_printable(&mut out, text);
    Cow::Owned(out)
}

fn push_printable(out: &mut String, text: &str) {
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
}

/// The input is not well-formed CBOR.
struct Invalid;

/// An array or map being rendered: how many items are left (`None` until a break, for
/// indefinite lengths) and how many are done. A map's items are its keys and values.
struct Frame {
    map: bool,
    left: Option<u64>,
    done: u64,
}

struct Renderer<'a> {
    decoder: Decoder<&'a [u8]>,
    payload: &'a [u8],
    /// Where in `payload` the decoder started (it is made again after a skip).
    base: usize,
    out: String,
    stack: Vec<Frame>,
    max: usize,
}

impl Renderer<'_> {
    fn run(&mut self) -> Result<(), Invalid> {
        loop {
            // Close the containers whose items are all done.
            while self.stack.last().is_some_and(|f| f.left == Some(0)) {
                self.close();
            }
            if self.stack.is_empty() && !self.out.is_empty() {
                return Ok(());
            }
            match self.item() {
                Ok(Some(())) => {}
                Ok(None) => return Ok(()),
                Err(Step::Invalid) => return Err(Invalid),
                Err(Step::Full) => {
                    self.cut();
                    return Ok(());
                }
            }
        }
    }

    /// Renders the next item, or opens the next container. `None` when the value is done.
    fn item(&mut self) -> Result<Option<()>, Step> {
        let mut header = self.decoder.pull().map_err(|_| Step::Invalid)?;
        while let Header::Tag(_) = header {
            header = self.decoder.pull().map_err(|_| Step::Invalid)?;
        }
        if let Header::Break = header {
            match self.stack.last() {
                Some(frame) if frame.left.is_none() => {
                    if let Some(frame) = self.stack.last_mut() {
                        frame.left = Some(0);
                    }
                    return Ok(Some(()));
                }
                _ => return Err(Step::Invalid),
            }
        }
        let bare = self.bare_position();
        self.separator();
        match header {
            Header::Positive(n) => self.write(format_args!("{n}")),
            Header::Negative(n) => self.write(format_args!("{}", -1 - i128::from(n))),
            Header::Float(x) => self.write(format_args!("{x}")),
            Header::Simple(20) => self.write(format_args!("false")),
            Header::Simple(21) => self.write(format_args!("true")),
            Header::Simple(22) => self.write(format_args!("null")),
            Header::Simple(_) => self.write(format_args!("?")),
            Header::Bytes(len) => self.string(len, false, false),
            Header::Text(len) => self.string(len, true, bare),
            Header::Array(len) => {
                self.open('[', false, len.map(|n| n as u64))?;
                return Ok(Some(()));
            }
            Header::Map(len) => {
                self.open('{', true, len.map(|n| (n as u64).saturating_mul(2)))?;
                return Ok(Some(()));
            }
            Header::Tag(_) | Header::Break => Err(Step::Invalid),
        }?;
        self.item_done();
        Ok(if self.stack.is_empty() {
            None
        } else {
            Some(())
        })
    }

    /// Text at the top and as a map key is shown bare; inside, quoted.
    fn bare_position(&self) -> bool {
        match self.stack.last() {
            None => true,
            Some(frame) => frame.map && frame.done % 2 == 0,
        }
    }

    fn separator(&mut self) {
        if let Some(frame) = self.stack.last() {
            let sep = match (frame.map, frame.done) {
                (_, 0) => "",
                (true, n) if n % 2 == 1 => ": ",
                _ => ", ",
            };
            self.out.push_str(sep);
        }
    }

    fn item_done(&mut self) {
        if let Some(frame) = self.stack.last_mut() {
            frame.done += 1;
            if let Some(left) = &mut frame.left {
                *left = left.saturating_sub(1);
            }
        }
    }

    fn open(&mut self, bracket: char, map: bool, left: Option<u64>) -> Result<(), Step> {
        if self.stack.len() >= DISPLAY_DEPTH {
            return Err(Step::Full);
        }
        self.out.push(bracket);
        self.stack.push(Frame { map, left, done: 0 });
        self.check()
    }

    fn close(&mut self) {
        if let Some(frame) = self.stack.pop() {
            self.out.push(if frame.map { '}' } else { ']' });
            self.item_done();
        }
    }

    fn write(&mut self, args: std::fmt::Arguments) -> Result<(), Step> {
        let _ = self.out.write_fmt(args);
        self.check()
    }

    /// A byte or text string, whole or in segments (indefinite length). Only what can still
    /// be shown is read; the rest is skipped, so a 30 MiB string costs what a short one does.
    fn string(&mut self, len: Option<usize>, text: bool, bare: bool) -> Result<(), Step> {
        // Hex takes two characters a byte; text at most one a byte, before escapes, and a
        // character cut in two is dropped.
        let room = self.max.saturating_sub(self.out.len());
        let want = if text {
            room.saturating_add(4)
        } else {
            room / 2 + 1
        };
        let mut bytes = Vec::new();
        let mut cut = false;
        match len {
            Some(len) => cut |= self.read(len, &mut bytes, want)?,
            None => loop {
                let want = want.saturating_sub(bytes.len());
                match self.decoder.pull().map_err(|_| Step::Invalid)? {
                    Header::Break => break,
                    Header::Bytes(Some(len)) if !text => cut |= self.read(len, &mut bytes, want)?,
                    Header::Text(Some(len)) if text => cut |= self.read(len, &mut bytes, want)?,
                    _ => return Err(Step::Invalid),
                }
            },
        }
        if !text {
            for b in &bytes {
                let _ = write!(self.out, "{b:02x}");
            }
        } else {
            let text = match std::str::from_utf8(&bytes) {
                Ok(text) => text,
                // Only the end of a string cut short may be a character cut in two.
                Err(err) if cut && err.error_len().is_none() => {
                    std::str::from_utf8(&bytes[..err.valid_up_to()]).map_err(|_| Step::Invalid)?
                }
                Err(_) => return Err(Step::Invalid),
            };
            if bare {
                push_printable(&mut self.out, text);
            } else {
                let _ = write!(self.out, "{text:?}");
            }
        }
        if cut {
            return Err(Step::Full);
        }
        self.check()
    }

    /// Reads the first `want` of `len` bytes and skips the rest; true if it skipped any.
    /// Lengths the input cannot hold are refused (a header claiming an enormous string
    /// allocates nothing).
    fn read(&mut self, len: usize, into: &mut Vec<u8>, want: usize) -> Result<bool, Step> {
        let offset = self.base + self.decoder.offset();
        if len > self.payload.len().saturating_sub(offset) {
            return Err(Step::Invalid);
        }
        let keep = len.min(want);
        into.extend_from_slice(&self.payload[offset..offset + keep]);
        // The decoder holds nothing read ahead between items: it can start again past the
        // string.
        self.base = offset + len;
        self.decoder = Decoder::from(&self.payload[self.base..]);
        Ok(keep < len)
    }

    fn check(&self) -> Result<(), Step> {
        if self.out.len() > self.max {
            Err(Step::Full)
        } else {
            Ok(())
        }
    }

    /// Cuts the rendering at `max` (on a character boundary) and marks it.
    fn cut(&mut self) {
        let mut end = self.max.min(self.out.len());
        while !self.out.is_char_boundary(end) {
            end -= 1;
        }
        self.out.truncate(end);
        self.out.push('…');
    }
}

/// Why rendering stopped early: the input is not CBOR, or the rendering is long enough.
enum Step {
    Invalid,
    Full,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_render_readably() {
        assert_eq!(display(&encode(&0)), "0");
        assert_eq!(display(&encode(&-5)), "-5");
        assert_eq!(display(&encode(&"hi")), "hi");
        let map: std::collections::BTreeMap<&str, Vec<u8>> = [("a", vec![1u8])].into();
        assert_eq!(display(&encode(&map)), "{a: [1]}");
        assert_eq!(display(&encode(&("x", true, ()))), r#"["x", true, null]"#);
        assert_eq!(display(&encode(&serde_bytes_like())), "0aff");
        assert_eq!(display(b"\xff\xff"), "<2 bytes, not CBOR>");
        assert_eq!(display(&encode(&Vec::<u8>::new())), "[]");
    }

    fn serde_bytes_like() -> ciborium::Value {
        ciborium::Value::Bytes(vec![0x0a, 0xff])
    }

    #[test]
    fn indefinite_lengths_render_like_definite_ones() {
        // [_ 1, [_ 2]] and (_ "ab" "c") and {_ "k": 1}
        assert_eq!(display(&[0x9f, 0x01, 0x9f, 0x02, 0xff, 0xff]), "[1, [2]]");
        assert_eq!(display(&[0x7f, 0x62, b'a', b'b', 0x61, b'c', 0xff]), "abc");
        assert_eq!(display(&[0xbf, 0x61, b'k', 0x01, 0xff]), "{k: 1}");
    }

    #[test]
    fn control_characters_are_escaped_so_a_line_stays_a_line() {
        assert_eq!(display(&encode(&"a\nb")), "a\\nb");
        assert_eq!(display(&encode(&["a\nb"])), r#"["a\nb"]"#);
        assert_eq!(printable("x\x1b[2Jy"), "x\\u{1b}[2Jy");
        assert_eq!(printable("plain"), "plain");
    }

    #[test]
    fn deep_nesting_is_cut_without_recursion() {
        // 100 000 nested arrays: a recursive renderer would exhaust its stack.
        let deep = vec![0x81u8; 100_000];
        let shown = display(&deep);
        assert!(shown.starts_with("[[[["), "{shown}");
        assert!(shown.ends_with('…'), "{shown}");
        assert!(shown.len() < 100, "{shown}");
    }

    #[test]
    fn a_rendering_stops_at_its_length() {
        let big = encode(&vec![7u32; 100_000]);
        let shown = display_within(&big, 20);
        assert_eq!(shown, "[7, 7, 7, 7, 7, 7, 7…");
        // A string claiming more bytes than the payload holds is not CBOR, and costs nothing.
        assert_eq!(
            display(&[0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            "<9 bytes, not CBOR>"
        );
    }

    #[test]
    fn a_huge_string_is_read_only_as_far_as_it_is_shown() {
        let bytes = encode(&ciborium::Value::Bytes(vec![0xab; 30 << 20]));
        let shown = display_within(&bytes, 16);
        assert_eq!(shown, "abababababababab…");
        let text = encode(&"é".repeat(1 << 20));
        let shown = display_within(&text, 5);
        assert_eq!(shown, "éé…", "a character cut in two is dropped");
        // Inside a container, and in segments: (_ h'0102' h'0304'), then 7.
        let segments = [0x82, 0x5f, 0x42, 1, 2, 0x42, 3, 4, 0xff, 0x07];
        assert_eq!(display(&segments), "[01020304, 7]");
        assert_eq!(display_within(&segments, 4), "[010…");
        // A string that claims more than the payload holds is still refused.
        let mut short = encode(&ciborium::Value::Bytes(vec![1; 100]));
        short.truncate(50);
        assert_eq!(display_within(&short, 8), "<50 bytes, not CBOR>");
    }

    #[test]
    fn integers_are_recognised() {
        assert_eq!(as_integer(&encode(&3)), Some(3));
        assert_eq!(as_integer(&encode(&-3)), Some(-3));
        assert_eq!(as_integer(&encode(&"3")), None);
    }
}

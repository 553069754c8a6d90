//! Structured logging through the host: `logger::info("stats", fields! { messages: n })`.
//! Lines are tagged with this process's pid and entry.

use crate::bindings::wasmhost::abi::logger::{self as abi, Level};

/// Log fields, made with [`fields!`](crate::fields): keys and CBOR-encoded values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<(String, Vec<u8>)>);

impl From<Vec<(&str, Vec<u8>)>> for Fields {
    fn from(pairs: Vec<(&str, Vec<u8>)>) -> Self {
        Fields(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
}

impl From<()> for Fields {
    fn from(_: ()) -> Self {
        Fields::default()
    }
}

fn log(level: Level, message: &str, fields: Fields) {
    abi::log(level, message, &fields.0);
}

pub fn trace(message: &str, fields: impl Into<Fields>) {
    log(Level::Trace, message, fields.into());
}

pub fn debug(message: &str, fields: impl Into<Fields>) {
    log(Level::Debug, message, fields.into());
}

pub fn info(message: &str, fields: impl Into<Fields>) {
    log(Level::Info, message, fields.into());
}

pub fn warn(message: &str, fields: impl Into<Fields>) {
    log(Level::Warn, message, fields.into());
}

pub fn error(message: &str, fields: impl Into<Fields>) {
    log(Level::Error, message, fields.into());
}

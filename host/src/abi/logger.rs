//! `wasmhost:abi/logger`: a guest's log lines go through the host's `tracing`, tagged with
//! the process's pid and entry, fields rendered `key=value`.

use std::fmt::Write;

use wasmtime::component::Linker;

use super::HasProcess;
use super::bindings::logger::{self as wit, Host, Level};
use crate::runtime::{ProcessCtxView, ProcessView};
use wasmhost_types::payload;

pub fn add_to_linker<T: ProcessView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasProcess>(linker, T::process)
}

type Result<T> = wasmtime::Result<T>;

impl Host for ProcessCtxView<'_> {
    fn log(&mut self, level: Level, message: String, fields: Vec<(String, Vec<u8>)>) -> Result<()> {
        // Rendering the fields decodes CBOR: skip it for lines nobody will see.
        if !self.enabled(level)? {
            return Ok(());
        }
        let mut line = message;
        for (key, value) in &fields {
            let _ = write!(line, " {key}={}", payload::display(value));
        }
        let pid = self.ctx.pid();
        let entry = self.ctx.entry();
        match level {
            Level::Trace => tracing::trace!(target: "guest", "{pid} {entry}: {line}"),
            Level::Debug => tracing::debug!(target: "guest", "{pid} {entry}: {line}"),
            Level::Info => tracing::info!(target: "guest", "{pid} {entry}: {line}"),
            Level::Warn => tracing::warn!(target: "guest", "{pid} {entry}: {line}"),
            Level::Error => tracing::error!(target: "guest", "{pid} {entry}: {line}"),
        }
        Ok(())
    }

    fn enabled(&mut self, level: Level) -> Result<bool> {
        Ok(match level {
            Level::Trace => tracing::enabled!(target: "guest", tracing::Level::TRACE),
            Level::Debug => tracing::enabled!(target: "guest", tracing::Level::DEBUG),
            Level::Info => tracing::enabled!(target: "guest", tracing::Level::INFO),
            Level::Warn => tracing::enabled!(target: "guest", tracing::Level::WARN),
            Level::Error => tracing::enabled!(target: "guest", tracing::Level::ERROR),
        })
    }
}

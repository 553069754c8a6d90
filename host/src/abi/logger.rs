//! `wasmhost:abi/logger`: a guest's log lines go through the host's `tracing`, tagged with
//! the process's pid and entry, within the bounds the runtime keeps (`runtime/log.rs`).

use wasmtime::component::Linker;

use super::HasProcess;
use super::bindings::logger::{self as wit, Host, Level};
use crate::runtime::{ProcessCtxView, ProcessView, guest_log_enabled};

pub fn add_to_linker<T: ProcessView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasProcess>(linker, T::process)
}

fn level(level: Level) -> tracing::Level {
    match level {
        Level::Trace => tracing::Level::TRACE,
        Level::Debug => tracing::Level::DEBUG,
        Level::Info => tracing::Level::INFO,
        Level::Warn => tracing::Level::WARN,
        Level::Error => tracing::Level::ERROR,
    }
}

impl Host for ProcessCtxView<'_> {
    fn log(
        &mut self,
        at: Level,
        message: String,
        fields: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<()> {
        self.ctx.log(level(at), &message, &fields);
        Ok(())
    }

    fn enabled(&mut self, at: Level) -> wasmtime::Result<bool> {
        Ok(guest_log_enabled(level(at)))
    }
}

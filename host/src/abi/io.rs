//! `wasmhost:abi/io`: the terminal, for the process bound to it. A process elsewhere that
//! was granted `io` prints into the log and reads end of input.

use wasmtime::component::Linker;

use super::HasProcess;
use super::bindings::io::{self as wit, Host};
use crate::runtime::{ProcessCtxView, ProcessView};

pub fn add_to_linker<T: ProcessView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasProcess>(linker, T::process)
}

type Result<T> = wasmtime::Result<T>;

impl ProcessCtxView<'_> {
    /// Output of a process that is not on the terminal goes to the log, within its bounds.
    fn output(&mut self, text: &str, stream: &str) {
        self.ctx
            .log(tracing::Level::INFO, &format!("{stream}: {text}"), &[]);
    }
}

impl Host for ProcessCtxView<'_> {
    fn print(&mut self, text: String) -> Result<()> {
        match self.ctx.terminal() {
            Some(terminal) => terminal.print(&text),
            None => self.output(&text, "stdout"),
        }
        Ok(())
    }

    fn write(&mut self, text: String) -> Result<()> {
        match self.ctx.terminal() {
            Some(terminal) => terminal.write(&text),
            None => self.output(&text, "stdout"),
        }
        Ok(())
    }

    fn eprint(&mut self, text: String) -> Result<()> {
        match self.ctx.terminal() {
            Some(terminal) => terminal.eprint(&text),
            None => self.output(&text, "stderr"),
        }
        Ok(())
    }

    async fn readline(&mut self) -> Result<Option<String>> {
        Ok(match self.ctx.terminal() {
            Some(terminal) => terminal.readline().await,
            None => None,
        })
    }

    fn color(&mut self) -> Result<bool> {
        Ok(self.ctx.terminal().is_some_and(|t| t.color()))
    }
}

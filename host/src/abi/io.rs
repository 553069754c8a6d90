//! `wasmhost:abi/io`: the terminal, for the process bound to it. A process elsewhere that
//! was granted `io` prints into the log and reads end of input.

use super::bindings::io::Host;
use crate::runtime::ProcessState;

type Result<T> = wasmtime::Result<T>;

impl ProcessState {
    fn on_terminal(&self) -> bool {
        self.node.terminal.is_bound_to(self.me.pid.id)
    }

    fn output(&self, text: &str, stream: &str) {
        let pid = &self.me.pid;
        tracing::info!(target: "guest", "{pid} {}: {stream}: {text}", self.me.entry);
    }
}

impl Host for ProcessState {
    fn print(&mut self, text: String) -> Result<()> {
        if self.on_terminal() {
            self.node.terminal.print(&text);
        } else {
            self.output(&text, "stdout");
        }
        Ok(())
    }

    fn write(&mut self, text: String) -> Result<()> {
        if self.on_terminal() {
            self.node.terminal.write(&text);
        } else {
            self.output(&text, "stdout");
        }
        Ok(())
    }

    fn eprint(&mut self, text: String) -> Result<()> {
        if self.on_terminal() {
            self.node.terminal.eprint(&text);
        } else {
            self.output(&text, "stderr");
        }
        Ok(())
    }

    async fn readline(&mut self) -> Result<Option<String>> {
        if !self.on_terminal() {
            return Ok(None);
        }
        Ok(self.node.terminal.readline().await)
    }

    fn color(&mut self) -> Result<bool> {
        Ok(self.on_terminal() && self.node.terminal.color())
    }
}

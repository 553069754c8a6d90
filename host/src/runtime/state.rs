//! The data of a process's store: WASI's context, the resource table, and the links back
//! to the node. Host interfaces (`crate::abi`) are implemented on this type.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::Node;
use super::process::Process;

pub struct ProcessState {
    pub node: Arc<Node>,
    pub me: Arc<Process>,
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    /// The guest's stderr (outside the terminal), kept to explain a panic.
    pub stderr: Option<super::stderr::StderrTail>,
    /// Set when the process broke a limit; the trap that follows is reported as this.
    pub limit_broken: Option<String>,
    /// Epoch ticks the process has run for, against its cpu limit.
    pub cpu_ticks: u64,
}

impl WasiView for ProcessState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Enforces the process's memory limit and records why growth was refused.
impl ResourceLimiter for ProcessState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let limit = self.me.limits.memory;
        if desired as u64 > limit {
            let message = format!(
                "memory: growing linear memory from {current} to {desired} bytes exceeds the limit of {limit} bytes"
            );
            self.limit_broken = Some(message.clone());
            return Err(wasmtime::Error::msg(message));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

//! Helpers for the runtime's unit tests: processes made by hand, without programs.

use std::sync::Arc;

use super::Node;
use crate::runtime::process::Process;
use wasmhost_types::Pid;

/// A process registered by hand in a node (which needs no programs for it).
pub fn test_process(node: &Arc<Node>, parent: Option<&Arc<Process>>) -> Arc<Process> {
    let id = node.table.next_id();
    let process = Arc::new(Process::new(
        Pid::new("test:host", id),
        (Arc::from("test:entry"), Arc::default()),
        Arc::new(node.defaults.clone()),
        (parent, None),
        &node.ledger,
    ));
    node.table.insert(process.clone());
    process
}

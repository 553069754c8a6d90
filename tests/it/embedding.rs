//! Embedding wasmhost: an application builds a node with host interfaces of its own. Here a
//! test replaces the standard `logger` with one that records lines — keeping them in the
//! node's state for it and counting each process's lines in that process's state, with no
//! statics, charging what it keeps to the process and bounding how many lines each may
//! record — and with one that panics (a bug in a host interface), and runs the echo relay —
//! which logs — on each.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use wasmhost::abi::bindings::logger::{Host, Level};

use wasmhost::payload;
use wasmhost::runtime::{
    Charge, Destination, ExitReason, HostInterface, Node, NodeConfig, ProcessState, Provides,
    SpawnOptions,
};
use wasmhost::wasmtime::component::{HasData, Linker};

const HOST: &str = "app:processes";

/// A node for the echo app whose `logger` interface is `logger`, with `state` for it.
fn echo_node(logger: HostInterface, state: Recorded) -> Arc<Node> {
    common::build_guests();
    let app = common::load(&common::repo().join("guests/echo"));
    Node::builder(app)
        .config(NodeConfig::default())
        .interfaces(wasmhost::abi::INTERFACES)
        .interfaces(&[logger])
        .state(state)
        .build()
        .unwrap_or_else(|err| panic!("{err}"))
}

/// The recording logger's state of the node's: the lines it received, each with the number
/// its process gave it, a signal for each, and how many lines a process may record (its
/// bound of its own, as the node's limits are).
#[derive(Default)]
struct Recorded {
    lines: Mutex<Vec<(u64, String)>>,
    logged: Notify,
    most: Option<u64>,
}

/// The recording logger's state of each process's: how many lines it logged, and the
/// receipts of what it keeps for them, charged to the process until it ends.
#[derive(Default)]
struct Logged {
    count: u64,
    receipts: Vec<Charge>,
}

/// A logger that keeps what it is given, numbering each process's lines.
struct Recording<'a>(&'a mut ProcessState);

/// Says that the recording logger works on a `Recording` made from the process's state.
struct HasRecording;

impl HasData for HasRecording {
    type Data<'a> = Recording<'a>;
}

impl Host for Recording<'_> {
    fn log(
        &mut self,
        _level: Level,
        message: String,
        _fields: Vec<(String, Vec<u8>)>,
    ) -> wasmhost::wasmtime::Result<()> {
        let Some(recorded) = self.0.node_state::<Recorded>() else {
            return Err(wasmhost::wasmtime::Error::msg(
                "the node has no Recorded state",
            ));
        };
        let count = self.0.process_state::<Logged>().count;
        if recorded.most.is_some_and(|most| count >= most) {
            let message = format!("lines: {count} recorded, its limit");
            return Err(self.0.break_limit(message));
        }
        let receipt = self.0.hold(message.len() as u64)?;
        let logged = self.0.process_state::<Logged>();
        logged.count += 1;
        logged.receipts.push(receipt);
        recorded
            .lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((logged.count, message));
        recorded.logged.notify_one();
        Ok(())
    }

    fn enabled(&mut self, _level: Level) -> wasmhost::wasmtime::Result<bool> {
        Ok(true)
    }
}

/// Waits (up to 20 s) until the recorded lines satisfy `done`, and returns them.
async fn recorded_until(
    recorded: &Recorded,
    done: impl Fn(&[(u64, String)]) -> bool,
) -> Vec<(u64, String)> {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let logged = recorded.logged.notified();
            let lines = recorded
                .lines
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if done(&lines) {
                return lines;
            }
            logged.await;
        }
    })
    .await
    .expect("the lines reach the recording logger")
}

/// The exit reason `exit` reports, within 20 s.
async fn ended(exit: oneshot::Receiver<ExitReason>) -> ExitReason {
    tokio::time::timeout(Duration::from_secs(20), exit)
        .await
        .expect("the process ends")
        .expect("its exit is reported")
}

fn link_recording(linker: &mut Linker<ProcessState>) -> wasmhost::wasmtime::Result<()> {
    wasmhost::abi::bindings::logger::add_to_linker::<ProcessState, HasRecording>(linker, |state| {
        Recording(state)
    })
}

/// A logger with a bug: it panics.
struct Panicking;

impl HasData for Panicking {
    type Data<'a> = Panicking;
}

impl Host for Panicking {
    fn log(
        &mut self,
        _level: Level,
        _message: String,
        _fields: Vec<(String, Vec<u8>)>,
    ) -> wasmhost::wasmtime::Result<()> {
        panic!("the logger broke")
    }

    fn enabled(&mut self, _level: Level) -> wasmhost::wasmtime::Result<bool> {
        Ok(true)
    }
}

fn link_panicking(linker: &mut Linker<ProcessState>) -> wasmhost::wasmtime::Result<()> {
    wasmhost::abi::bindings::logger::add_to_linker::<ProcessState, Panicking>(linker, |_| Panicking)
}

fn logger(link: wasmhost::runtime::LinkFn) -> HostInterface {
    HostInterface {
        module: Some("logger"),
        provides: Provides::Interface("wasmhost:abi/logger"),
        link: Some(link),
        about: "a logger of the test's",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedder_can_give_processes_a_host_interface_of_its_own() {
    let node = echo_node(logger(link_recording), Recorded::default());
    let recorded = node
        .state::<Recorded>()
        .expect("the node keeps the logger's state");
    let (tx, exit) = oneshot::channel();
    let relay = node
        .spawn(SpawnOptions::new("app:relay", HOST).on_exit(tx))
        .expect("spawning the relay");
    let lines = recorded_until(&recorded, |lines| {
        lines.iter().any(|(_, line)| line == "relay started")
    })
    .await;
    // The relay's first line is its first: the process's own count says so.
    assert_eq!(lines.first(), Some(&(1, "relay started".to_string())));
    node.cancel(&relay, "done".into(), Duration::from_secs(5));
    assert_eq!(
        exit.await.expect("an exit"),
        ExitReason::Normal(payload::encode(&0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_of_an_embedders_interface_ends_the_process_that_passes_it() {
    let recorded = Recorded {
        most: Some(1),
        ..Recorded::default()
    };
    let node = echo_node(logger(link_recording), recorded);
    let (tx, exit) = oneshot::channel();
    node.spawn(SpawnOptions::new("app:relay", HOST).on_exit(tx))
        .expect("spawning the relay");
    let relay = node.state::<Recorded>().expect("the logger's state");
    recorded_until(&relay, |lines| !lines.is_empty()).await;
    // `!crash` makes the relay log a second line, one more than it may record.
    let echo: std::collections::BTreeMap<&str, &str> =
        [("sender", "{app:processes|0x00001}"), ("data", "!crash")].into();
    node.send(
        &Destination::Name("relay".into()),
        "echo".into(),
        payload::encode(&echo),
    )
    .expect("the relay takes the message");
    assert_eq!(
        ended(exit).await,
        ExitReason::Limit("lines: 1 recorded, its limit".into())
    );
    assert_eq!(
        relay.lines.lock().unwrap_or_else(|e| e.into_inner()).len(),
        1,
        "the line past the bound is not recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_host_interface_ends_only_the_process_that_called_it() {
    let node = echo_node(logger(link_panicking), Recorded::default());
    let (tx, exit) = oneshot::channel();
    node.spawn(SpawnOptions::new("app:relay", HOST).on_exit(tx))
        .expect("spawning the relay");
    assert_eq!(
        ended(exit).await,
        ExitReason::Trap("host panic: the logger broke".into())
    );
    assert_eq!(node.lookup("relay"), None, "the name it took is free again");

    // The node goes on: a worker (which does not log) runs and returns.
    let (tx, exit) = oneshot::channel();
    let args = vec![
        payload::encode("{app:processes|0x00001}"),
        payload::encode("still here"),
    ];
    node.spawn(SpawnOptions::new("app:worker", HOST).args(args).on_exit(tx))
        .expect("spawning a worker");
    assert_eq!(ended(exit).await, ExitReason::Normal(payload::encode(&0)));
}

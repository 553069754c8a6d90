//! A hostile echo worker, for the containment tests (tests/hostile.rs). It stands where the
//! echo worker stands — spawned by the relay with the client's pid and the typed line — and
//! when the line names an attack it makes it, then answers the client with what happened.
//! Any other line it echoes, upper-cased, like the real worker.

use std::hint::black_box;
use std::time::Duration;

use serde::Serialize;
use wasmhost_guest::logger::Fields;
use wasmhost_guest::payload;
use wasmhost_guest::prelude::*;

entry!(main);

#[derive(Serialize)]
struct Response {
    data: String,
    worker: Pid,
}

const HOST: &str = "app:processes";
const WORKER: &str = "app:worker";

async fn main((client, line): (Pid, String)) -> Result<i32, String> {
    let outcome = match line.as_str() {
        // Authority: acting on processes it did not spawn.
        "cancel-relay" => on_relay(|relay| process::cancel(relay, "gone", Duration::ZERO)),
        "terminate-relay" => on_relay(process::terminate),
        "link-relay" => on_relay(|relay| process::link(relay).map(|()| true)),
        "cancel-client" => shown(process::cancel(&client, "gone", Duration::ZERO)),
        "terminate-client" => shown(process::terminate(&client)),
        "link-client" => shown(process::link(&client).map(|()| true)),
        "squat-relay" => shown(process::registry::register("relay").map(|()| true)),
        "spawn-on-terminal" => shown(process::spawn("app:cli", "app:terminal", ())),
        "spawn-more-privileged" => shown(process::spawn("app:cli", HOST, ())),
        // Floods of what the host keeps for it.
        "cancel-flood" => cancel_flood().await,
        "monitor-flood" => monitor_flood(),
        "name-flood" => name_flood(),
        "log-flood" => log_flood(),
        "mailbox-flood" => mailbox_flood(),
        "spawn-bomb" => spawn_bomb(),
        // Its own resources.
        "spin" => spin(),
        "spin-children" => spin_children(),
        "memory-bomb" => memory_bomb(),
        "deep-log" => deep_log(300),
        "invalid-pids" => invalid_pids(),
        "use-after-drop" => use_after_drop(),
        "wasi" => wasi(),
        "exit-0" => std::process::exit(0),
        // Children of the spawn bomb and the cancel flood: wait to be cancelled.
        "wait" => return Ok(wait_for_cancel().await),
        _ => line.to_uppercase(),
    };
    let response = Response {
        data: outcome,
        worker: process::pid(),
    };
    process::send(&client, "echo_response", &response).map_err(|e| e.to_string())?;
    Ok(0)
}

fn shown<T: std::fmt::Debug, E: std::fmt::Display>(result: Result<T, E>) -> String {
    match result {
        Ok(value) => format!("allowed: {value:?}"),
        Err(err) => err.to_string(),
    }
}

fn on_relay<T: std::fmt::Debug>(act: impl FnOnce(&Pid) -> Result<T, process::Denied>) -> String {
    match process::registry::lookup("relay") {
        Some(relay) => shown(act(&relay)),
        None => "no relay".into(),
    }
}

/// Waits to be cancelled; returns how many cancels it received.
async fn wait_for_cancel() -> i32 {
    let events = process::events();
    loop {
        if let Event::Cancel { .. } = events.recv().await {
            break;
        }
    }
    let mut cancels = 1;
    while let Some(event) = events.try_recv() {
        if let Event::Cancel { .. } = event {
            cancels += 1;
        }
    }
    cancels
}

/// Cancels its own child 100 000 times: one cancel is pending, the rest change nothing.
async fn cancel_flood() -> String {
    let child = match process::spawn_monitored(WORKER, HOST, (process::pid(), "wait")) {
        Ok(child) => child,
        Err(err) => return err.to_string(),
    };
    for _ in 0..100_000 {
        let _ = process::cancel(&child, "flood", Duration::from_secs(60));
    }
    let events = process::events();
    loop {
        if let Event::Exit { from, reason } = events.recv().await
            && from == child
        {
            return format!("100000 cancels; the child saw {reason}");
        }
    }
}

/// Monitors a process that is gone, over and over: each call queues an event.
fn monitor_flood() -> String {
    let gone = Pid::new(HOST, 0xdead_beef);
    for _ in 0..1_000_000 {
        process::monitor(&gone);
    }
    "still alive".into()
}

fn name_flood() -> String {
    for i in 0..1_000_000 {
        if let Err(err) = process::registry::register(&format!("name-{i}")) {
            return format!("{i} names, then: {err}");
        }
    }
    "a million names".into()
}

fn log_flood() -> String {
    for i in 0..100_000u32 {
        logger::info("flood", fields! { i });
    }
    "logged 100000 lines".into()
}

/// Sends 8 MiB messages to the relay as fast as it can.
fn mailbox_flood() -> String {
    // 8 MiB with its CBOR header: the relay's largest message.
    let big = payload::Value::Bytes(vec![0u8; (8 << 20) - 16]);
    let (mut sent, mut refused, mut last) = (0, 0, String::new());
    for _ in 0..64 {
        match process::send("relay", "echo", &big) {
            Ok(()) => sent += 1,
            Err(err) => {
                refused += 1;
                last = err.to_string();
            }
        }
    }
    format!("sent {sent}, refused {refused}: {last}")
}

fn spawn_bomb() -> String {
    let mut spawned = 0;
    loop {
        match process::spawn(WORKER, HOST, (process::pid(), "wait")) {
            Ok(_) => spawned += 1,
            Err(err) => return format!("spawned {spawned}, then: {err}"),
        }
    }
}

/// Eight children that loop until their `cpu` limit ends them.
fn spin_children() -> String {
    let spawned = (0..8)
        .filter(|_| process::spawn(WORKER, HOST, (process::pid(), "spin")).is_ok())
        .count();
    format!("{spawned} spinning")
}

fn spin() -> String {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

fn memory_bomb() -> String {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        black_box(&hoard);
    }
}

/// Uses up much of its stack, then logs a field nested 100 000 levels deep.
fn deep_log(depth: u32) -> String {
    let frame = black_box([depth as u8; 200]);
    if depth == 0 {
        let mut nested = vec![0x81u8; 100_000];
        nested.push(0x00);
        logger::info("deep", Fields::from(vec![("nested", nested)]));
        return "logged a field nested 100000 deep".into();
    }
    let outcome = deep_log(depth - 1);
    // Keeps this frame's 200 bytes on the stack across the call.
    black_box(&frame);
    outcome
}

fn invalid_pids() -> String {
    let bogus = [
        Pid::new("app:processes", u64::MAX),
        Pid::new("no:such-host", 1),
        Pid::new("", 0),
    ];
    let mut seen = Vec::new();
    for pid in &bogus {
        seen.push(format!(
            "send {} terminate {} cancel {}",
            shown(process::send(pid, "x", &"y").map(|()| true)),
            shown(process::terminate(pid)),
            shown(process::cancel(pid, "x", Duration::ZERO)),
        ));
        process::monitor(pid);
        process::unmonitor(pid);
    }
    seen.join("; ")
}

/// Uses a mailbox handle after dropping it, through the raw bindings: the host refuses the
/// handle and the guest traps.
fn use_after_drop() -> String {
    use wasmhost_guest::bindings::wasmhost::abi::process as abi;
    let mailbox = abi::inbox();
    let handle = mailbox.handle();
    drop(mailbox);
    // SAFETY (for the test's purpose, deliberately unsound): `handle` was dropped above.
    let stale = unsafe { abi::Mailbox::from_handle(handle) };
    let _ = stale.try_receive();
    "the stale handle worked".into()
}

/// Tries what WASI would give a process if it were not denied.
fn wasi() -> String {
    let tcp = std::net::TcpStream::connect("127.0.0.1:22").map(|_| "connected");
    let lookup = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 80)).map(|_| "resolved");
    let file = std::fs::read_to_string("/etc/passwd").map(|_| "read");
    let env = std::env::vars().count();
    format!(
        "tcp: {}; lookup: {}; file: {}; env: {env} variables",
        shown(tcp),
        shown(lookup),
        shown(file)
    )
}

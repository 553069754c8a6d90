//! A hostile echo worker, for the containment tests (tests/it/hostile.rs). It stands where the
//! echo worker stands — spawned by the relay with the client's pid and the typed line — and
//! when the line names an attack it makes it, then answers the client with what happened.
//! Any other line it echoes, upper-cased, like the real worker.

use std::hint::black_box;
use std::time::Duration;

use serde::Serialize;
use wasmhost_guest::logger::Fields;
use wasmhost_guest::payload;
use wasmhost_guest::prelude::*;
use wasmhost_guest::process::NodeId;

entry!(main);

#[derive(Serialize)]
struct Response {
    data: String,
    worker: Pid,
}

const HOST: &str = "app:processes";
const WORKER: &str = "app:worker";

/// What it returns: a number, or an array of zeros written as it is serialized (no tree).
enum Exit {
    Code(i32),
    Zeros(usize),
}

impl Serialize for Exit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        match self {
            Exit::Code(code) => serializer.serialize_i32(*code),
            Exit::Zeros(n) => {
                let mut seq = serializer.serialize_seq(Some(*n))?;
                for _ in 0..*n {
                    seq.serialize_element(&0u8)?;
                }
                seq.end()
            }
        }
    }
}

async fn main((client, line): (Pid, String)) -> Result<Exit, String> {
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
        // What the host holds for it, and what it copies.
        "monitor-huge-hosts" => monitor_huge_hosts(),
        "monitor-huge-nodes" => monitor_huge_nodes(),
        "topic-huge" => send_topic(20 << 20),
        "topic-long" => send_topic(1 << 20),
        "cancel-hoard" => cancel_hoard().await,
        "huge-exit" => return Ok(huge_exit()),
        "big-log-fields" => big_log_fields(),
        "log-big" => return Ok(Exit::Code(log_big())),
        "poll-flood" => poll_flood(),
        "many-args" => many_args(),
        "aliased-args" => aliased_args(),
        "spawn-other-host" => shown(process::spawn(WORKER, "app:trusted", (process::pid(), "x"))),
        "monitor-drift" => watched("drift").await,
        "drift" => return Ok(Exit::Code(drift().await)),
        "spawn-past-events" => watched("spawn-past").await,
        "spawn-past" => return spawn_past_events(),
        "leave-behind" => leave_behind().await,
        "watch-and-go" => return Ok(Exit::Code(watch_and_go())),
        // Children of the spawn bomb and the cancel flood: wait to be cancelled.
        "wait" => return Ok(Exit::Code(wait_for_cancel().await)),
        _ => line.to_uppercase(),
    };
    let response = Response {
        data: outcome,
        worker: process::pid(),
    };
    process::send(&client, "echo_response", &response).map_err(|e| e.to_string())?;
    Ok(Exit::Code(0))
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
    let mailbox = abi::Mailbox::new();
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

/// Monitors 2 000 made-up pids whose host is a mebibyte long: each would be an event carrying
/// that pid.
fn monitor_huge_hosts() -> String {
    let host = "h".repeat(1 << 20);
    for id in 0..2_000 {
        process::monitor(&Pid::new(host.as_str(), id));
    }
    "monitored 2000 pids with 1 MiB hosts".into()
}

/// Monitors 2 000 made-up pids of a node whose name is a mebibyte long.
fn monitor_huge_nodes() -> String {
    let node = NodeId {
        name: "n".repeat(1 << 20).into(),
        incarnation: 1,
    };
    for id in 0..2_000 {
        process::monitor(&Pid::new("app:processes", id).on(Some(node.clone())));
    }
    "monitored 2000 pids of nodes with 1 MiB names".into()
}

/// Sends the relay three messages whose topic is `len` bytes long.
fn send_topic(len: usize) -> String {
    let topic = "t".repeat(len);
    let outcomes: Vec<String> = (0..3)
        .map(|_| shown(process::send("relay", &topic, &"x").map(|()| true)))
        .collect();
    outcomes.join("; ")
}

/// Five rounds of: spawn eight waiting children, fill their mailboxes with 1 MiB messages
/// until refused, cancel each with a 4 MiB reason and the longest grace there is, terminate
/// each, wait for their exits.
async fn cancel_hoard() -> String {
    let block = payload::Value::Bytes(vec![7; 1 << 20]);
    let reason = "r".repeat(4 << 20);
    let events = process::events();
    let mut last = String::new();
    let mut sent_each = Vec::new();
    for _ in 0..5 {
        let children: Vec<Pid> = (0..8)
            .filter_map(|_| process::spawn_monitored(WORKER, HOST, (process::pid(), "wait")).ok())
            .collect();
        let mut sent = 0;
        'fill: for _ in 0..64 {
            for child in &children {
                match process::send(child, "hoard", &block) {
                    Ok(()) => sent += 1,
                    Err(err) => {
                        last = err.to_string();
                        break 'fill;
                    }
                }
            }
        }
        sent_each.push(sent);
        for child in &children {
            let _ = process::cancel(child, &reason, Duration::from_nanos(u64::MAX));
            let _ = process::terminate(child);
        }
        let mut ended = 0;
        while ended < children.len() {
            if let Event::Exit { .. } = events.recv().await {
                ended += 1;
            }
        }
    }
    let sent = sent_each.iter().min().copied().unwrap_or_default();
    format!("5 rounds, each: sent at least {sent}, then: {last}")
}

/// An exit value of eight mebibytes of one-byte items: a tree of it would be forty times
/// that in the relay that logs it.
fn huge_exit() -> Exit {
    Exit::Zeros((8 << 20) - 16)
}

/// Three children that log lines with a field of eight mebibytes, fifty times each.
fn big_log_fields() -> String {
    let spawned = (0..3)
        .filter(|_| process::spawn(WORKER, HOST, (process::pid(), "log-big")).is_ok())
        .count();
    format!("{spawned} loggers")
}

fn log_big() -> i32 {
    let blob = payload::encode(&payload::Value::Bytes(vec![0xab; (8 << 20) - 64]));
    for _ in 0..50 {
        logger::info("big", Fields::from(vec![("blob", blob.clone())]));
    }
    50
}

/// A `wasi:io/poll` over 15 000 copies of one ready pollable.
fn poll_flood() -> String {
    use wasmhost_guest::bindings::wasi::io::poll;
    use wasmhost_guest::bindings::wasmhost::abi::time as abi;
    let timer = abi::Timer::new(0);
    let ready = timer.subscribe();
    let list: Vec<&poll::Pollable> = vec![&ready; 15_000];
    let got = poll::poll(&list);
    format!("polled 15000: {} ready", got.len())
}

/// A spawn with 300 000 empty arguments.
fn many_args() -> String {
    use wasmhost_guest::bindings::wasmhost::abi::process as abi;
    let args: Vec<Vec<u8>> = vec![Vec::new(); 300_000];
    match abi::spawn(WORKER, HOST, &args) {
        Ok(_) => "spawned with 300000 arguments".into(),
        Err(abi::SpawnError::Limit(why)) => format!("limit: {why}"),
        Err(_) => "refused otherwise".into(),
    }
}

/// A spawn with 200 000 arguments that all point at one 8 MiB buffer.
fn aliased_args() -> String {
    use wasmhost_guest::bindings::wasmhost::abi::process as abi;
    let mut big = std::mem::ManuallyDrop::new(vec![1u8; 8 << 20]);
    let (ptr, len) = (big.as_mut_ptr(), big.len());
    // SAFETY (for the test's purpose): the aliases are never dropped or written through.
    let args: Vec<std::mem::ManuallyDrop<Vec<u8>>> = (0..200_000)
        .map(|_| std::mem::ManuallyDrop::new(unsafe { Vec::from_raw_parts(ptr, len, len) }))
        .collect();
    let args: &[Vec<u8>] =
        unsafe { std::slice::from_raw_parts(args.as_ptr().cast::<Vec<u8>>(), args.len()) };
    match abi::spawn(WORKER, HOST, args) {
        Ok(_) => "spawned with 1.6 TB of arguments".into(),
        Err(_) => "refused".into(),
    }
}

/// Runs `app:watcher` (an `events` limit of 20) with "drift" and reports how it ended.
/// Runs `attack` in an `app:watcher` (allowed 20 events) and reports how it ended.
async fn watched(attack: &str) -> String {
    let watcher = match process::spawn_monitored("app:watcher", HOST, (process::pid(), attack)) {
        Ok(pid) => pid,
        Err(err) => return err.to_string(),
    };
    let events = process::events();
    loop {
        if let Event::Exit { from, reason } = events.recv().await
            && from == watcher
        {
            return format!("watcher: {reason}");
        }
    }
}

/// Monitors 20 live processes, its `events` limit, then asks for a monitored child: the spawn
/// is refused, as a `monitor` past the limit would be, and its text is the exit's reason.
fn spawn_past_events() -> Result<Exit, String> {
    let me = process::pid();
    for _ in 0..20 {
        let pid =
            process::spawn("app:watcher", HOST, (me.clone(), "wait")).map_err(|e| e.to_string())?;
        process::monitor(&pid);
    }
    match process::spawn_monitored("app:watcher", HOST, (me, "x")) {
        Ok(pid) => Err(format!("spawned {pid}, a 21st monitor")),
        Err(err) => Err(err.to_string()),
    }
}

/// Monitors 10 live processes, then has 20 monitored children come and go, then monitors 15
/// more live ones: 25 live monitors against an `events` limit of 20.
async fn drift() -> i32 {
    let me = process::pid();
    let live = |n: usize| -> Vec<Pid> {
        (0..n)
            .filter_map(|_| process::spawn("app:watcher", HOST, (me.clone(), "wait")).ok())
            .collect()
    };
    for pid in live(10) {
        process::monitor(&pid);
    }
    let events = process::events();
    let mut gone = 0;
    for _ in 0..20 {
        if process::spawn_monitored("app:watcher", HOST, (me.clone(), "x")).is_ok() {
            gone += 1;
        }
    }
    while gone > 0 {
        if let Event::Exit { .. } = events.recv().await {
            gone -= 1;
        }
    }
    let mut watched = 10;
    for pid in live(15) {
        process::monitor(&pid);
        // A kill takes effect when the process next waits.
        time::sleep("1ms").await;
        watched += 1;
    }
    watched
}

/// 200 children that each monitor the relay, register a name, send the relay messages and
/// start a timer, then end: what they made the host hold must go with them.
async fn leave_behind() -> String {
    let me = process::pid();
    let mut left = 0;
    for _ in 0..200 {
        if process::spawn_monitored(WORKER, HOST, (me.clone(), "watch-and-go")).is_ok() {
            left += 1;
        }
    }
    let events = process::events();
    let mut ended = 0;
    while ended < left {
        if let Event::Exit { .. } = events.recv().await {
            ended += 1;
        }
    }
    format!("{ended} left")
}

fn watch_and_go() -> i32 {
    if let Some(relay) = process::registry::lookup("relay") {
        process::monitor(&relay);
    }
    let _ = process::registry::register(&format!("left-{}", process::pid().id));
    for _ in 0..10 {
        let _ = process::send("relay", "junk", &"x".repeat(1000));
    }
    let _timer = time::after("1h");
    0
}

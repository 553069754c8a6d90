//! A test process whose behaviour is chosen by its first argument, for the runtime tests.

use wasmhost_guest::prelude::*;
use wasmhost_guest::process::SendError;

/// A line for an echo relay.
#[derive(serde::Serialize)]
struct Line {
    sender: Pid,
    data: String,
}

entry!(main);

/// A worker's answer to a line, as the echo relay's workers send it.
#[derive(serde::Deserialize)]
struct Answer {
    data: String,
}

/// The echo relay's counters, as it answers `stats`.
#[derive(serde::Deserialize)]
struct RelayStats {
    messages: u64,
    hand_overs: u64,
}

/// The next message of `topic` (others are dropped), within 10 s.
async fn answer_of(mailbox: &process::Mailbox, topic: &str) -> Result<process::Message, String> {
    let wanted = async {
        loop {
            let msg = mailbox.recv().await;
            if msg.topic() == topic {
                return msg;
            }
        }
    };
    select! {
        msg = wanted => { Ok(msg) }
        _ = time::sleep("10s") => { Err(format!("no `{topic}` answer within 10 s")) }
    }
}

/// The echo relay's counters now.
async fn relay_stats(mailbox: &process::Mailbox) -> Result<RelayStats, String> {
    process::send("relay", "stats", &()).map_err(|e| format!("stats: {e}"))?;
    answer_of(mailbox, "stats")
        .await?
        .payload()
        .map_err(|e| e.to_string())
}

/// Echo client `index`: sends lines to the relay one after another, each answered upper-cased
/// (else it fails, naming the line), until `after` lines after the relay said it was upgraded;
/// returns how many it sent.
async fn echo_until_upgraded(index: u64, after: u64) -> Result<String, String> {
    let mailbox = process::mailbox();
    let mut sent: u64 = 0;
    let mut upgraded_at = None;
    loop {
        let data = format!("client {index} line {sent}");
        let line = Line {
            sender: process::pid(),
            data: data.clone(),
        };
        process::send("relay", "echo", &line).map_err(|e| format!("{data}: {e}"))?;
        sent += 1;
        let answer: Answer = answer_of(&mailbox, "echo_response")
            .await
            .map_err(|e| format!("{data}: {e}"))?
            .payload()
            .map_err(|e| e.to_string())?;
        if answer.data != data.to_uppercase() {
            return Err(format!("{data}: answered `{}`", answer.data));
        }
        if upgraded_at.is_none() && relay_stats(&mailbox).await?.hand_overs > 0 {
            upgraded_at = Some(sent);
        }
        if upgraded_at.is_some_and(|at| sent >= at + after) {
            return Ok(sent.to_string());
        }
    }
}

/// Sends each of `numbers` to `sink` (topic `n`, with `epoch`), again while the sender's
/// outbox to the sink's node is full (logging the first time); how many times it was refused.
async fn send_numbers(
    sink: &Pid,
    epoch: u64,
    numbers: std::ops::Range<u64>,
) -> Result<u64, String> {
    let mut refused = 0;
    for n in numbers {
        loop {
            match process::send(sink, "n", &(epoch, n)) {
                Ok(()) => break,
                Err(SendError::MailboxFull(_) | SendError::Limit(_)) => {
                    if refused == 0 {
                        logger::info("a send refused", fields! { n });
                    }
                    refused += 1;
                    time::sleep(std::time::Duration::from_millis(1)).await;
                }
                Err(err) => return Err(format!("send {n}: {err}")),
            }
        }
    }
    Ok(refused)
}

/// The process registered as `sink` once it is (it may be registering on another node),
/// within 30 s.
async fn wait_for_sink() -> Result<Pid, String> {
    for _ in 0..600 {
        if let Some(sink) = process::registry::lookup("sink") {
            return Ok(sink);
        }
        time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err("no process registered as sink within 30 s".into())
}

/// The process registered as `name` once it is, within 30 s.
async fn wait_for_name(name: &str) -> Result<Pid, String> {
    for _ in 0..600 {
        if let Some(pid) = process::registry::lookup(name) {
            return Ok(pid);
        }
        time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err(format!("no process registered as {name} within 30 s"))
}

/// Tells `sink` how many numbers it should have, and waits for its `done`.
async fn finish(mailbox: &process::Mailbox, sink: &Pid, count: u64) -> Result<String, String> {
    process::send(sink, "end", &count).map_err(|e| format!("end: {e}"))?;
    loop {
        let msg = mailbox.recv().await;
        if msg.topic() == "done" {
            let got: u64 = msg.payload().map_err(|e| e.to_string())?;
            return Ok(format!("the sink has {got}"));
        }
    }
}

async fn main((mode, arg): (String, String)) -> Result<String, String> {
    let mailbox = process::mailbox();
    match mode.as_str() {
        // Return `arg` (a normal exit).
        "return" => Ok(arg),
        // `ENTRY CLIENTS AFTER`: CLIENTS processes of ENTRY (this one) on `app:processes`,
        // each an echo client (below) of the process registered as `relay`; logs `clients
        // done` with the lines they sent, the relay's pid (the same before and after) and its
        // counters.
        "echo-clients" => {
            let [entry, clients, after] = arg.split(' ').collect::<Vec<_>>()[..] else {
                return Err(format!("bad arguments `{arg}`"));
            };
            let clients: u64 = clients
                .parse()
                .map_err(|_| format!("bad count {clients}"))?;
            let relay = wait_for_name("relay").await?;
            let events = process::events();
            for index in 0..clients {
                let arg = format!("{index} {after}");
                process::spawn_monitored(entry, "app:processes", ("echo-client", arg))
                    .map_err(|e| format!("client {index}: {e}"))?;
            }
            let mut lines: u64 = 0;
            for _ in 0..clients {
                match events.recv().await {
                    Event::Exit {
                        reason: ExitReason::Normal(value),
                        ..
                    } => {
                        let sent: String =
                            wasmhost_guest::payload::decode(&value).map_err(|e| e.to_string())?;
                        lines += sent.parse::<u64>().map_err(|e| e.to_string())?;
                    }
                    Event::Exit { from, reason } => return Err(format!("client {from}: {reason}")),
                    other => return Err(format!("unexpected {other:?}")),
                }
            }
            let stats = relay_stats(&mailbox).await?;
            let after = process::registry::lookup("relay");
            if after.as_ref() != Some(&relay) {
                return Err(format!("the relay was {relay}, and is {after:?}"));
            }
            logger::info(
                "clients done",
                fields! { lines, relay, messages: stats.messages, hand_overs: stats.hand_overs },
            );
            Ok(lines.to_string())
        }
        // `ENTRY HOST`: spawn a `counter` of ENTRY on HOST (its child), and return its pid.
        "spawn-counter" => {
            let (entry, host) = arg
                .split_once(' ')
                .ok_or_else(|| format!("bad arguments `{arg}`"))?;
            let pid = process::spawn(entry, host, ("counter", "")).map_err(|e| e.to_string())?;
            Ok(pid.to_string())
        }
        // `INDEX AFTER`: one client of `echo-clients`, within 2 minutes.
        "echo-client" => {
            let (index, after) = arg
                .split_once(' ')
                .and_then(|(i, a)| Some((i.parse().ok()?, a.parse().ok()?)))
                .ok_or_else(|| format!("bad arguments `{arg}`"))?;
            select! {
                sent = echo_until_upgraded(index, after) => { sent }
                _ = time::sleep("120s") => {
                    Err(format!("client {index}: no upgrade within 2 minutes"))
                }
            }
        }
        // Return an error (an abnormal exit).
        "error" => Err(arg),
        // Panic (a trap).
        "panic" => panic!("{arg}"),
        // Loop forever without calling the host.
        "spin" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        // Allocate until the memory limit stops it.
        "grow" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
            }
        }
        // Answer one message with the same topic and payload.
        "echo" => {
            let msg = mailbox.recv().await;
            let payload: String = msg.payload().map_err(|e| e.to_string())?;
            if let Some(from) = msg.from() {
                let _ = process::send(from, msg.topic(), &payload);
            }
            Ok(payload)
        }
        // Register as `arg`, tell the parent, then echo one message.
        "register-echo" => {
            process::registry::register(&arg).map_err(|e| e.to_string())?;
            let msg = mailbox.recv().await;
            let parent: Pid = msg.payload().map_err(|e| e.to_string())?;
            let _ = process::send(&parent, "ready", &());
            let msg = mailbox.recv().await;
            let payload: String = msg.payload().map_err(|e| e.to_string())?;
            if let Some(from) = msg.from() {
                let _ = process::send(from, msg.topic(), &payload);
            }
            Ok(payload)
        }
        // Receive `arg` messages and send their payloads back in one list.
        "collect" => {
            let n: usize = arg.parse().map_err(|_| format!("bad count {arg}"))?;
            let mut seen: Vec<u32> = Vec::new();
            let mut from = None;
            while seen.len() < n {
                let msg = mailbox.recv().await;
                from = msg.from().cloned();
                seen.push(msg.payload().map_err(|e| e.to_string())?);
            }
            if let Some(from) = from {
                let _ = process::send(&from, "collected", &seen);
            }
            Ok(String::new())
        }
        // Send `arg` to the parent (whose pid is the first message) after 50 ms.
        "send-later" => {
            let parent: Pid = mailbox.recv().await.payload().map_err(|e| e.to_string())?;
            time::sleep("50ms").await;
            let _ = process::send(&parent, "later", &arg);
            Ok(String::new())
        }
        // Tell the process registered as `witness` that this one started, then fail.
        "report-and-fail" => {
            let _ = process::send("witness", "started", &arg);
            Err(format!("{arg} failed on purpose"))
        }
        // Tell the witness, then return normally.
        "report-and-return" => {
            let _ = process::send("witness", "started", &arg);
            Ok(arg)
        }
        // Send `arg` to the pid in the first message, and tell that message's sender how the
        // send went.
        "send-to" => {
            let msg = mailbox.recv().await;
            let target: Pid = msg.payload().map_err(|e| e.to_string())?;
            let outcome = match process::send(&target, "note", &arg) {
                Ok(()) => "ok".to_string(),
                Err(err) => err.to_string(),
            };
            if let Some(from) = msg.from() {
                let _ = process::send(from, "sent", &outcome);
            }
            Ok(outcome)
        }
        // Wait for `arg` ticks of 10 ms; return `arg`.
        "tick" => {
            let n: u64 = arg.parse().map_err(|_| format!("bad count {arg}"))?;
            let ticker = time::ticker("10ms");
            let mut ticks = 0;
            while ticks < n {
                ticks += ticker.tick().await;
            }
            Ok(arg)
        }
        // Register `arg` after 100 ms (a service slow to become ready), then wait to be
        // cancelled.
        "register-late" => {
            time::sleep("100ms").await;
            process::registry::register(&arg).map_err(|e| e.to_string())?;
            loop {
                if let Event::Cancel { reason } = process::events().recv().await {
                    return Ok(reason);
                }
            }
        }
        // Fail after running for `arg` (a duration such as "10s").
        "fail-after" => {
            time::sleep(arg.as_str()).await;
            Err(format!("failed after {arg}"))
        }
        // Succeed if a process holds the name `arg`.
        "lookup" => match process::registry::lookup(&arg) {
            Some(pid) => Ok(pid.to_string()),
            None => Err(format!("no process is registered as {arg}")),
        },
        // A counter that hibernates at once and after each message (its state: the total
        // and how many times it has woken). `add` (a number) adds, and answers `total` with
        // both to a sender; `stop` returns them; a cancel returns them with the reason.
        // Registers as `arg` first, unless it is empty.
        "counter" => {
            let Some(state) = process::resumed::<(u64, u64)>() else {
                if !arg.is_empty() {
                    process::registry::register(&arg).map_err(|e| e.to_string())?;
                }
                return Err(process::hibernate(&(0, 0)).to_string());
            };
            let (mut total, wakes) = state.map_err(|e| e.to_string())?;
            let wakes = wakes + 1;
            let events = process::events();
            select! {
                msg = mailbox.recv() => {
                    match msg.topic() {
                        "add" => {
                            total += msg.payload::<u64>().map_err(|e| e.to_string())?;
                            if let Some(from) = msg.from() {
                                let _ = process::send(from, "total", &(total, wakes));
                            }
                        }
                        "stop" => return Ok(format!("{total} after {wakes} wakes")),
                        other => return Err(format!("unexpected topic {other}")),
                    }
                }
                event = events.recv() => {
                    if let Event::Cancel { reason } = event {
                        return Ok(format!("{reason}: {total} after {wakes} wakes"));
                    }
                }
            }
            Err(process::hibernate(&(total, wakes)).to_string())
        }
        // Hibernate until `arg` (a duration such as "10ms") has passed, then return what
        // it woke with.
        "hibernate-for" => match process::resumed::<String>() {
            Some(state) => Ok(format!("woke with {}", state.map_err(|e| e.to_string())?)),
            None => Err(process::hibernate_for("a state", arg.as_str()).to_string()),
        },
        // Hibernate with a state of `arg` bytes; what the refusal says, if it is refused.
        "hibernate-large" => {
            let size: usize = arg.parse().map_err(|e| format!("{e}"))?;
            let refused =
                process::hibernate(&wasmhost_guest::payload::ByteBuf::from(vec![7u8; size]));
            Ok(format!("refused: {refused}"))
        }
        // Wait to be cancelled; return the reason.
        "wait-cancel" => loop {
            if let Event::Cancel { reason } = process::events().recv().await {
                return Ok(reason);
            }
        },
        // Monitor the process registered as `arg` (an echo relay, perhaps of another node),
        // send it a line to show it (its worker answers; with `monitor-crash` the line
        // `!crash` makes the relay fail), and fail with what the monitor heard.
        "monitor-name" | "monitor-crash" => {
            let Some(target) = process::registry::lookup(&arg) else {
                return Err(format!("no process is registered as {arg}"));
            };
            let events = process::events();
            process::monitor(&target);
            let data = if mode == "monitor-crash" {
                "!crash"
            } else {
                "monitoring"
            };
            let line = Line {
                sender: process::pid(),
                data: data.into(),
            };
            let _ = process::send(&target, "echo", &line);
            loop {
                if let Event::Exit { from, reason } = events.recv().await {
                    return Err(format!("monitored {from}: {reason}"));
                }
            }
        }
        // On node `arg`: spawn a child, link it, end it (its link breaks: an event, since
        // links are trapped); spawn another, monitor it, cancel it; spawn-linked a third that
        // fails; try to end the echo relay, which this process did not spawn. Fail with what happened, one part per step.
        "remote-family" => {
            process::trap_links(true);
            let events = process::events();
            let host = format!("{arg}@app:processes");
            let linked = process::spawn("app:watcher", &host, ("wait-cancel", ""))
                .map_err(|e| format!("spawn: {e}"))?;
            process::link(&linked).map_err(|e| format!("link: {e}"))?;
            process::terminate(&linked).map_err(|e| format!("terminate: {e}"))?;
            let broken = loop {
                if let Event::LinkDown { from, reason } = events.recv().await {
                    break format!("link-down from {from}: {reason}");
                }
            };
            let cancelled = process::spawn_monitored("app:watcher", &host, ("wait-cancel", ""))
                .map_err(|e| format!("spawn-monitored: {e}"))?;
            process::cancel(&cancelled, "enough", std::time::Duration::from_secs(5))
                .map_err(|e| format!("cancel: {e}"))?;
            let ended = loop {
                if let Event::Exit { from, reason } = events.recv().await {
                    break format!("exit of {from}: {reason}");
                }
            };
            let failing = process::spawn_linked("app:watcher", &host, ("error", "boom"))
                .map_err(|e| format!("spawn-linked: {e}"))?;
            let failed = loop {
                if let Event::LinkDown { from, reason } = events.recv().await
                    && from == failing
                {
                    break format!("spawn-linked, then link-down from {from}: {reason}");
                }
            };
            let relay = process::registry::lookup("relay").ok_or("no relay")?;
            let refused = match process::terminate(&relay) {
                Ok(_) => format!("terminated {relay}"),
                Err(e) => format!("terminate {relay}: {e}"),
            };
            Err(format!("{broken}; {ended}; {failed}; {refused}"))
        }
        // On node `arg`: spawn a child and link it, show it to the echo relay as
        // `monitor-name` does, and fail with what the link's breaking says.
        "link-remote" => {
            process::trap_links(true);
            let events = process::events();
            let host = format!("{arg}@app:processes");
            let child = process::spawn("app:watcher", &host, ("wait-cancel", ""))
                .map_err(|e| format!("spawn: {e}"))?;
            process::link(&child).map_err(|e| format!("link: {e}"))?;
            let relay = process::registry::lookup("relay").ok_or("no relay")?;
            let line = Line {
                sender: process::pid(),
                data: "linked".into(),
            };
            let _ = process::send(&relay, "echo", &line);
            loop {
                if let Event::LinkDown { from, reason } = events.recv().await {
                    return Err(format!("link-down from {from}: {reason}"));
                }
            }
        }
        // Register as `arg` and take numbered messages (topic `n`: an epoch and a number),
        // each the one due next, until `end` says how many of epoch 0 were sent. A sender
        // moves to the next epoch when it hears its messages may have been lost (the sink's
        // node was down), so a number may jump ahead only where the epoch does. Fails at once
        // on a number out of order (a gap or a repeat within an epoch, anything going back),
        // or at the end if epoch 0 did not arrive whole; answers `done`. Answers `sync` with
        // `synced` (all before it arrived).
        "count-in" => {
            process::registry::register(&arg).map_err(|e| e.to_string())?;
            logger::info("sink registered", fields! { name: arg.as_str() });
            let (mut epoch, mut due): (u64, u64) = (0, 0);
            let mut first_epoch = None;
            loop {
                let msg = mailbox.recv().await;
                match msg.topic() {
                    "n" => {
                        let (e, n): (u64, u64) = msg.payload().map_err(|e| e.to_string())?;
                        let fine = (e == epoch && n == due) || (e > epoch && n >= due);
                        if !fine {
                            return Err(format!("{e}:{n} arrived where {epoch}:{due} was due"));
                        }
                        if e > epoch {
                            first_epoch.get_or_insert(due);
                            epoch = e;
                        }
                        due = n + 1;
                    }
                    "sync" => {
                        if let Some(from) = msg.from() {
                            let _ = process::send(from, "synced", &due);
                        }
                    }
                    "end" => {
                        let sent: u64 = msg.payload().map_err(|e| e.to_string())?;
                        let got = first_epoch.unwrap_or(due);
                        if let Some(from) = msg.from() {
                            let _ = process::send(from, "done", &got);
                        }
                        if got != sent {
                            return Err(format!("{got} of epoch 0 arrived of the {sent} sent"));
                        }
                        return Ok(format!("{due} in order"));
                    }
                    other => return Err(format!("unexpected topic {other}")),
                }
            }
        }
        // Send `arg` numbered messages to `sink`, each again while the outbox refuses it,
        // then `end`, and wait for the sink's `done`.
        "count-out" => {
            let sink = wait_for_sink().await?;
            let count: u64 = arg.parse().map_err(|_| format!("not a count: {arg}"))?;
            let refused = send_numbers(&sink, 0, 0..count).await?;
            logger::info("numbers sent", fields! { count, refused });
            finish(&mailbox, &sink, count).await
        }
        // Send `arg` numbered messages to `sink`, wait until it has them all, say so, and
        // wait to hear of its node's loss (the test stops that node); send as many again, in
        // the next epoch (dropped while its node is down here, delivered once it is back),
        // wait for the sink to be reachable again (the node rejoined), and end with the count
        // of the first run: nothing of it lost, and no gap but where the epoch moved on.
        "count-stall" => {
            let sink = wait_for_sink().await?;
            let count: u64 = arg.parse().map_err(|_| format!("not a count: {arg}"))?;
            let events = process::events();
            process::monitor(&sink);
            let refused = send_numbers(&sink, 0, 0..count).await?;
            process::send(&sink, "sync", &()).map_err(|e| format!("sync: {e}"))?;
            while mailbox.recv().await.topic() != "synced" {}
            logger::info("numbers sent", fields! { count, refused });
            let reason = loop {
                if let Event::Exit { from, reason } = events.recv().await
                    && from == sink
                {
                    break reason;
                }
            };
            logger::info("sink lost", fields! { reason: reason.to_string() });
            send_numbers(&sink, 1, count..2 * count).await?;
            wait_for_sink().await?;
            finish(&mailbox, &sink, count).await
        }
        other => Err(format!("unknown mode {other}")),
    }
}

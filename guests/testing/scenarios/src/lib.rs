//! Test scenarios run inside a process: each drives the ABI through the SDK and returns
//! what it observed, for the runtime tests to check.

use serde::Serialize;
use wasmhost_guest::payload;
use wasmhost_guest::prelude::*;

entry!(main);

const CHILD: &str = "test:child";
/// The child with small mailbox and message-size limits.
const SMALL: &str = "test:small";
/// The child with a mailbox of 8 messages.
const HOARDER: &str = "test:hoarder";
const HOST: &str = "test:procs";

async fn main((scenario, arg): (String, String)) -> Result<payload::Value, String> {
    let mailbox = process::mailbox();
    let events = process::events();
    let out = match scenario.as_str() {
        "send-by-pid" => {
            let child = spawn(("echo", ""))?;
            send(&child, "ping", &arg)?;
            encode(&reply(&mailbox).await)
        }
        "send-by-name" => {
            let child = spawn(("register-echo", "echoer"))?;
            send(&child, "parent", &process::pid())?;
            mailbox.recv().await; // ready
            send("echoer", "ping", &arg)?;
            encode(&reply(&mailbox).await)
        }
        "send-to-unknown-name" => {
            let err = process::send("nobody", "ping", &arg).err();
            encode(&err.map(|e| e.to_string()))
        }
        "fifo" => {
            let n: u32 = arg.parse().map_err(|_| "bad count".to_string())?;
            let child = spawn(("collect", &n.to_string()))?;
            for i in 0..n {
                send(&child, "n", &i)?;
            }
            let msg = mailbox.recv().await;
            encode(&msg.payload::<Vec<u32>>().map_err(|e| e.to_string())?)
        }
        // Spawn a monitored child in mode `arg` and return the EXIT it produced.
        "monitor" => {
            let (mode, value) = arg.split_once(' ').unwrap_or((&arg, ""));
            let child =
                process::spawn_monitored(CHILD, HOST, (mode, value)).map_err(|e| e.to_string())?;
            match events.recv().await {
                Event::Exit { from, reason } if from == child => encode(&reason),
                other => return Err(format!("unexpected event {other:?}")),
            }
        }
        "name-freed-on-exit" => {
            let child = process::spawn_monitored(CHILD, HOST, ("register-echo", "holder"))
                .map_err(|e| e.to_string())?;
            send(&child, "parent", &process::pid())?;
            mailbox.recv().await; // the child holds the name now
            let while_alive = process::registry::register("holder")
                .err()
                .map(|e| e.to_string());
            send("holder", "bye", &"bye")?;
            events.recv().await; // its EXIT
            let after_exit = process::registry::lookup("holder").map(|p| p.to_string());
            let registered = process::registry::register("holder").is_ok();
            encode(&(while_alive, after_exit, registered))
        }
        "select-first-ready" => {
            let child = spawn(("send-later", "hi"))?;
            send(&child, "parent", &process::pid())?;
            let mut order = Vec::new();
            select! {
                _ = time::after("2s") => { order.push("timer"); }
                _ = mailbox.recv() => { order.push("mailbox"); }
            }
            select! {
                _ = time::after("50ms") => { order.push("timer"); }
                _ = mailbox.recv() => { order.push("mailbox"); }
            }
            encode(&order)
        }
        "tasks-share-memory" => {
            let (tx, rx) = channel::new::<u32>(1);
            let counter = std::rc::Rc::new(std::cell::Cell::new(0));
            let seen = counter.clone();
            wasmhost_guest::spawn_task(async move {
                while let Ok(n) = rx.recv().await {
                    seen.set(seen.get() + n);
                }
            });
            for n in 1..=10 {
                tx.send(n).await.map_err(|e| e.to_string())?;
            }
            drop(tx);
            time::sleep("10ms").await;
            encode(&counter.get())
        }
        // Register as `witness` and count the `started` reports per sender name for `arg`.
        "witness" => {
            process::registry::register("witness").map_err(|e| e.to_string())?;
            let mut counts = std::collections::BTreeMap::<String, u32>::new();
            let deadline = time::after(arg.as_str());
            let mut deadline = std::pin::pin!(deadline);
            loop {
                select! {
                    _ = deadline.as_mut() => { break; }
                    msg = mailbox.recv() => {
                        let name: String = msg.payload().map_err(|e| e.to_string())?;
                        *counts.entry(name).or_default() += 1;
                    }
                }
            }
            encode(&counts)
        }
        "ticker" => {
            let ticker = time::ticker("10ms");
            let mut ticks = 0;
            while ticks < 3 {
                ticks += ticker.tick().await;
            }
            encode(&ticks)
        }
        // Cancel a child that handles the cancel, and one that ignores it (it spins).
        "cancel" => {
            let polite = process::spawn_monitored(CHILD, HOST, ("wait-cancel", ""))
                .map_err(|e| e.to_string())?;
            let stubborn =
                process::spawn_monitored(CHILD, HOST, ("spin", "")).map_err(|e| e.to_string())?;
            process::cancel(&polite, "please stop", std::time::Duration::from_secs(5))
                .map_err(|e| e.to_string())?;
            process::cancel(
                &stubborn,
                "please stop",
                std::time::Duration::from_millis(50),
            )
            .map_err(|e| e.to_string())?;
            let mut results = std::collections::BTreeMap::new();
            while results.len() < 2 {
                if let Event::Exit { from, reason } = events.recv().await {
                    let who = if from == polite { "polite" } else { "stubborn" };
                    results.insert(who, reason);
                }
            }
            encode(&results)
        }
        // A linked child fails: with links trapped, this process hears of it.
        "trapped-link" => {
            process::trap_links(true);
            let child = process::spawn_linked(CHILD, HOST, ("error", "linked failure"))
                .map_err(|e| e.to_string())?;
            match events.recv().await {
                Event::LinkDown { from, reason } if from == child => encode(&reason),
                other => return Err(format!("unexpected event {other:?}")),
            }
        }
        // A linked child fails: without trapping, this process goes down with it.
        "untrapped-link" => {
            process::spawn_linked(CHILD, HOST, ("error", "linked failure"))
                .map_err(|e| e.to_string())?;
            time::sleep("5s").await;
            return Err("still alive after the linked child failed".into());
        }
        // Fill the mailbox of a child that never reads it (`test:small`: 3 messages).
        "mailbox-limit" => {
            let child = process::spawn_monitored(SMALL, HOST, ("wait-cancel", ""))
                .map_err(|e| e.to_string())?;
            let sent: Vec<String> = (0..4)
                .map(|i| outcome(process::send(&child, "fill", &i), &child, "CHILD"))
                .collect();
            stop(&child, &events).await;
            encode(&sent)
        }
        // Send a small and a large payload to `test:small` (64 bytes at most).
        "message-size-limit" => {
            let child = process::spawn_monitored(SMALL, HOST, ("wait-cancel", ""))
                .map_err(|e| e.to_string())?;
            let large = "x".repeat(200);
            let sent = [
                outcome(process::send(&child, "small", &"hi"), &child, "CHILD"),
                outcome(process::send(&child, "large", &large), &child, "CHILD"),
            ];
            stop(&child, &events).await;
            encode(&sent)
        }
        // Fill most of a mailbox that is never read (`test:hoarder`, 8 messages) from this
        // process, then have another process send to it: its message still fits.
        "mailbox-share" => {
            let hoarder = process::spawn_monitored(HOARDER, HOST, ("wait-cancel", ""))
                .map_err(|e| e.to_string())?;
            let mut outcomes: Vec<String> = (0..8)
                .map(|i| outcome(process::send(&hoarder, "fill", &i), &hoarder, "HOARDER"))
                .collect();
            let other =
                process::spawn(CHILD, HOST, ("send-to", "hello")).map_err(|e| e.to_string())?;
            send(&other, "target", &hoarder)?;
            let reply = mailbox.recv().await;
            outcomes.push(format!(
                "other sender: {}",
                reply.payload::<String>().map_err(|e| e.to_string())?
            ));
            stop(&hoarder, &events).await;
            encode(&outcomes)
        }
        // Run as `test:few-children` (2 live children at most): a third spawn fails until
        // one of the first two has exited.
        "children-limit" => {
            let me = process::pid();
            let mut outcomes = Vec::new();
            let mut children = Vec::new();
            for _ in 0..3 {
                match process::spawn_monitored(CHILD, HOST, ("wait-cancel", "")) {
                    Ok(child) => {
                        outcomes.push("ok".to_string());
                        children.push(child);
                    }
                    Err(e) => outcomes.push(e.to_string().replace(&me.to_string(), "SELF")),
                }
            }
            let first = children.remove(0);
            stop(&first, &events).await;
            match process::spawn_monitored(CHILD, HOST, ("wait-cancel", "")) {
                Ok(child) => {
                    outcomes.push("ok after one exited".to_string());
                    children.push(child);
                }
                Err(e) => outcomes.push(e.to_string()),
            }
            for child in &children {
                stop(child, &events).await;
            }
            encode(&outcomes)
        }
        // Spawn children that wait until the node refuses one; return how many were
        // spawned and why the next one was refused.
        "spawn-until-refused" => {
            let limit: usize = arg.parse().map_err(|_| format!("bad count {arg}"))?;
            let mut children = Vec::new();
            let refusal = loop {
                match process::spawn_monitored(CHILD, HOST, ("wait-cancel", "")) {
                    Ok(child) if children.len() < limit => children.push(child),
                    Ok(child) => {
                        stop(&child, &events).await;
                        break "never refused".to_string();
                    }
                    Err(e) => break e.to_string(),
                }
            };
            let spawned = children.len();
            for child in &children {
                stop(child, &events).await;
            }
            encode(&(spawned, refusal))
        }
        other => return Err(format!("unknown scenario {other}")),
    };
    Ok(out)
}

fn spawn(args: (&str, &str)) -> Result<Pid, String> {
    process::spawn(CHILD, HOST, args).map_err(|e| e.to_string())
}

fn send<T: Serialize>(
    to: impl Into<process::Destination>,
    topic: &str,
    payload: &T,
) -> Result<(), String> {
    process::send(to, topic, payload).map_err(|e| e.to_string())
}

/// "ok", or the send error with `pid` written as `name`.
fn outcome(sent: Result<(), process::SendError>, pid: &Pid, name: &str) -> String {
    match sent {
        Ok(()) => "ok".to_string(),
        Err(e) => e.to_string().replace(&pid.to_string(), name),
    }
}

/// Cancels a monitored `wait-cancel` child and waits for its EXIT.
async fn stop(child: &Pid, events: &process::Events) {
    // A child of this process: the cancel cannot be denied.
    let _ = process::cancel(child, "done", std::time::Duration::from_secs(5));
    loop {
        if let Event::Exit { from, .. } = events.recv().await
            && &from == child
        {
            return;
        }
    }
}

async fn reply(mailbox: &process::Mailbox) -> String {
    let msg = mailbox.recv().await;
    msg.payload().unwrap_or_else(|e| e.to_string())
}

fn encode<T: Serialize>(value: &T) -> payload::Value {
    payload::decode(&payload::encode(value)).unwrap_or(payload::Value::Null)
}

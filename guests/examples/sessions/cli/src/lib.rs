//! The sessions client: reads `USER PAGE` lines, sends each visit to that user's session
//! (spawning it at the user's first visit) and prints the answer, or `timeout` after 2 s.

use std::collections::HashMap;

use wasmhost_guest::io::{dim, green, yellow};
use wasmhost_guest::prelude::*;

entry!(main);

async fn main(_: ()) -> Result<i32, String> {
    let mailbox = process::mailbox();
    let mut sessions: HashMap<String, Pid> = HashMap::new();
    io::print(&dim(
        "Type `USER PAGE` lines: each user's session remembers their visits.",
    ));
    loop {
        io::write(&yellow("> "));
        let Some(line) = io::readline() else {
            return Ok(0);
        };
        let Some((user, page)) = line.trim().split_once(' ') else {
            io::print(&dim("  usage: USER PAGE"));
            continue;
        };
        let session = match sessions.get(user) {
            Some(pid) => pid.clone(),
            None => {
                let pid = process::spawn("app:session", "app:processes", (user,))
                    .map_err(|e| format!("spawning {user}'s session: {e}"))?;
                sessions.insert(user.to_string(), pid.clone());
                pid
            }
        };
        if let Err(err) = process::send(&session, "visit", page) {
            io::print(&dim(&format!("  {err}")));
            continue;
        }
        select! {
            _ = time::after("2s") => {
                io::print(&dim("  timeout"));
            }
            answer = mailbox.recv() => {
                let text: String = answer.payload().unwrap_or_default();
                io::print(&green(&format!("  {text}")));
            }
        }
    }
}

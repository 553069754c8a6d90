//! A user's session: it answers each visit with what it remembers of the user's earlier
//! ones, and hibernates between visits, so a million idle users hold a million small states
//! and no instances. Ten minutes without a visit end it.

use serde::{Deserialize, Serialize};
use wasmhost_guest::prelude::*;

entry!(main);

/// How long a session waits for the next visit.
const IDLE: &str = "10m";

/// What a session remembers between visits: all it keeps while it hibernates.
#[derive(Serialize, Deserialize, Default)]
struct Session {
    visits: u64,
    last: Option<String>,
}

async fn main((user,): (String,)) -> Result<String, String> {
    // Spawned: nothing to remember yet, so wait for the first visit hibernated.
    let Some(state) = process::resumed::<Session>() else {
        return Err(process::hibernate_for(&Session::default(), IDLE).to_string());
    };
    let mut session = state.map_err(|e| e.to_string())?;
    // Woken by a visit, or by its idle timer (or a cancel) with nothing waiting.
    let Some(visit) = process::mailbox().try_recv() else {
        return Ok(format!("{user} left after {} visits", session.visits));
    };
    let page: String = visit.payload().map_err(|e| e.to_string())?;
    session.visits += 1;
    let answer = match session.last.replace(page.clone()) {
        Some(last) => format!("{user}: visit {} ({page}), after {last}", session.visits),
        None => format!("{user}: first visit ({page})"),
    };
    if let Some(from) = visit.from() {
        let _ = process::send(from, "visited", &answer);
    }
    Err(process::hibernate_for(&session, IDLE).to_string())
}

//! A top-level service or supervisor placed on a list of nodes (`lifecycle.nodes`), on one
//! of those nodes: it stands by while another node runs it, takes it when the nodes before
//! this one on the list are down and no node that is up holds it (the cluster's placements
//! bucket says who does), runs it as any unit runs, and gives it up when it stops here, so
//! the next node takes it at once. As Erlang's distributed applications fail over; unlike
//! them, a node that comes back does not take its unit back from the one running it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::watch;

use super::{State, Unit, stopped};
use crate::runtime::{Cluster, Placement};

/// One run of the unit here, until the switch it is given is set.
pub type Start =
    Box<dyn Fn(watch::Receiver<bool>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

pub async fn run(
    cluster: Arc<Cluster>,
    unit: Arc<Unit>,
    nodes: Vec<String>,
    start: Start,
    mut stop: watch::Receiver<bool>,
) {
    let id = unit.id.clone();
    let mut changes = cluster.peer_changes();
    // Also looked at every heartbeat: a claim may fail while the server is out of reach,
    // and a takeover of this node's unit is seen only in the bucket.
    let every = cluster.config().heartbeat;
    loop {
        // Standing by until it is this node's turn and the unit is free.
        loop {
            let on = match cluster.first_up(&id, &nodes) {
                Ok(()) => match cluster.place(&id).await {
                    Ok(Placement::Here) => break,
                    Ok(Placement::On(node)) => node,
                    Err(why) => {
                        tracing::warn!(unit = %id, "cannot take it: {why}");
                        "none yet".into()
                    }
                },
                Err(ahead) => ahead,
            };
            if !matches!(&*unit.state.borrow(), State::Standby(now) if *now == on) {
                tracing::info!(unit = %id, on = %on, "standing by: it runs elsewhere");
                unit.set(State::Standby(on));
            }
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep(every) => {}
                () = stopped(&mut stop) => {
                    unit.set(State::Stopped);
                    return;
                }
            }
        }
        tracing::info!(unit = %id, "placed on this node");
        let (halt, halted) = watch::channel(false);
        let mut task = tokio::spawn(start(halted));
        let taken_over = loop {
            tokio::select! {
                _ = &mut task => {
                    // It ended here for good (exited, or failed past its restarts): it
                    // stays this node's, as a unit that ended stays ended.
                    stopped(&mut stop).await;
                    cluster.unplace(&id).await;
                    return;
                }
                () = tokio::time::sleep(every) => {
                    if cluster.still_here(&id).await == Some(false) {
                        break true;
                    }
                }
                () = stopped(&mut stop) => break false,
            }
        };
        let _ = halt.send(true);
        let _ = task.await;
        if !taken_over {
            cluster.unplace(&id).await;
            return;
        }
        tracing::warn!(
            unit = %id,
            "another node took it over while this node was out of touch; stopped it here"
        );
    }
}

//! A process acting on the node: everything a host interface does on behalf of the process
//! that called it goes through here, so what one process may do to others is decided in one
//! place (with the rules in `authority`).

use std::sync::Arc;

use futures::future::Either;
use std::time::Duration;

use super::node::Node;
use super::spawn::{SpawnOptions, Watch};
use super::upgrades::{Step, Trial};
use crate::runtime::cluster::Cluster;
use crate::runtime::process::{
    Charge, HIBERNATION_OVERHEAD, Hibernating, Hibernation, LogBudget, Process, log, may_signal,
};
use crate::terminal::Terminal;
use wasmhost_types::{
    Denied, Destination, ExitReason, MAX_NODE_NAME, NodeId, Pid, RegisterError, SendError,
    SpawnError,
};

/// A call the guest got wrong (an argument no process could mean): the call traps, and the
/// process's exit reason is `trap` with this message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Fault(pub String);

/// The calling process and its node.
pub struct ProcessCtx {
    node: Arc<Node>,
    me: Arc<Process>,
    log: LogBudget,
    /// Set when the process broke a limit; the trap that follows is reported as this.
    limit_broken: Option<String>,
    /// Set by `hibernate`: the state the instance ends with.
    hibernating: Option<Hibernation>,
    /// The state this instance was woken with, still charged to the process.
    resumed: Option<Hibernation>,
    /// Set in the instance a process handed over to in an upgrade, until it first receives.
    trial: Option<Box<Trial>>,
}

/// The longest host name a pid may carry, in bytes: a host is a registry entry, whose name
/// is at most this long. A longer one is not a pid any process could have.
pub const MAX_PID_HOST: usize = crate::app::MAX_NAME_LEN * 2 + 1;

impl ProcessCtx {
    pub(in crate::runtime) fn new(node: Arc<Node>, me: Arc<Process>) -> Self {
        let log = LogBudget::new(me.limits().log_rate);
        ProcessCtx {
            node,
            me,
            log,
            limit_broken: None,
            hibernating: None,
            resumed: None,
            trial: None,
        }
    }

    /// Hibernates the calling process with `state`: the call returns the error that ends
    /// its instance, and the runner takes the state (`take_hibernation`). Refused (`Ok`,
    /// with why) when `state` is over its `message_size` or its account or the node's budget
    /// cannot hold it.
    pub fn hibernate(
        &mut self,
        state: Vec<u8>,
        wake_after: Option<Duration>,
    ) -> wasmtime::Result<String> {
        let limit = self.me.limits().message_size;
        if state.len() as u64 > limit {
            return Ok(format!(
                "limit: message_size: a state of {} bytes, over its message_size of {limit}",
                state.len()
            ));
        }
        let receipt = match self
            .me
            .account()
            .charge(state.len() as u64 + HIBERNATION_OVERHEAD)
        {
            Ok(receipt) => receipt,
            Err(refused) => return Ok(format!("limit: {refused}")),
        };
        self.hibernating = Some(Hibernation::new(state, wake_after, receipt));
        Err(wasmtime::Error::new(Hibernating))
    }

    /// The state `hibernate` ended the instance with, if it did.
    pub(in crate::runtime) fn take_hibernation(&mut self) -> Option<Hibernation> {
        self.hibernating.take()
    }

    /// Makes this instance the one that wakes the process from `hibernation`.
    pub(in crate::runtime) fn resume(&mut self, hibernation: Hibernation) {
        self.resumed = Some(hibernation);
    }

    /// Makes this instance the trial of an upgrade: if it fails before it first receives,
    /// the process goes back to `trial.old` with the state it was woken with.
    pub(in crate::runtime) fn start_trial(&mut self, trial: Trial) {
        self.trial = Some(Box::new(trial));
    }

    /// The process takes a message or an event: an upgrade's trial, if this instance is one,
    /// has passed.
    pub fn receiving(&mut self) {
        if let Some(trial) = self.trial.take() {
            let _ = trial.steps.send(Step::Receiving);
        }
    }

    /// The trial this instance still is, if it is one, and the state it woke with: what a
    /// failed one goes back with.
    pub(in crate::runtime) fn take_trial(&mut self) -> Option<(Box<Trial>, Hibernation)> {
        let trial = self.trial.take()?;
        Some((trial, self.resumed.take()?))
    }

    /// The state this instance was woken with; `None` in the one its spawn made.
    pub fn resumed(&self) -> Option<&[u8]> {
        self.resumed.as_ref().map(|h| &*h.state)
    }

    /// Ends the calling process with `limit: {message}`: the host call that found it returns
    /// this error, and the process's exit reason says why.
    pub fn break_limit(&mut self, message: String) -> wasmtime::Error {
        let error = wasmtime::Error::msg(message.clone());
        self.limit_broken = Some(message);
        error
    }

    /// Charges `bytes` the host keeps for this process (a timer, say) to its `host_memory`;
    /// past it, the process ends with `limit` (the call returns the error).
    pub fn hold(&mut self, bytes: u64) -> wasmtime::Result<Charge> {
        match self.me.account().charge(bytes) {
            Ok(receipt) => Ok(receipt),
            Err(refused) => Err(self.break_limit(refused.to_string())),
        }
    }

    /// The limit the process broke, if that is why its call failed.
    pub(in crate::runtime) fn take_limit_broken(&mut self) -> Option<String> {
        self.limit_broken.take()
    }

    /// The pid a guest names by its node, `host` and `id`. A host the app has is shared with
    /// its processes' pids (nothing is allocated); one it has not names no process, and one
    /// longer than any host's name, or a node name longer than any node's, is refused (the
    /// call traps): a guest cannot make the host keep a megabyte-long pid in an event.
    pub fn pid_of(&self, node: Option<NodeId>, host: String, id: u64) -> wasmtime::Result<Pid> {
        if let Some(node) = &node
            && node.name.len() > MAX_NODE_NAME
        {
            return Err(wasmtime::Error::new(Fault(format!(
                "invalid pid: its node's name is {} bytes; no node's name is longer than {MAX_NODE_NAME}",
                node.name.len()
            ))));
        }
        if let Some(known) = self.node.host_id(&host) {
            return Ok(Pid {
                node,
                host: known.clone(),
                id,
            });
        }
        if host.len() > MAX_PID_HOST {
            return Err(wasmtime::Error::new(Fault(format!(
                "invalid pid: its host is {} bytes; no host's name is longer than {MAX_PID_HOST}",
                host.len()
            ))));
        }
        Ok(Pid {
            node,
            host: Arc::from(host),
            id,
        })
    }

    pub fn pid(&self) -> &Pid {
        self.me.pid()
    }

    /// The `process.wasm` entry this process runs.
    pub fn entry(&self) -> &str {
        self.me.entry()
    }

    /// This process, for handles to its mailbox and events.
    pub fn process(&self) -> &Arc<Process> {
        &self.me
    }

    pub(in crate::runtime) fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// The terminal, if this process is bound to it.
    pub fn terminal(&self) -> Option<&Terminal> {
        let terminal = &self.node.terminal;
        terminal.is_bound_to(self.pid().id).then_some(&**terminal)
    }

    /// Logs a line for this process, within its bounds and `log_rate`.
    pub fn log(&mut self, level: tracing::Level, message: &str, fields: &[(String, Vec<u8>)]) {
        if !log::enabled(level) {
            return;
        }
        let pid = self.me.pid().to_string();
        let origin = log::Origin {
            pid: &pid,
            entry: self.me.entry(),
            service: self.me.service(),
        };
        log::write(
            &mut self.log,
            self.me.account(),
            origin,
            level,
            message,
            fields,
        );
    }

    /// Sends a message, paid for by this process until it is read.
    pub fn send(&self, to: &Destination, topic: String, payload: Vec<u8>) -> Result<(), SendError> {
        self.node
            .send_from(Some(self.pid()), self.me.account(), to, topic, payload)
    }

    /// Spawns a child of this process, counted against its `children` limit; on another
    /// node of the cluster if `host` names one (`c@app:processes`), which answers after a
    /// round trip.
    pub fn spawn(
        &self,
        entry: String,
        host: String,
        args: Vec<Vec<u8>>,
        watch: Watch,
    ) -> impl Future<Output = Result<Pid, SpawnError>> + Send + 'static {
        let elsewhere = host
            .split_once('@')
            .map(|(node, host)| (node.to_string(), host.to_string()));
        match (elsewhere, &self.node.cluster) {
            (Some((node, host)), Some(cluster)) => {
                Either::Left(cluster.spawn_on(&self.me, &node, (entry, host), args, watch))
            }
            // Outside a cluster `c@app:processes` names no host.
            _ => {
                let options = SpawnOptions::new(entry, host)
                    .args(args)
                    .child_of(&self.me, watch);
                Either::Right(std::future::ready(self.node.spawn(options)))
            }
        }
    }

    pub fn monitor(&self, target: &Pid) {
        self.node.monitor(&self.me, target);
    }

    pub fn unmonitor(&self, target: &Pid) {
        self.node.unmonitor(&self.me, target);
    }

    /// Checks this process's authority over `target`; `None` if `target` is not alive here
    /// (or is a process of another node).
    fn over(&self, target: &Pid) -> Result<Option<Arc<Process>>, Denied> {
        if let Some(cluster) = self.elsewhere(target) {
            cluster.may_signal(&self.me, target)?;
            return Ok(None);
        }
        match self.node.table.find(target) {
            Some(process) => may_signal(&self.me, &process).map(|()| Some(process)),
            None => Ok(None),
        }
    }

    /// The cluster, if `target` is a process of another node of it.
    fn elsewhere(&self, target: &Pid) -> Option<&Arc<Cluster>> {
        let cluster = self.node.cluster.as_ref()?;
        (target.node.is_some() && target.node.as_ref() != self.node.node_id()).then_some(cluster)
    }

    pub fn link(&self, target: &Pid) -> Result<(), Denied> {
        self.over(target)?;
        self.node.link(&self.me, target);
        Ok(())
    }

    pub fn unlink(&self, target: &Pid) -> Result<(), Denied> {
        self.over(target)?;
        self.node.unlink(&self.me, target);
        Ok(())
    }

    /// Whether abnormal exits of linked processes arrive as events instead of ending this
    /// one.
    pub fn trap_links(&self, enabled: bool) {
        self.me.set_trap_links(enabled);
    }

    /// Ends `target` at once; its reason names this process.
    pub fn terminate(&self, target: &Pid) -> Result<bool, Denied> {
        if let Some(cluster) = self.elsewhere(target) {
            cluster.may_signal(&self.me, target)?;
            cluster.terminate(&self.me, target);
            // Whether it was still alive is known on its node only.
            return Ok(true);
        }
        if self.over(target)?.is_none() {
            return Ok(false);
        }
        let by = self.pid().to_string();
        Ok(self.node.terminate(target, ExitReason::Killed(by)))
    }

    pub fn cancel(&self, target: &Pid, reason: String, grace: Duration) -> Result<bool, Denied> {
        if let Some(cluster) = self.elsewhere(target) {
            cluster.may_signal(&self.me, target)?;
            cluster.cancel(&self.me, target, reason, grace);
            return Ok(true);
        }
        if self.over(target)?.is_none() {
            return Ok(false);
        }
        Ok(self.node.cancel_by(Some(&self.me), target, reason, grace))
    }

    /// Registers `name` for the calling process; on a node of a cluster, across the cluster
    /// (a round trip to its names bucket).
    pub fn register(
        &self,
        name: String,
    ) -> impl Future<Output = Result<(), RegisterError>> + Send + 'static {
        let (node, me) = (self.node.clone(), self.me.clone());
        async move { node.register(&me, &name).await }
    }

    pub fn lookup(&self, name: &str) -> Option<Pid> {
        self.node.lookup(name)
    }

    pub fn unregister(&self, name: &str) -> bool {
        self.node.unregister(&self.me, name)
    }
}

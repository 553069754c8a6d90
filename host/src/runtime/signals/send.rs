//! Messages: delivered to a pid or a registered name, in order from one sender to one
//! receiver, within the receiver's limits (`message_size`, and the mailbox's own) and the
//! sender's (`host_memory`: a waiting message is charged to whoever sent it, `ledger.rs`).

use crate::runtime::node::{MAX_NAME_LEN, Node};
use crate::runtime::process::{Account, Message, cost};
use wasmhost_types::{Destination, Pid, SendError};

/// The longest topic, in bytes: a topic names what a message is, like a registered name.
pub const MAX_TOPIC: usize = 255;

impl Node {
    /// Delivers a message from `from` (paid for by `payer`; the node's own account for the
    /// node's messages). Sending to a pid that has exited drops the message (as in Erlang);
    /// sending to a name nobody holds is an error.
    pub(in crate::runtime) fn send_from(
        &self,
        from: Option<&Pid>,
        payer: &std::sync::Arc<Account>,
        to: &Destination,
        topic: String,
        payload: Vec<u8>,
    ) -> Result<(), SendError> {
        if topic.len() > MAX_TOPIC {
            return Err(SendError::Limit(format!(
                "topic: {} bytes, the most is {MAX_TOPIC}",
                topic.len()
            )));
        }
        let target = match to {
            Destination::Pid(pid) if pid.node.as_ref() != self.node_id() => {
                return self.send_remote(from, payer, pid, topic, payload);
            }
            Destination::Pid(pid) => self.table.find(pid),
            Destination::Name(name) if name.len() > MAX_NAME_LEN => {
                return Err(SendError::Limit(format!(
                    "name: {} bytes, the most is {MAX_NAME_LEN}",
                    name.len()
                )));
            }
            Destination::Name(name) => match self.holder(name) {
                Some(id) => self.table.get(id),
                None => match self.cluster.as_ref().and_then(|c| c.lookup(name)) {
                    Some(pid) => return self.send_remote(from, payer, &pid, topic, payload),
                    None => return Err(SendError::UnknownName(name.clone())),
                },
            },
        };
        let Some(target) = target else {
            return Ok(());
        };
        let limits = target.limits();
        if payload.len() as u64 > limits.message_size {
            return Err(SendError::TooLarge(limits.message_size));
        }
        let message = Message {
            topic,
            from: from.cloned(),
            payload,
        };
        let receipt = payer
            .charge(cost(&message))
            .map_err(|refused| SendError::Limit(refused.to_string()))?;
        target
            .mailbox()
            .push(message, receipt, limits)
            .map_err(|_| SendError::MailboxFull(target.pid().clone()))
    }

    /// Sends a message to a pid of another node: through the cluster, or nowhere (a pid of
    /// a node this one cannot reach names no process it can deliver to).
    fn send_remote(
        &self,
        from: Option<&Pid>,
        payer: &std::sync::Arc<Account>,
        to: &Pid,
        topic: String,
        payload: Vec<u8>,
    ) -> Result<(), SendError> {
        if payload.len() as u64 > self.defaults().message_size {
            return Err(SendError::TooLarge(self.defaults().message_size));
        }
        match &self.cluster {
            Some(cluster) => cluster.send(from, payer, to, topic, payload),
            None => Ok(()),
        }
    }

    /// Delivers a message from the node itself (`sender` is `none` for the receiver).
    pub fn send(&self, to: &Destination, topic: String, payload: Vec<u8>) -> Result<(), SendError> {
        self.send_from(None, &self.account, to, topic, payload)
    }
}

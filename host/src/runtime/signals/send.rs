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
            Destination::Pid(pid) => self.table.find(pid),
            Destination::Name(name) if name.len() > MAX_NAME_LEN => {
                return Err(SendError::Limit(format!(
                    "name: {} bytes, the most is {MAX_NAME_LEN}",
                    name.len()
                )));
            }
            Destination::Name(name) => {
                let id = self
                    .holder(name)
                    .ok_or_else(|| SendError::UnknownName(name.clone()))?;
                self.table.get(id)
            }
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

    /// Delivers a message from the node itself (`sender` is `none` for the receiver).
    pub fn send(&self, to: &Destination, topic: String, payload: Vec<u8>) -> Result<(), SendError> {
        self.send_from(None, &self.account, to, topic, payload)
    }
}

//! Messages: delivered to a pid or a registered name, in order from one sender to one
//! receiver, within the receiver's limits (`message_size`, and the mailbox's own).

use super::mailbox::Message;
use super::node::Node;
use super::{Destination, Pid, SendError};

impl Node {
    /// Delivers a message. Sending to a pid that has exited drops the message (as in
    /// Erlang); sending to a name nobody holds is an error.
    pub fn send(
        &self,
        from: Option<&Pid>,
        to: &Destination,
        topic: String,
        payload: Vec<u8>,
    ) -> Result<(), SendError> {
        let target = match to {
            Destination::Pid(pid) => self.table.find(pid),
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
        target
            .mailbox()
            .push(message, limits)
            .map_err(|_| SendError::MailboxFull(target.pid().clone()))
    }
}

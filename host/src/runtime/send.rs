//! Messages: delivered to a pid or a registered name, in order from one sender to one
//! receiver, within the receiver's mailbox and message-size limits.

use super::node::Node;
use super::process::Message;
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
        let id = match to {
            Destination::Pid(pid) => pid.id,
            Destination::Name(name) => self
                .holder(name)
                .ok_or_else(|| SendError::UnknownName(name.clone()))?,
        };
        let Some(target) = self.table.get(id) else {
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
            .push_within(message, limits.mailbox)
            .map_err(|_| SendError::MailboxFull(target.pid().clone()))
    }
}

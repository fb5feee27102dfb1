//! Commands of 16 MiB or more come in several packets: relayed to the backend, read
//! whole, or skipped, always within `max_packet_size`.

use super::session::{Outgoing, Rest, Session};
use super::FrontendError;
use std::time::Duration;

use crate::protocol::errors::ErrorPacket;
use crate::protocol::packet::{Frame, MAX_PAYLOAD};
use crate::protocol::ProtocolError;

/// How long a client over the size limit may go on sending the rest of its command,
/// which Sluice reads and drops so that its error follows the client's last packet.
const DISCARD_FOR: Duration = Duration::from_secs(10);

/// Where the rest of a command refused for its size starts.
pub(super) enum Oversized {
    /// Its first packet's header is the next thing to read (its payload not read).
    Unread,
    /// After a packet already read, with this sequence id, and continued or not.
    After { seq: u8, continued: bool },
}

impl Session<'_> {
    /// A command over `max_packet_size` (`size` bytes so far): the rest of it is read
    /// and dropped, then ERROR 1153 follows the client's last packet, as the server
    /// answers it, and the connection closes. The error that ends the session.
    pub(super) async fn too_large(
        &mut self,
        rest: Oversized,
        size: usize,
        limit: usize,
    ) -> FrontendError {
        let io = &mut self.client.io;
        let last = match rest {
            Oversized::After {
                seq,
                continued: false,
            } => Ok(seq),
            Oversized::Unread | Oversized::After { .. } => {
                match crate::clock::timeout(DISCARD_FOR, io.discard_command()).await {
                    Ok(Ok(seq)) => Ok(seq),
                    // Gone, or still sending: it gets the error anyway, numbered as if
                    // its command had ended at the packet where it went over.
                    _ => Err(()),
                }
            }
        };
        let fallback = match rest {
            Oversized::Unread => 0,
            Oversized::After { seq, .. } => seq,
        };
        let seq = last.unwrap_or(fallback).wrapping_add(1);
        let _ = self
            .reply(&ErrorPacket::packet_too_large().encode(seq))
            .await;
        self.client
            .io
            .close_discarding(Duration::from_secs(1))
            .await;
        ProtocolError::TooLarge { size, limit }.into()
    }

    /// Writes the command (and its continuation packets) to the backend; returns the
    /// sequence id of the response.
    pub(super) async fn forward(&mut self, first: Outgoing) -> Result<u8, FrontendError> {
        let lease = self.hold.lease_mut().expect("held before forwarding");
        match first {
            Outgoing::Frame(first) => {
                lease.conn().write(first.as_wire()).await?;
                self.continuation(&first, Rest::Relay).await
            }
            Outgoing::Payload(payload, seq) => {
                lease.conn().write_payload(&payload).await?;
                Ok(seq)
            }
        }
    }

    /// The whole payload of a command: `first`'s and its continuation packets' (bounded
    /// by `max_packet_size`), and the sequence id for the reply.
    pub(super) async fn whole_payload(
        &mut self,
        first: Frame,
    ) -> Result<(Vec<u8>, u8), FrontendError> {
        let mut payload = first.payload().to_vec();
        let seq = self
            .continuation(&first, Rest::Collect(&mut payload))
            .await?;
        Ok((payload, seq))
    }

    /// Reads and drops the continuation packets of a command that will not run; returns
    /// the sequence id for the reply.
    pub(super) async fn skip_rest(&mut self, first: &Frame) -> Result<u8, FrontendError> {
        self.continuation(first, Rest::Skip).await
    }

    /// Reads the continuation packets that follow `first` (a command of 16 MiB or more)
    /// into `rest`, enforcing `max_packet_size` on the whole command. Returns the
    /// sequence id for the reply.
    pub(super) async fn continuation(
        &mut self,
        first: &Frame,
        mut rest: Rest<'_>,
    ) -> Result<u8, FrontendError> {
        let max = self.ctx.config.server.max_packet_size;
        let mut total = first.payload().len();
        let (mut more, mut seq) = (first.is_continued(), first.seq());
        while more {
            let frame = self.client.io.read(MAX_PAYLOAD).await?;
            total += frame.payload().len();
            if total > max {
                if matches!(rest, Rest::Relay) {
                    // The backend got part of the command and waits for the rest: it
                    // can only be closed. The session ends right after.
                    self.drop_backend();
                }
                let rest = Oversized::After {
                    seq: frame.seq(),
                    continued: frame.is_continued(),
                };
                return Err(Box::pin(self.too_large(rest, total, max)).await);
            }
            (more, seq) = (frame.is_continued(), frame.seq());
            match &mut rest {
                Rest::Skip => {}
                Rest::Relay => {
                    if let Some(lease) = self.hold.lease_mut() {
                        lease.conn().write(frame.as_wire()).await?;
                    }
                }
                Rest::Collect(payload) => payload.extend_from_slice(frame.payload()),
            }
        }
        Ok(seq.wrapping_add(1))
    }
}

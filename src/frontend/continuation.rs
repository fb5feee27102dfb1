//! Commands of 16 MiB or more come in several packets: relayed to the backend, read
//! whole, or skipped, always within `max_packet_size`.

use super::session::{Outgoing, Rest, Session};
use super::FrontendError;
use crate::protocol::packet::{Frame, MAX_PAYLOAD};
use crate::protocol::ProtocolError;

impl Session<'_> {
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
                return Err(ProtocolError::TooLarge {
                    size: total,
                    limit: max,
                }
                .into());
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

//! Framing: a 3-byte little-endian payload length and a 1-byte sequence id per packet.
//! Payloads of exactly 0xFF_FFFF bytes continue in the next packet (16 MiB continuation).

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::ProtocolError;

pub const HEADER_LEN: usize = 4;
/// The largest payload of one physical packet; a payload this long is continued.
pub const MAX_PAYLOAD: usize = 0xFF_FFFF;

/// Payload length and sequence id of a packet header.
pub fn parse_header(h: &[u8]) -> (usize, u8) {
    (
        usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16,
        h[3],
    )
}

/// Appends one packet (header and payload) to `out`. Sluice's own packets are small.
pub fn push_packet(out: &mut impl bytes::BufMut, seq: u8, payload: &[u8]) {
    debug_assert!(payload.len() < MAX_PAYLOAD);
    let len = payload.len() as u32;
    out.put_slice(&len.to_le_bytes()[..3]);
    out.put_u8(seq);
    out.put_slice(payload);
}

/// Appends a command payload of any length as packets with sequence ids from 0: chunks of
/// 16 MiB - 1 and a final shorter one (empty when the length is an exact multiple).
pub fn push_command(out: &mut Vec<u8>, payload: &[u8]) {
    let mut seq = 0u8;
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_PAYLOAD);
        out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        out.push(seq);
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        seq = seq.wrapping_add(1);
        if n < MAX_PAYLOAD {
            return;
        }
    }
}

pub fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    push_packet(&mut out, seq, payload);
    out
}

/// One physical packet: header and payload in one buffer, split off the read buffer
/// without copying.
#[derive(Debug)]
pub struct Frame {
    bytes: BytesMut,
}

impl Frame {
    pub fn seq(&self) -> u8 {
        self.bytes[3]
    }

    pub fn payload(&self) -> &[u8] {
        &self.bytes[HEADER_LEN..]
    }

    /// The payload, for rewriting in place (a statement id, same length).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[HEADER_LEN..]
    }

    /// Keeps the first `len` bytes of the payload (a rewrite in place that shortened
    /// it), with the header saying so.
    pub fn truncate_payload(&mut self, len: usize) {
        debug_assert!(len <= self.payload().len());
        self.bytes.truncate(HEADER_LEN + len);
        self.bytes[..3].copy_from_slice(&(len as u32).to_le_bytes()[..3]);
    }

    /// Gives the packet another sequence id (a response with packets put in before it).
    pub fn set_seq(&mut self, seq: u8) {
        self.bytes[3] = seq;
    }

    /// Header and payload, ready to be written elsewhere unchanged.
    pub fn as_wire(&self) -> &[u8] {
        &self.bytes
    }

    /// Takes the wire bytes out, to batch with neighbouring frames.
    pub fn into_bytes(self) -> BytesMut {
        self.bytes
    }

    /// True when the payload is continued in the next packet.
    pub fn is_continued(&self) -> bool {
        self.payload().len() == MAX_PAYLOAD
    }
}

/// Buffered reader of whole packets.
#[derive(Debug)]
pub struct PacketReader {
    buf: BytesMut,
    /// Bytes the buffer grows by when it runs low (a packet larger than that gets the
    /// room it needs at once).
    chunk: usize,
}

/// A backend's results come in bulk: read them 16 KiB at a time.
pub const RESULTS_CHUNK: usize = 16 * 1024;
/// A client's commands are mostly small, and thousands of clients sit idle: 1 KiB each.
pub const COMMANDS_CHUNK: usize = 1024;

impl Default for PacketReader {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketReader {
    pub fn new() -> Self {
        Self::with_chunk(RESULTS_CHUNK)
    }

    pub fn with_chunk(chunk: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(chunk),
            chunk,
        }
    }

    /// Whether bytes are waiting in the buffer (on an idle connection: unasked data).
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The bytes read but not yet taken as frames (what follows the last frame taken).
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Drops whatever is buffered (a connection being closed).
    pub fn discard(&mut self) {
        self.buf.clear();
    }

    /// Reads one physical packet whose payload is at most `max_payload` bytes.
    ///
    /// Cancellation safe: bytes read before a cancellation stay buffered in `self` and the
    /// next call resumes with them.
    pub async fn read<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        max_payload: usize,
    ) -> Result<Frame, ProtocolError> {
        loop {
            if let Some(frame) = self.next_buffered(max_payload)? {
                return Ok(frame);
            }
            self.fill(r).await?;
        }
    }

    /// The next packet if it is already complete in the buffer.
    pub fn next_buffered(&mut self, max_payload: usize) -> Result<Option<Frame>, ProtocolError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let (len, _) = parse_header(&self.buf[..HEADER_LEN]);
        if len > max_payload {
            return Err(ProtocolError::TooLarge {
                size: len,
                limit: max_payload,
            });
        }
        let total = HEADER_LEN + len;
        if self.buf.len() >= total {
            return Ok(Some(Frame {
                bytes: self.buf.split_to(total),
            }));
        }
        self.buf.reserve(total - self.buf.len());
        Ok(None)
    }

    /// Drops a command refused for its size without buffering it: the packet whose
    /// header is next in the buffer (or in `r`) and every packet continuing it. The
    /// sequence id of the last one, which the answer must follow.
    pub async fn discard_command<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
    ) -> Result<u8, ProtocolError> {
        loop {
            while self.buf.len() < HEADER_LEN {
                self.fill(r).await?;
            }
            let (len, seq) = parse_header(&self.buf[..HEADER_LEN]);
            let buffered = (HEADER_LEN + len).min(self.buf.len());
            bytes::Buf::advance(&mut self.buf, buffered);
            let mut left = HEADER_LEN + len - buffered;
            // The rest straight from the stream, in large reads (the buffer stays small).
            let mut sink = vec![0u8; left.min(64 * 1024)];
            while left > 0 {
                let want = left.min(sink.len());
                match r.read(&mut sink[..want]).await? {
                    0 => return Err(ProtocolError::Closed),
                    n => left -= n,
                }
            }
            if len < MAX_PAYLOAD {
                return Ok(seq);
            }
        }
    }

    /// Reads more bytes from `r` into the buffer. Cancellation safe.
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<(), ProtocolError> {
        // Once the frames split off the buffer are dropped, this reclaims the same
        // allocation: no allocation per packet.
        // (Room for a whole chunk counting what is buffered, so the buffer does not grow
        // when it holds the start of the next packet.)
        if self.buf.capacity() - self.buf.len() < self.chunk / 4 {
            let len = self.buf.len();
            self.buf
                .reserve(self.chunk.saturating_sub(len).max(self.chunk / 4));
        }
        if r.read_buf(&mut self.buf).await? == 0 {
            return Err(ProtocolError::Closed);
        }
        Ok(())
    }
}

/// Reads exactly one packet without reading past it. Used before a TLS upgrade, where
/// bytes after the SSLRequest belong to the TLS layer and must stay in the socket.
pub async fn read_exact_packet<R: AsyncRead + Unpin>(
    r: &mut R,
    max_payload: usize,
) -> Result<(u8, Vec<u8>), ProtocolError> {
    let mut header = [0u8; HEADER_LEN];
    read_fully(r, &mut header).await?;
    let (len, seq) = parse_header(&header);
    if len > max_payload {
        return Err(ProtocolError::TooLarge {
            size: len,
            limit: max_payload,
        });
    }
    let mut payload = vec![0u8; len];
    read_fully(r, &mut payload).await?;
    Ok((seq, payload))
}

async fn read_fully<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<(), ProtocolError> {
    match r.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(ProtocolError::Closed),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_command_is_dropped_to_its_last_packet_and_the_next_one_reads() {
        // A command of three packets (16 MiB - 1, 16 MiB - 1, 10 bytes), then another.
        let mut wire = Vec::new();
        push_command(&mut wire, &vec![b'x'; 2 * MAX_PAYLOAD + 10]);
        wire.extend(packet(0, b"\x0e"));
        let mut src = &wire[..];
        let mut r = PacketReader::with_chunk(COMMANDS_CHUNK);
        // Refused from its header, as the command loop does.
        assert!(matches!(
            r.read(&mut src, 1024).await,
            Err(ProtocolError::TooLarge { .. })
        ));
        assert_eq!(r.discard_command(&mut src).await.unwrap(), 2);
        assert!(r.buf.capacity() <= COMMANDS_CHUNK, "{}", r.buf.capacity());
        let next = r.read(&mut src, 1024).await.unwrap();
        assert_eq!((next.seq(), next.payload()), (0, &b"\x0e"[..]));
    }

    #[tokio::test]
    async fn a_frame_shortened_in_place_still_joins_the_frame_before_it() {
        let mut wire = packet(1, b"\x01");
        wire.extend(packet(2, b"\x00\x00\x00\x02\x40\x00\x00\x00\x03\x01\x01x"));
        let mut r = PacketReader::new();
        let first = r.read(&mut &wire[..], 1024).await.unwrap();
        let mut ok = r.read(&mut &wire[..0], 1024).await.unwrap();
        ok.truncate_payload(5);
        assert_eq!(ok.as_wire(), b"\x05\x00\x00\x02\x00\x00\x00\x02\x40");
        let mut joined = first.into_bytes();
        let start = joined.as_ptr();
        joined.unsplit(ok.into_bytes());
        assert_eq!(
            &joined[..],
            b"\x01\x00\x00\x01\x01\x05\x00\x00\x02\x00\x00\x00\x02\x40"
        );
        // Joined where it was read (the reader still shares that buffer), not copied
        // into a new one.
        assert_eq!(joined.as_ptr(), start);
    }

    #[tokio::test]
    async fn reads_packets_split_across_reads() {
        let mut wire = packet(0, b"\x03SELECT 1");
        wire.extend(packet(1, b"\x0e"));
        let (mut a, mut b) = tokio::io::duplex(3);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            a.write_all(&wire).await.unwrap();
        });
        let mut r = PacketReader::new();
        let f = r.read(&mut b, 1024).await.unwrap();
        assert_eq!(f.payload(), b"\x03SELECT 1");
        assert_eq!(f.seq(), 0);
        let f = r.read(&mut b, 1024).await.unwrap();
        assert_eq!((f.payload(), f.seq()), (&b"\x0e"[..], 1));
        writer.await.unwrap();
        assert!(matches!(
            r.read(&mut b, 1024).await,
            Err(ProtocolError::Closed)
        ));
    }

    #[tokio::test]
    async fn a_command_reader_stays_small_and_grows_for_a_large_packet() {
        let mut wire = Vec::new();
        for i in 0..1000u32 {
            wire.extend(packet(0, format!("\x03SELECT {i}").as_bytes()));
        }
        wire.extend(packet(0, &vec![b'x'; 10_000]));
        let mut src = &wire[..];
        let mut r = PacketReader::with_chunk(COMMANDS_CHUNK);
        for _ in 0..1000 {
            let f = r.read(&mut src, 1 << 20).await.unwrap();
            assert!(f.payload().starts_with(b"\x03SELECT "));
            drop(f);
            assert!(r.buf.capacity() <= COMMANDS_CHUNK, "{}", r.buf.capacity());
        }
        let big = r.read(&mut src, 1 << 20).await.unwrap();
        assert_eq!(big.payload().len(), 10_000);
    }

    #[tokio::test]
    async fn oversized_packet_is_refused_before_reading_it() {
        let header = [0xFF, 0xFF, 0x0F, 0];
        let mut r = PacketReader::new();
        let err = r.read(&mut &header[..], 1024).await.unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::TooLarge {
                size: 0x0F_FFFF,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn exact_read_leaves_following_bytes_unread() {
        let mut wire = packet(1, b"ssl-request");
        wire.extend_from_slice(b"\x16\x03\x01tls-client-hello");
        let mut src = &wire[..];
        let (seq, payload) = read_exact_packet(&mut src, 64).await.unwrap();
        assert_eq!((seq, &payload[..]), (1, &b"ssl-request"[..]));
        assert_eq!(src, b"\x16\x03\x01tls-client-hello");
    }
}

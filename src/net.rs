//! A TCP stream that may have been upgraded to TLS, on either side of the proxy.

use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::protocol::packet::{Frame, PacketReader, COMMANDS_CHUNK};
use crate::protocol::ProtocolError;

/// Plain TCP or TLS over TCP (client or server side; `tokio_rustls::TlsStream` is both).
pub enum MaybeTls {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl MaybeTls {
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }

    /// For a connection that should be silent (idle in the pool): true when the peer
    /// closed it or sent something unasked (a server that hit its `wait_timeout`, or was
    /// restarted). Costs no system call unless the runtime has already seen the socket
    /// become readable; then a one-byte peek (which consumes nothing) confirms it.
    pub fn peer_spoke(&self) -> bool {
        let tcp = match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(tls) => tls.get_ref().0,
        };
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if tcp.poll_read_ready(&mut cx).is_pending() {
            return false;
        }
        let mut byte = [0u8; 1];
        let mut buf = tokio::io::ReadBuf::new(&mut byte);
        tcp.poll_peek(&mut cx, &mut buf).is_ready()
    }

    /// Writes all of `bytes` and flushes. The flush matters for TLS: rustls may keep
    /// encrypted bytes queued when the socket is full, and nothing else would send them
    /// while the other side waits. For plain TCP it costs nothing.
    #[inline]
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes).await?;
        self.flush().await
    }

    /// [`Self::send`], failing with `TimedOut` if the peer takes no bytes for `idle`
    /// (a frozen or stalled reader; a slow but steady one is fine). A timer is armed only
    /// while a write cannot make progress, so the usual write costs none.
    #[inline]
    pub async fn send_within(&mut self, bytes: &[u8], idle: Duration) -> io::Result<()> {
        let mut written = 0;
        while written < bytes.len() {
            let n = progress_within(idle, self.write(&bytes[written..])).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            written += n;
        }
        progress_within(idle, self.flush()).await
    }
}

/// Polls `step` once; only if it is not ready does a timeout of `idle` apply.
async fn progress_within<T>(
    idle: Duration,
    step: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    let mut step = pin!(step);
    match std::future::poll_fn(|cx| Poll::Ready(step.as_mut().poll(cx))).await {
        Poll::Ready(result) => result,
        Poll::Pending => crate::clock::timeout(idle, step).await.unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "peer stopped reading",
            ))
        }),
    }
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A connection's stream with its bounded packet reader: the one type through which
/// Sluice reads and writes MySQL packets, on the client side and the backend side alike.
pub struct PacketStream {
    stream: MaybeTls,
    reader: PacketReader,
    /// A buffer for writes Sluice assembles itself (a response it changes on the way),
    /// kept from one to the next so that they do not allocate. Empty, with no memory,
    /// on connections that never need one.
    assembly: BytesMut,
}

/// The largest assembly buffer kept for the next write; a larger one (a big result
/// relayed in one batch) is freed, so an idle connection never holds more.
const KEPT_ASSEMBLY: usize = 16 * 1024;

impl PacketStream {
    /// A client's stream: its reader is sized for commands, not results.
    pub fn new(stream: MaybeTls) -> Self {
        Self::from_parts(stream, PacketReader::with_chunk(COMMANDS_CHUNK))
    }

    /// A stream whose first packets `reader` has already read (and may have buffered).
    pub fn from_parts(stream: MaybeTls, reader: PacketReader) -> Self {
        Self {
            stream,
            reader,
            assembly: BytesMut::new(),
        }
    }

    /// The assembly buffer (empty), to fill and write; give it back with
    /// [`PacketStream::keep_assembly`].
    pub fn take_assembly(&mut self) -> BytesMut {
        std::mem::take(&mut self.assembly)
    }

    /// Keeps a buffer from [`PacketStream::take_assembly`] for the next write, unless it
    /// grew large.
    pub fn keep_assembly(&mut self, mut buf: BytesMut) {
        if buf.capacity() <= KEPT_ASSEMBLY {
            buf.clear();
            self.assembly = buf;
        }
    }

    /// The next packet, of at most `max_payload` bytes. Cancellation safe: a partial
    /// read stays in the buffer.
    #[inline]
    pub async fn read(&mut self, max_payload: usize) -> Result<Frame, ProtocolError> {
        self.reader.read(&mut self.stream, max_payload).await
    }

    /// See [`MaybeTls::send`].
    #[inline]
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.send(bytes).await
    }

    /// See [`MaybeTls::send_within`].
    #[inline]
    pub async fn send_within(&mut self, bytes: &[u8], idle: Duration) -> io::Result<()> {
        self.stream.send_within(bytes, idle).await
    }

    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// For a connection that should be silent: the peer closed it or sent something
    /// (buffered or still in the socket).
    pub fn peer_spoke(&self) -> bool {
        self.reader.has_buffered() || self.stream.peer_spoke()
    }

    /// See [`PacketReader::discard_command`].
    pub async fn discard_command(&mut self) -> Result<u8, ProtocolError> {
        self.reader.discard_command(&mut self.stream).await
    }

    /// Ends a connection whose peer may still be sending: closes the write side, so
    /// what was sent (an error) is followed by the end of the stream, then reads and
    /// drops whatever comes for up to `within`. Closing with the peer's bytes unread
    /// would reset the connection, and the peer might never read the error.
    pub async fn close_discarding(&mut self, within: Duration) {
        let _ = crate::clock::timeout(within, self.stream.shutdown()).await;
        let drain = async {
            let mut sink = [0u8; 8192];
            loop {
                match tokio::io::AsyncReadExt::read(&mut self.stream, &mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        };
        let _ = crate::clock::timeout(within, drain).await;
    }

    /// The stream and the reader apart, for a relay that reads batches from one side
    /// while writing to the other.
    #[inline]
    pub fn parts(&mut self) -> (&mut MaybeTls, &mut PacketReader) {
        (&mut self.stream, &mut self.reader)
    }
}

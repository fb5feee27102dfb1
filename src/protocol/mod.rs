//! MySQL wire format: framing, commands, responses, handshakes. No I/O policy lives here.

pub mod command;
pub mod handshake;
pub mod packet;
pub mod response;
pub mod session_track;
pub mod wire;

/// Capability flags (`CLIENT_*`) used by Sluice on either side of the proxy.
pub mod caps {
    pub const LONG_PASSWORD: u32 = 0x0000_0001;
    pub const FOUND_ROWS: u32 = 0x0000_0002;
    pub const LONG_FLAG: u32 = 0x0000_0004;
    pub const CONNECT_WITH_DB: u32 = 0x0000_0008;
    pub const NO_SCHEMA: u32 = 0x0000_0010;
    pub const COMPRESS: u32 = 0x0000_0020;
    pub const LOCAL_FILES: u32 = 0x0000_0080;
    pub const IGNORE_SPACE: u32 = 0x0000_0100;
    pub const PROTOCOL_41: u32 = 0x0000_0200;
    pub const INTERACTIVE: u32 = 0x0000_0400;
    pub const SSL: u32 = 0x0000_0800;
    pub const TRANSACTIONS: u32 = 0x0000_2000;
    pub const SECURE_CONNECTION: u32 = 0x0000_8000;
    pub const MULTI_STATEMENTS: u32 = 0x0001_0000;
    pub const MULTI_RESULTS: u32 = 0x0002_0000;
    pub const PS_MULTI_RESULTS: u32 = 0x0004_0000;
    pub const PLUGIN_AUTH: u32 = 0x0008_0000;
    pub const CONNECT_ATTRS: u32 = 0x0010_0000;
    pub const PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 0x0020_0000;
    pub const SESSION_TRACK: u32 = 0x0080_0000;
    pub const DEPRECATE_EOF: u32 = 0x0100_0000;

    /// Flags that change how a backend connection behaves for the client that uses it.
    /// Connections are only shared between clients that agree on these (design.md §5).
    pub const SEMANTIC: u32 = FOUND_ROWS | MULTI_STATEMENTS | DEPRECATE_EOF;
}

/// Server status flags (`SERVER_*`) carried by OK and EOF packets.
pub mod status {
    pub const IN_TRANS: u16 = 0x0001;
    pub const AUTOCOMMIT: u16 = 0x0002;
    pub const MORE_RESULTS_EXISTS: u16 = 0x0008;
    pub const CURSOR_EXISTS: u16 = 0x0040;
    pub const LAST_ROW_SENT: u16 = 0x0080;
    pub const IN_TRANS_READONLY: u16 = 0x2000;
    pub const SESSION_STATE_CHANGED: u16 = 0x4000;
}

/// Malformed or oversized wire data. Always the peer's fault, never a reason to panic.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("packet truncated while reading {0}")]
    Truncated(&'static str),
    #[error("packet of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("unexpected packet sequence id {got}, expected {expected}")]
    Sequence { got: u8, expected: u8 },
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    #[error("peer closed the connection")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

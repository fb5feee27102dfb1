//! MySQL wire format: framing, commands, responses, handshakes. No I/O policy lives here.

pub mod classic_eof;
pub mod command;
pub mod errors;
pub mod flavor;
pub mod handshake;
pub mod packet;
pub mod prepared;
pub mod response;
pub mod result_set;
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

    /// Flags that change how a backend connection behaves for the client that uses it,
    /// which no session variable can stand in for and no translation can undo:
    /// connections are only shared between clients that agree on these.
    /// - FOUND_ROWS: the server counts matched rather than changed rows in every
    ///   UPDATE's and INSERT … ON DUPLICATE KEY UPDATE's OK packet and in ROW_COUNT(). It
    ///   cannot be switched after login, and the OK's info text has both counts only for
    ///   UPDATE, so it is not translated.
    /// - LOCAL_FILES (offered only with `server.local_infile`): lets the server ask the
    ///   client for a file, which only a client that negotiated it can answer.
    ///
    /// Every other difference is carried per session instead: DEPRECATE_EOF is translated
    /// (`classic_eof`), MULTI_STATEMENTS is set per command with COM_SET_OPTION, and the
    /// handshake's character set, IGNORE_SPACE and INTERACTIVE are replayed as session
    /// variables (`multiplex::handshake_state`).
    pub const SEMANTIC: u32 = FOUND_ROWS | LOCAL_FILES;
}

/// The first byte of a server response packet that says what it is.
pub mod header {
    pub const OK: u8 = 0x00;
    /// EOF, or under `CLIENT_DEPRECATE_EOF` the OK that ends a result set.
    pub const EOF: u8 = 0xFE;
    pub const ERR: u8 = 0xFF;
    /// The server asks the client for a file (`LOAD DATA LOCAL INFILE`).
    pub const LOCAL_INFILE: u8 = 0xFB;
}

/// Server status flags (`SERVER_*`) carried by OK and EOF packets.
pub mod status {
    pub const IN_TRANS: u16 = 0x0001;
    pub const AUTOCOMMIT: u16 = 0x0002;
    pub const MORE_RESULTS_EXISTS: u16 = 0x0008;
    pub const CURSOR_EXISTS: u16 = 0x0040;
    pub const NO_BACKSLASH_ESCAPES: u16 = 0x0200;
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

/// Property tests: random and mutated input never panics a parser, and what parses
/// re-encodes to the same value.
#[cfg(test)]
mod properties {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::caps;
    use super::handshake::{parse_auth_switch, Greeting, HandshakeResponse};
    use super::prepared::{statement_id, ExecuteLayout, PrepareOk};
    use super::response::{ErrPacket, Expect, OkPacket, Tracker};
    use super::session_track::changes;

    fn random_bytes(rng: &mut StdRng) -> Vec<u8> {
        let len = rng.gen_range(0..96);
        (0..len).map(|_| rng.gen()).collect()
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = StdRng::seed_from_u64(0x51u64);
        for _ in 0..20_000 {
            let b = random_bytes(&mut rng);
            let _ = HandshakeResponse::parse(&b);
            let _ = Greeting::parse(&b);
            let _ = parse_auth_switch(&b);
            let _ = OkPacket::parse(&b, rng.gen());
            let _ = ErrPacket::parse(&b);
            let _ = changes(&b).count();
            let _ = PrepareOk::parse(&b);
            let _ = statement_id(&b);
            if let Some(layout) = ExecuteLayout::of(&b, rng.gen_range(0..20)) {
                match layout.types(&b) {
                    Some(types) => {
                        assert_eq!(layout.with_types(&b, types).len(), b.len() + types.len())
                    }
                    None => assert!(layout.with_types(&b, &[1, 2]).len() == b.len() + 2),
                }
            }
            let mut t = Tracker::new(Expect::Results, rng.gen());
            for chunk in b.chunks(rng.gen_range(1..8)) {
                if t.feed(chunk, chunk.len()).is_err() || t.is_done() {
                    break;
                }
            }
        }
    }

    #[test]
    fn handshake_responses_round_trip() {
        let mut rng = StdRng::seed_from_u64(7);
        let flag_choices = [
            caps::PLUGIN_AUTH_LENENC_CLIENT_DATA | caps::SECURE_CONNECTION,
            caps::SECURE_CONNECTION,
            0,
        ];
        for _ in 0..2_000 {
            let word = |rng: &mut StdRng| -> Vec<u8> {
                (0..rng.gen_range(1..20))
                    .map(|_| rng.gen_range(b'a'..=b'z'))
                    .collect()
            };
            let flags = flag_choices[rng.gen_range(0..3)];
            let with_db = rng.gen::<bool>();
            let h = HandshakeResponse {
                capabilities: caps::PROTOCOL_41
                    | caps::PLUGIN_AUTH
                    | caps::CONNECT_ATTRS
                    | flags
                    | if with_db { caps::CONNECT_WITH_DB } else { 0 },
                max_packet: rng.gen(),
                charset: rng.gen(),
                user: word(&mut rng),
                // Without SECURE_CONNECTION the response is NUL-terminated, so no NULs.
                auth_response: (0..rng.gen_range(0..40))
                    .map(|_| rng.gen_range(1..=255))
                    .collect(),
                database: with_db.then(|| word(&mut rng)),
                auth_plugin: Some(word(&mut rng)),
                attributes: (0..rng.gen_range(0..4))
                    .map(|_| (word(&mut rng), word(&mut rng)))
                    .collect(),
            };
            assert_eq!(HandshakeResponse::parse(&h.encode()).unwrap(), h);
        }
    }

    #[test]
    fn truncations_of_valid_packets_never_panic() {
        let ok = b"\x00\x01\x02\x02\x40\x00\x00\x00\x0b\x01\x05\x04shop\x02\x02\x011";
        for cut in 0..ok.len() {
            let _ = OkPacket::parse(&ok[..cut], true);
            if let Ok(p) = OkPacket::parse(&ok[..cut], true) {
                let _ = p.session_state.map(|s| changes(s).count());
            }
        }
    }
}

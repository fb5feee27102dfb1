//! The ERR packets Sluice sends itself, by name. Each uses the code, SQLSTATE and
//! message text the MySQL server uses for the same condition (so drivers that map
//! codes to exceptions, and people searching a message, land where they expect),
//! except 9501, RDS Proxy's own code for a borrow that timed out.

use std::borrow::Cow;
use std::fmt;

use super::header::ERR as ERR_HEADER;
use super::packet;

/// A five-character SQLSTATE, as the ERR packet carries it after `#`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlState([u8; 5]);

impl SqlState {
    /// `HY000`: the general error most server errors carry.
    pub const GENERAL: Self = Self(*b"HY000");
    /// `08S01`: communication link failure (bad handshake, unknown command, too large).
    pub const LINK_FAILURE: Self = Self(*b"08S01");
    /// `08004`: the server rejected the connection.
    pub const REJECTED: Self = Self(*b"08004");
    /// `28000`: invalid authorization.
    pub const ACCESS_DENIED: Self = Self(*b"28000");
    /// `42000`: syntax error or access rule violation.
    pub const SYNTAX_OR_ACCESS: Self = Self(*b"42000");

    /// A state read off the wire; `None` unless it is exactly five bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; 5] {
        &self.0
    }
}

impl fmt::Debug for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One error answer: code, SQLSTATE and message. [`ErrorPacket::encode`] frames it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPacket {
    pub code: u16,
    pub state: SqlState,
    pub message: Cow<'static, str>,
}

impl ErrorPacket {
    const fn fixed(code: u16, state: SqlState, message: &'static str) -> Self {
        Self {
            code,
            state,
            message: Cow::Borrowed(message),
        }
    }

    /// An error as the server sent it (relayed, or kept for later).
    pub fn from_server(code: u16, state: SqlState, message: String) -> Self {
        Self {
            code,
            state,
            message: Cow::Owned(message),
        }
    }

    /// 1040: the listener is at `max_client_connections`.
    pub const fn too_many_connections() -> Self {
        Self::fixed(1040, SqlState::REJECTED, "Too many connections")
    }

    /// 1040 at the greeting: `server.max_handshakes` connections are logging in.
    pub const fn too_many_handshakes() -> Self {
        Self::fixed(
            1040,
            SqlState::REJECTED,
            "Too many connections logging in at once; try again",
        )
    }

    /// 1040 at the greeting: `server.max_handshakes_per_address` connections from this
    /// client's address are logging in.
    pub fn too_many_handshakes_from(host: &str) -> Self {
        Self {
            code: 1040,
            state: SqlState::REJECTED,
            message: Cow::Owned(format!(
                "Too many connections logging in from '{host}' at once; try again"
            )),
        }
    }

    /// 1129: the address failed to log in too often and is refused for a while (the
    /// server's code for a host blocked after `max_connect_errors`).
    pub fn host_blocked(host: &str, failures: u32, remaining_secs: u64) -> Self {
        Self {
            code: 1129,
            state: SqlState::GENERAL,
            message: Cow::Owned(format!(
                "Host '{host}' is blocked for {remaining_secs} more seconds after {failures} failed logins"
            )),
        }
    }

    /// 3955: the user name failed to log in too often (from this address among others)
    /// and is refused here for a while (MySQL's code for an account locked by
    /// FAILED_LOGIN_ATTEMPTS).
    pub fn user_blocked(user: &str, host: &str, failures: u32, remaining_secs: u64) -> Self {
        Self {
            code: 3955,
            state: SqlState::GENERAL,
            message: Cow::Owned(format!(
                "Access denied for user '{user}'@'{host}'. Account is blocked for {remaining_secs} more seconds after {failures} failed logins"
            )),
        }
    }

    /// 1156: a handshake packet whose sequence id is not the next one.
    pub const fn packets_out_of_order() -> Self {
        Self::fixed(1156, SqlState::LINK_FAILURE, "Got packets out of order")
    }

    /// 1043: a handshake or COM_CHANGE_USER packet that does not parse.
    pub const fn bad_handshake() -> Self {
        Self::fixed(1043, SqlState::LINK_FAILURE, "Bad handshake")
    }

    /// 1045, in the server's words.
    pub fn access_denied(user: &str, host: &str, with_password: bool) -> Self {
        let using = if with_password { "YES" } else { "NO" };
        Self {
            code: 1045,
            state: SqlState::ACCESS_DENIED,
            message: Cow::Owned(format!(
                "Access denied for user '{user}'@'{host}' (using password: {using})"
            )),
        }
    }

    /// 1047: a command byte Sluice does not handle, or a COM_SET_OPTION it does not know.
    pub const fn unknown_command() -> Self {
        Self::fixed(1047, SqlState::LINK_FAILURE, "Unknown command")
    }

    /// 1153: a command longer than `server.max_packet_size`.
    pub const fn packet_too_large() -> Self {
        Self::fixed(
            1153,
            SqlState::LINK_FAILURE,
            "Got a packet bigger than 'max_allowed_packet' bytes",
        )
    }

    /// 1153 for a COM_STMT_PREPARE too long to keep.
    pub const fn statement_too_large() -> Self {
        Self::fixed(
            1153,
            SqlState::LINK_FAILURE,
            "Prepared statement text larger than 16 MiB is not supported by Sluice",
        )
    }

    /// 1235: KILL, which would reach whichever client the backend serves next.
    pub const fn kill_unsupported() -> Self {
        Self::fixed(
            1235,
            SqlState::SYNTAX_OR_ACCESS,
            "This version of Sluice doesn't yet support 'KILL'",
        )
    }

    /// 1243: a statement id the client never prepared (or closed).
    pub fn unknown_statement(id: u32, command: &str) -> Self {
        Self {
            code: 1243,
            state: SqlState::GENERAL,
            message: Cow::Owned(format!(
                "Unknown prepared statement handler ({id}) given to {command}"
            )),
        }
    }

    /// 1421: COM_STMT_FETCH without an open cursor; `detail` ends the message (e.g.
    /// ", or the cursor is exhausted").
    pub fn no_cursor(id: u32, detail: &str) -> Self {
        Self {
            code: 1421,
            state: SqlState::GENERAL,
            message: Cow::Owned(format!("The statement ({id}) has no open cursor{detail}")),
        }
    }

    /// 1461: a session already holds the most statements Sluice keeps for one client.
    pub const fn too_many_statements() -> Self {
        Self::fixed(
            1461,
            SqlState::SYNTAX_OR_ACCESS,
            "Can't create more than max_prepared_stmt_count statements (current value: 65536)",
        )
    }

    /// 2003: Sluice cannot reach or log in to the backend; `reason` says why in words
    /// that name no secret.
    pub fn cannot_connect(reason: &str) -> Self {
        Self {
            code: 2003,
            state: SqlState::GENERAL,
            message: Cow::Owned(format!(
                "Can't connect to MySQL server through Sluice ({reason})"
            )),
        }
    }

    /// 2013: the backend went away while the command was running.
    pub const fn lost_connection() -> Self {
        Self::fixed(
            2013,
            SqlState::GENERAL,
            "Lost connection to MySQL server during query",
        )
    }

    /// 2013 as well: the writer changed while the session held a backend for its
    /// transaction or pinned state, which stayed on the old writer. Its connection
    /// ends, as a direct one to the old writer would.
    pub const fn writer_changed() -> Self {
        Self::fixed(
            2013,
            SqlState::GENERAL,
            "Lost connection to MySQL server during query (the database failed over; \
             this session's transaction or session state stayed on the old writer)",
        )
    }

    /// 2013 too, on the reader endpoint: the replica under the session's transaction
    /// or pinned state went down or was promoted.
    pub const fn replica_gone() -> Self {
        Self::fixed(
            2013,
            SqlState::GENERAL,
            "Lost connection to MySQL server during query (the replica this session's \
             transaction or session state was on is down or no longer a replica)",
        )
    }

    /// 3032 (the server's code for a server in offline mode): the reader endpoint has
    /// no replica fit to serve and is configured to refuse rather than use the writer.
    pub const fn no_replica() -> Self {
        Self::fixed(
            3032,
            SqlState::GENERAL,
            "No replica is available for reads: each is down, behind by more than \
             max_replica_lag, or not replicating",
        )
    }

    /// 3024 (the server's code for `max_execution_time`): the database sent no answer
    /// within `backend.query_timeout`.
    pub fn query_timeout(secs: f64) -> Self {
        Self {
            code: 3024,
            state: SqlState::GENERAL,
            message: Cow::Owned(format!(
                "Query execution was interrupted: the database sent no answer within \
                 {secs} s (backend.query_timeout); its connection was closed"
            )),
        }
    }

    /// 3159: a plaintext client where `server.tls.require` is set.
    pub const fn insecure_transport() -> Self {
        Self::fixed(
            3159,
            SqlState::GENERAL,
            "Connections using insecure transport are prohibited while --require_secure_transport=ON.",
        )
    }

    /// 4031: the session sat in a transaction longer than `idle_transaction_timeout`.
    pub const fn idle_transaction_timeout() -> Self {
        Self::fixed(
            4031,
            SqlState::GENERAL,
            "The client was disconnected by the server because of inactivity: idle in a \
             transaction longer than idle_transaction_timeout; the transaction was rolled back",
        )
    }

    /// 9501: no backend connection within `connection_borrow_timeout` (RDS Proxy's code
    /// and words).
    pub const fn borrow_timeout() -> Self {
        Self::fixed(
            9501,
            SqlState::GENERAL,
            "Timed-out waiting to acquire database connection",
        )
    }

    /// The packet, with sequence id `seq`.
    pub fn encode(&self, seq: u8) -> Vec<u8> {
        let mut payload = Vec::with_capacity(9 + self.message.len());
        payload.push(ERR_HEADER);
        payload.extend_from_slice(&self.code.to_le_bytes());
        payload.push(b'#');
        payload.extend_from_slice(self.state.as_bytes());
        payload.extend_from_slice(self.message.as_bytes());
        packet::packet(seq, &payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::response::ErrPacket;

    #[test]
    fn sql_states_are_exactly_five_bytes() {
        assert_eq!(SqlState::from_bytes(b"42S02"), Some(SqlState(*b"42S02")));
        assert_eq!(SqlState::from_bytes(b"4200"), None);
        assert_eq!(SqlState::from_bytes(b"420000"), None);
        assert_eq!(SqlState::from_bytes(b""), None);
    }

    #[test]
    fn every_named_error_parses_back_as_the_server_would_send_it() {
        let all = [
            ErrorPacket::too_many_connections(),
            ErrorPacket::bad_handshake(),
            ErrorPacket::access_denied("app", "10.0.0.1", true),
            ErrorPacket::unknown_command(),
            ErrorPacket::packet_too_large(),
            ErrorPacket::statement_too_large(),
            ErrorPacket::kill_unsupported(),
            ErrorPacket::unknown_statement(7, "mysqld_stmt_execute"),
            ErrorPacket::no_cursor(7, ""),
            ErrorPacket::too_many_statements(),
            ErrorPacket::cannot_connect("credentials unavailable; try again"),
            ErrorPacket::lost_connection(),
            ErrorPacket::insecure_transport(),
            ErrorPacket::idle_transaction_timeout(),
            ErrorPacket::borrow_timeout(),
            ErrorPacket::writer_changed(),
            ErrorPacket::replica_gone(),
            ErrorPacket::no_replica(),
        ];
        for e in all {
            let wire = e.encode(3);
            assert_eq!(wire[3], 3, "sequence id");
            let parsed = ErrPacket::parse(&wire[4..]).unwrap();
            assert_eq!(parsed.code, e.code);
            assert_eq!(parsed.sql_state, e.state);
            assert_eq!(parsed.message, e.message.as_bytes());
        }
        let denied = ErrorPacket::access_denied("app", "h", false);
        assert_eq!(
            denied.message,
            "Access denied for user 'app'@'h' (using password: NO)"
        );
    }
}

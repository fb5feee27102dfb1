//! What a client session carries from backend to backend. On a direct connection all of
//! this lives in the server's session; through Sluice it lives here, and whichever
//! backend runs the session's next statement is first brought to it.

use super::connection_scope::ConnectionScope;
use super::Variables;

/// The session's portable state.
#[derive(Debug)]
pub struct SessionState {
    /// The default schema: the handshake's, then COM_INIT_DB's, USE's or COM_CHANGE_USER's.
    pub schema: Option<Vec<u8>>,
    /// System variables the session changed, relative to its partition's baseline.
    pub vars: Variables,
    /// LAST_INSERT_ID(), warnings, ROW_COUNT(), FOUND_ROWS(): the session's, and whose
    /// the held backend has.
    pub scope: ConnectionScope,
    /// What the handshake chose (character set, IGNORE_SPACE, INTERACTIVE) is still to be
    /// recorded in `vars`: that needs the partition's baseline, known at the first borrow.
    pub handshake_pending: bool,
}

impl SessionState {
    pub fn new(schema: Option<Vec<u8>>) -> Self {
        Self {
            schema,
            vars: Variables::default(),
            scope: ConnectionScope::default(),
            handshake_pending: true,
        }
    }

    /// A session starts again (COM_RESET_CONNECTION, COM_CHANGE_USER): as a server does,
    /// it keeps its default schema, and forgets the rest.
    pub fn reset(&mut self) {
        self.vars.clear();
        self.scope.reset();
        self.handshake_pending = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_keeps_the_schema_and_forgets_the_rest() {
        let mut state = SessionState::new(Some(b"shop".to_vec()));
        state.handshake_pending = false;
        state
            .vars
            .record("sql_mode", b"ANSI", &Variables::default());
        state.scope.read_insert_id(Some(42));
        assert_eq!(state.scope.last_insert_id(), 42);
        state.reset();
        assert_eq!(state.schema.as_deref(), Some(&b"shop"[..]));
        assert!(state.vars.is_empty());
        assert!(state.handshake_pending);
        assert_eq!(state.scope.last_insert_id(), 0);
    }
}

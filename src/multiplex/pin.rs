//! Why a client session was pinned to one backend connection. Each reason is a metric label.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinReason {
    /// A system variable whose value cannot be replayed (insert_id, timestamp, the
    /// session trackers, ...).
    SystemVariable,
    /// `@user` variables.
    UserVariable,
    /// CREATE TEMPORARY TABLE.
    TemporaryTable,
    /// SQL-level PREPARE / EXECUTE / DEALLOCATE.
    SqlPrepare,
    /// GET_LOCK and other named locks.
    NamedLock,
    /// LOCK TABLES, FLUSH TABLES ... WITH READ LOCK / FOR EXPORT, LOCK INSTANCE.
    TableLock,
    /// SQL_CALC_FOUND_ROWS, whose FOUND_ROWS() belongs to the connection.
    FoundRows,
    /// HANDLER ... OPEN.
    Handler,
    /// XA transactions, which outlive the transaction status flags.
    Xa,
    /// SET TRANSACTION (characteristics of the next transaction only).
    NextTransaction,
    /// A statement larger than one packet, not classified.
    LargeStatement,
    /// The server reported a state change nothing explains.
    UnexplainedState,
}

impl PinReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SystemVariable => "system_variable",
            Self::UserVariable => "user_variable",
            Self::TemporaryTable => "temporary_table",
            Self::SqlPrepare => "sql_prepare",
            Self::NamedLock => "named_lock",
            Self::TableLock => "table_lock",
            Self::FoundRows => "found_rows",
            Self::Handler => "handler",
            Self::Xa => "xa",
            Self::NextTransaction => "next_transaction",
            Self::LargeStatement => "large_statement",
            Self::UnexplainedState => "unexplained_state",
        }
    }
}

//! Command bytes of the command phase, and cheap peeks at a command's payload.

/// The first payload byte of a client command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Quit,
    InitDb,
    Query,
    FieldList,
    Statistics,
    ProcessKill,
    Ping,
    ChangeUser,
    StmtPrepare,
    StmtExecute,
    StmtSendLongData,
    StmtClose,
    StmtReset,
    SetOption,
    StmtFetch,
    ResetConnection,
    /// Any other byte: replication, debug, shutdown and obsolete commands. Refused.
    Unsupported(u8),
}

impl Command {
    pub fn from_byte(b: u8) -> Self {
        match b {
            0x01 => Self::Quit,
            0x02 => Self::InitDb,
            0x03 => Self::Query,
            0x04 => Self::FieldList,
            0x09 => Self::Statistics,
            0x0C => Self::ProcessKill,
            0x0E => Self::Ping,
            0x11 => Self::ChangeUser,
            0x16 => Self::StmtPrepare,
            0x17 => Self::StmtExecute,
            0x18 => Self::StmtSendLongData,
            0x19 => Self::StmtClose,
            0x1A => Self::StmtReset,
            0x1B => Self::SetOption,
            0x1C => Self::StmtFetch,
            0x1F => Self::ResetConnection,
            other => Self::Unsupported(other),
        }
    }
}

pub const COM_QUIT: u8 = 0x01;
pub const COM_INIT_DB: u8 = 0x02;
pub const COM_QUERY: u8 = 0x03;
pub const COM_PING: u8 = 0x0E;
pub const COM_STMT_PREPARE: u8 = 0x16;
pub const COM_STMT_CLOSE: u8 = 0x19;
pub const COM_SET_OPTION: u8 = 0x1B;
pub const COM_RESET_CONNECTION: u8 = 0x1F;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_bytes() {
        assert_eq!(Command::from_byte(0x03), Command::Query);
        assert_eq!(Command::from_byte(0x1F), Command::ResetConnection);
        assert_eq!(Command::from_byte(0x12), Command::Unsupported(0x12));
    }
}

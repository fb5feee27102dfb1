//! What the last health check found of the database (`backend::monitor` runs them):
//! what `/readyz` answers, and why it is not ready.

/// The database as the last check found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not checked yet (ready as soon as the cap is known, as before any check).
    Unknown,
    /// It answered within the check's timeout (or connections came back from clients'
    /// statements just now).
    Up,
    Down(Down),
}

/// Why the database is taken for down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Down {
    /// Nothing accepts connections at its address, or they fail.
    Unreachable,
    /// It accepts connections but answers nothing within the timeout (stopped, hung).
    Frozen,
    /// It answers, but refuses new connections (1040, 1203) and none is idle to check.
    Refusing,
}

impl Health {
    /// What `/readyz` says when this is not ready; None when it is.
    pub fn not_ready(self) -> Option<&'static str> {
        match self {
            Self::Unknown | Self::Up => None,
            Self::Down(Down::Unreachable) => Some("database unreachable"),
            Self::Down(Down::Frozen) => Some("database not answering"),
            Self::Down(Down::Refusing) => Some("database refusing connections"),
        }
    }
}

//! What a borrower is given: a connection, the slot of one to replace, or a free slot.

pub(super) enum Grant<C> {
    /// An idle connection that fits.
    Conn(C),
    /// The slot of a connection that must be closed first (another partition's, or one
    /// past its lifetime): the borrower quits it, then opens its own.
    Replace(C),
    /// Permission to open one connection within the cap.
    Slot,
}

impl<C> Grant<C> {
    /// The connection a grant that came back (its waiter had gone) carries.
    pub(super) fn into_conn(self) -> Option<C> {
        match self {
            Grant::Conn(c) | Grant::Replace(c) => Some(c),
            Grant::Slot => None,
        }
    }
}

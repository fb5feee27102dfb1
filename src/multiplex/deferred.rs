//! Errors of a command that has no response (COM_STMT_SEND_LONG_DATA), kept by client
//! statement id for that statement's next execute to report, as a server does.

/// At most one ERR packet per statement: a later failure replaces an earlier one.
#[derive(Debug, Default)]
pub struct DeferredErrors {
    errors: Vec<(u32, Vec<u8>)>,
}

impl DeferredErrors {
    pub fn defer(&mut self, id: u32, packet: Vec<u8>) {
        self.forget(id);
        self.errors.push((id, packet));
    }

    pub fn has(&self, id: u32) -> bool {
        self.errors.iter().any(|(i, _)| *i == id)
    }

    /// The error of statement `id`, to send now.
    pub fn take(&mut self, id: u32) -> Option<Vec<u8>> {
        let at = self.errors.iter().position(|(i, _)| *i == id)?;
        Some(self.errors.swap_remove(at).1)
    }

    pub fn forget(&mut self, id: u32) {
        self.errors.retain(|(i, _)| *i != id);
    }

    pub fn clear(&mut self) {
        self.errors.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_error_per_statement_taken_once() {
        let mut d = DeferredErrors::default();
        d.defer(1, vec![1]);
        d.defer(2, vec![2]);
        d.defer(1, vec![3]);
        assert!(d.has(1) && d.has(2) && !d.has(3));
        assert_eq!(d.take(1), Some(vec![3]), "the later failure");
        assert_eq!(d.take(1), None);
        d.forget(2);
        assert!(!d.has(2));
        d.defer(4, vec![4]);
        d.clear();
        assert_eq!(d.take(4), None);
    }
}

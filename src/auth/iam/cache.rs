//! Tokens already verified, by SHA-256, until they expire: a Lambda that reuses its token
//! for every connection pays for the check once. Only hashes are kept, never tokens.
//! Each entry remembers the access key that signed the token, so a hit still requires
//! that key to be known and allowed for the user (a revoked key revokes its tokens).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

pub type TokenHash = [u8; 32];

pub fn hash(token: &[u8]) -> TokenHash {
    Sha256::digest(token).into()
}

struct Verified {
    user: String,
    key_id: String,
    until: SystemTime,
}

pub struct VerifiedTokens {
    entries: Mutex<HashMap<TokenHash, Verified>>,
    max: usize,
}

impl VerifiedTokens {
    pub fn new(max: usize) -> Self {
        Self {
            entries: Mutex::default(),
            max: max.max(1),
        }
    }

    /// The key that signed the token, when it was verified for `user` and has not
    /// expired.
    pub fn hit(&self, hash: &TokenHash, user: &str, now: SystemTime) -> Option<String> {
        let entries = self.entries.lock();
        entries
            .get(hash)
            .filter(|v| v.user == user && now <= v.until)
            .map(|v| v.key_id.clone())
    }

    /// The token is in the set and has not expired, whoever it was for.
    pub fn contains(&self, hash: &TokenHash, now: SystemTime) -> bool {
        let entries = self.entries.lock();
        entries.get(hash).is_some_and(|v| now <= v.until)
    }

    /// Remembers a token. When full, expired entries go first, then the ones expiring
    /// soonest.
    pub fn insert(
        &self,
        hash: TokenHash,
        user: &str,
        key_id: &str,
        until: SystemTime,
        now: SystemTime,
    ) {
        self.put(hash, user, key_id, until, now, true);
    }

    /// Like `insert`, but when the set is full of live entries it keeps them and drops
    /// the new one (a flood of new entries cannot push old ones out).
    pub fn insert_if_room(
        &self,
        hash: TokenHash,
        user: &str,
        key_id: &str,
        until: SystemTime,
        now: SystemTime,
    ) {
        if !self.put(hash, user, key_id, until, now, false) {
            tracing::warn!("token set full; not remembering another");
        }
    }

    /// False when there was no room and `evict` forbade making some.
    fn put(
        &self,
        hash: TokenHash,
        user: &str,
        key_id: &str,
        until: SystemTime,
        now: SystemTime,
        evict: bool,
    ) -> bool {
        let mut entries = self.entries.lock();
        if entries.len() >= self.max {
            entries.retain(|_, v| v.until >= now);
        }
        while entries.len() >= self.max {
            if !evict {
                return false;
            }
            let Some(soonest) = entries.iter().min_by_key(|(_, v)| v.until).map(|(k, _)| *k) else {
                break;
            };
            entries.remove(&soonest);
        }
        let verified = Verified {
            user: user.to_string(),
            key_id: key_id.to_string(),
            until,
        };
        entries.insert(hash, verified);
        true
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn hits_only_for_the_same_user_until_expiry_and_stays_bounded() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let c = VerifiedTokens::new(2);
        let a = hash(b"token-a");
        c.insert(a, "app", "AKID", now + Duration::from_secs(60), now);
        assert_eq!(c.hit(&a, "app", now).as_deref(), Some("AKID"));
        assert!(c.hit(&a, "other", now).is_none());
        assert!(c.contains(&a, now));
        assert!(c.hit(&a, "app", now + Duration::from_secs(61)).is_none());
        c.insert(
            hash(b"b"),
            "app",
            "AKID",
            now + Duration::from_secs(10),
            now,
        );
        c.insert(
            hash(b"c"),
            "app",
            "AKID",
            now + Duration::from_secs(90),
            now,
        );
        assert_eq!(c.len(), 2);
        // "b" expired soonest and made room.
        assert!(c.hit(&hash(b"b"), "app", now).is_none());
        assert!(c.hit(&a, "app", now).is_some());
    }
}

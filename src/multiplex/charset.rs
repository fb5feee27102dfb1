//! The character set a client's handshake asked for, carried as replayable session
//! state rather than as a pool partition.
//!
//! Every backend connection logs in with one collation ([`BACKEND_COLLATION`]); a client
//! whose handshake named another wants, from its first statement on, what that handshake
//! would have given it on a direct connection: `character_set_client`,
//! `character_set_connection` and `character_set_results` of the collation's character
//! set, and `collation_connection` itself. The names come from the server's own table
//! (`information_schema.COLLATIONS`, read once), so every collation the server knows is
//! right, and an id it does not know (MySQL 9 clients send 255, `utf8mb4_0900_ai_ci`,
//! which MariaDB 10.11 lacks) falls back to the server's character set and collation,
//! as the server itself does.

use std::collections::HashMap;

use super::variables::{Variables, CONNECTION_CHARSET};

/// The collation every backend connection's handshake names: utf8mb4_general_ci, which
/// both servers have and most drivers send.
pub const BACKEND_COLLATION: u8 = 45;

/// The query that reads the server's collations with the ids a handshake can carry.
pub const COLLATIONS_QUERY: &str = "SELECT ID, CHARACTER_SET_NAME, COLLATION_NAME \
     FROM information_schema.COLLATIONS WHERE ID < 256";

/// Collation id → (character set, collation), as the server names them.
#[derive(Debug, Default)]
pub struct Collations {
    by_id: HashMap<u8, (Box<str>, Box<str>)>,
}

impl Collations {
    /// From the rows of [`COLLATIONS_QUERY`] (id, character set, collation).
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = [&'a [u8]; 3]>) -> Self {
        let by_id = rows
            .into_iter()
            .filter_map(|[id, charset, collation]| {
                let id = std::str::from_utf8(id).ok()?.parse::<u8>().ok()?;
                let text = |b: &[u8]| std::str::from_utf8(b).ok().map(Box::from);
                Some((id, (text(charset)?, text(collation)?)))
            })
            .collect();
        Self { by_id }
    }

    /// Records in `vars` (relative to `baseline`, a connection that logged in with
    /// [`BACKEND_COLLATION`]) the connection character set a handshake with collation
    /// `id` gives.
    pub fn apply_handshake(&self, id: u8, vars: &mut Variables, baseline: &Variables) {
        let (charset, collation): (&[u8], &[u8]) = match self.by_id.get(&id) {
            Some((cs, coll)) => (cs.as_bytes(), coll.as_bytes()),
            None => match (
                baseline.get("character_set_server"),
                baseline.get("collation_server"),
            ) {
                (Some(cs), Some(coll)) => (cs, coll),
                _ => return,
            },
        };
        for name in CONNECTION_CHARSET {
            let value = if *name == "collation_connection" {
                collation
            } else {
                charset
            };
            vars.record(name, value, baseline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(items: &[(&str, &str)]) -> Variables {
        Variables::from_rows(items.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    fn collations() -> Collations {
        Collations::from_rows([
            [&b"8"[..], b"latin1", b"latin1_swedish_ci"],
            [b"45", b"utf8mb4", b"utf8mb4_general_ci"],
            [b"255", b"utf8mb4", b"utf8mb4_0900_ai_ci"],
            [b"x", b"bad", b"row"],
        ])
    }

    fn baseline() -> Variables {
        vars(&[
            ("character_set_client", "utf8mb4"),
            ("character_set_connection", "utf8mb4"),
            ("character_set_results", "utf8mb4"),
            ("collation_connection", "utf8mb4_general_ci"),
            ("character_set_server", "latin1"),
            ("collation_server", "latin1_swedish_ci"),
        ])
    }

    #[test]
    fn the_backend_collation_needs_nothing() {
        let mut v = Variables::default();
        collations().apply_handshake(BACKEND_COLLATION, &mut v, &baseline());
        assert!(v.is_empty());
    }

    #[test]
    fn another_collation_of_the_same_set_changes_only_the_collation() {
        let mut v = Variables::default();
        collations().apply_handshake(255, &mut v, &baseline());
        assert_eq!(
            v.get("collation_connection"),
            Some(&b"utf8mb4_0900_ai_ci"[..])
        );
        assert_eq!(v.get("character_set_client"), None);
        assert_eq!(
            Variables::replay(&v, &Variables::default(), &baseline(), true).unwrap(),
            "SET SESSION collation_connection = 'utf8mb4_0900_ai_ci'"
        );
    }

    #[test]
    fn another_set_changes_all_four() {
        let mut v = Variables::default();
        collations().apply_handshake(8, &mut v, &baseline());
        assert_eq!(
            Variables::replay(&v, &Variables::default(), &baseline(), true).unwrap(),
            "SET SESSION character_set_client = 'latin1', character_set_connection = 'latin1', \
             character_set_results = 'latin1', collation_connection = 'latin1_swedish_ci'"
        );
    }

    #[test]
    fn an_id_the_server_lacks_falls_back_to_the_servers_own() {
        let mut v = Variables::default();
        collations().apply_handshake(224, &mut v, &baseline());
        assert_eq!(v.get("character_set_results"), Some(&b"latin1"[..]));
        assert_eq!(
            v.get("collation_connection"),
            Some(&b"latin1_swedish_ci"[..])
        );
    }
}

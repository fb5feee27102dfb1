//! What a client's handshake chose for its session, carried as replayable session state
//! rather than as a pool partition: its character set and collation, and what the
//! capability flags CLIENT_IGNORE_SPACE (IGNORE_SPACE in `sql_mode`) and
//! CLIENT_INTERACTIVE (`wait_timeout` = `interactive_timeout`) do on a direct connection.
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

/// Records in `vars` what the flags CLIENT_IGNORE_SPACE and CLIENT_INTERACTIVE give a
/// session on a direct connection (backend connections are opened without them).
pub fn apply_flags(
    ignore_space: bool,
    interactive: bool,
    vars: &mut Variables,
    baseline: &Variables,
) {
    if ignore_space {
        if let Some(mode) = baseline.get("sql_mode") {
            vars.record("sql_mode", &with_ignore_space(mode), baseline);
        }
    }
    if interactive {
        if let Some(timeout) = baseline.get("interactive_timeout") {
            vars.record("wait_timeout", timeout, baseline);
        }
    }
}

/// `mode` with IGNORE_SPACE added where the server lists it: modes are listed in bit
/// order, and only REAL_AS_FLOAT, PIPES_AS_CONCAT and ANSI_QUOTES come before it (the
/// same on MySQL and MariaDB), so a replayed value compares equal to what the server
/// reports.
fn with_ignore_space(mode: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = mode
        .split(|b| *b == b',')
        .filter(|p| !p.is_empty())
        .collect();
    if parts
        .iter()
        .any(|p| p.eq_ignore_ascii_case(b"IGNORE_SPACE"))
    {
        return mode.to_vec();
    }
    let before: [&[u8]; 3] = [b"REAL_AS_FLOAT", b"PIPES_AS_CONCAT", b"ANSI_QUOTES"];
    let at = parts
        .iter()
        .take_while(|p| before.iter().any(|b| p.eq_ignore_ascii_case(b)))
        .count();
    parts.insert(at, b"IGNORE_SPACE");
    parts.join(&b',')
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
    fn ignore_space_is_listed_where_the_server_lists_it() {
        for (mode, with) in [
            ("", "IGNORE_SPACE"),
            (
                "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES",
                "IGNORE_SPACE,ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES",
            ),
            (
                "PIPES_AS_CONCAT,ANSI_QUOTES,NO_ZERO_DATE",
                "PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,NO_ZERO_DATE",
            ),
            (
                "REAL_AS_FLOAT,IGNORE_SPACE,ANSI",
                "REAL_AS_FLOAT,IGNORE_SPACE,ANSI",
            ),
        ] {
            assert_eq!(
                String::from_utf8(with_ignore_space(mode.as_bytes())).unwrap(),
                with
            );
        }
    }

    #[test]
    fn interactive_clients_get_the_interactive_timeout() {
        let base = vars(&[
            ("wait_timeout", "28800"),
            ("interactive_timeout", "1234"),
            ("sql_mode", ""),
        ]);
        let mut v = Variables::default();
        apply_flags(false, true, &mut v, &base);
        assert_eq!(v.get("wait_timeout"), Some(&b"1234"[..]));
        assert_eq!(v.get("sql_mode"), None);
        apply_flags(true, false, &mut v, &base);
        assert_eq!(v.get("sql_mode"), Some(&b"IGNORE_SPACE"[..]));
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

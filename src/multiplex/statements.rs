//! Prepared statements without pinning: the ids a client sees are Sluice's
//! own; every backend connection prepares a statement lazily the first time a client
//! needs it there, maps it to its own server id, and closes its least recently used
//! statements beyond a bound, so `max_prepared_stmt_count` is never exhausted.
//!
//! A statement is identified by the schema it was prepared in, the session variables
//! that decide how its text parses, and its SQL text, so clients that prepare the same
//! statement in the same context share one server statement per backend.

use foldhash::HashMap;
use std::sync::Arc;

use super::classify::Classification;
use super::variables::Variables;

/// The session variables that change what a statement's text means: `sql_mode`
/// (ANSI_QUOTES makes `"a"` a column, PIPES_AS_CONCAT, NO_BACKSLASH_ESCAPES, ...) and the
/// character sets and collation its literals are read in.
pub const PARSE_VARIABLES: &[&str] = &[
    "character_set_client",
    "character_set_connection",
    "collation_connection",
    "sql_mode",
];

/// What makes two prepared statements the same on a backend: the SQL text, the default
/// schema at prepare time (unqualified names resolve against it) and the parse variables
/// (as differences from the partition's baseline, like every tracked value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StmtKey {
    /// Hashed once here, not on every execute (the SQL text can be long).
    hash: u64,
    schema: Option<Vec<u8>>,
    parse: Variables,
    sql: Vec<u8>,
    /// 0, or a number private to one session: a session that prepares the same statement
    /// twice gets two server statements, since each holds its own long data and cursor.
    instance: u32,
    /// The schema generation at prepare time (see [`StmtKey::at_generation`]).
    generation: u64,
}

impl StmtKey {
    pub fn new(schema: Option<Vec<u8>>, parse: Variables, sql: Vec<u8>) -> Self {
        Self::build(schema, parse, sql, 0, 0)
    }

    /// The same statement prepared in schema generation `generation`: a statement
    /// prepared after DDL (which bumps the generation) never shares a server statement
    /// prepared before it. MySQL can fail an execute of such an old statement where a
    /// fresh prepare succeeds (3988 after a column changed type), and the stored
    /// prepare response would describe the old columns.
    pub fn at_generation(self, generation: u64) -> Self {
        Self::build(self.schema, self.parse, self.sql, self.instance, generation)
    }

    pub fn with_instance(
        schema: Option<Vec<u8>>,
        parse: Variables,
        sql: Vec<u8>,
        instance: u32,
    ) -> Self {
        Self::build(schema, parse, sql, instance, 0)
    }

    fn build(
        schema: Option<Vec<u8>>,
        parse: Variables,
        sql: Vec<u8>,
        instance: u32,
        generation: u64,
    ) -> Self {
        use std::hash::{BuildHasher, Hash, Hasher};
        // One seed for the process: keys made on any thread must hash alike.
        static SEED: std::sync::OnceLock<std::collections::hash_map::RandomState> =
            std::sync::OnceLock::new();
        let mut h = SEED.get_or_init(Default::default).build_hasher();
        schema.hash(&mut h);
        parse.hash(&mut h);
        sql.hash(&mut h);
        instance.hash(&mut h);
        generation.hash(&mut h);
        Self {
            hash: h.finish(),
            schema,
            parse,
            sql,
            instance,
            generation,
        }
    }

    pub fn schema(&self) -> Option<&[u8]> {
        self.schema.as_deref()
    }

    /// The parse variables the statement was prepared under.
    pub fn parse(&self) -> &Variables {
        &self.parse
    }

    pub fn sql(&self) -> &[u8] {
        &self.sql
    }
}

impl std::hash::Hash for StmtKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// A statement as one client prepared it.
#[derive(Debug)]
pub struct ClientStmt {
    pub key: Arc<StmtKey>,
    pub params: u16,
    /// What its text says about the session (pins, reads of connection-scoped values),
    /// applied on every execute.
    pub class: Classification,
    /// The parameter types this client last sent (2 bytes each); the server remembers
    /// them per statement, so a backend that has not seen them must be sent them again.
    pub types: Option<Box<[u8]>>,
}

/// A client's statements by the ids Sluice gave it.
#[derive(Debug, Default)]
pub struct ClientStatements {
    stmts: HashMap<u32, ClientStmt>,
    next_id: u32,
    /// SQL text held, in bytes.
    bytes: usize,
    /// How many of the session's statements use each key.
    keys: HashMap<Arc<StmtKey>, usize>,
    next_instance: u32,
}

/// Statements one client session may hold open (MySQL's own default for a whole server
/// is 16,382); beyond it a prepare gets ER_MAX_PREPARED_STMT_COUNT_REACHED.
pub const MAX_PER_CLIENT: usize = 65_536;
/// Their SQL text together, so that one client cannot make Sluice hold gigabytes.
pub const MAX_BYTES_PER_CLIENT: usize = 64 << 20;

impl ClientStatements {
    /// Registers a statement; None when the client holds too many.
    pub fn add(&mut self, stmt: ClientStmt) -> Option<u32> {
        let bytes = self.bytes + stmt.key.sql().len();
        if self.stmts.len() >= MAX_PER_CLIENT || bytes > MAX_BYTES_PER_CLIENT {
            return None;
        }
        self.bytes = bytes;
        *self.keys.entry(stmt.key.clone()).or_default() += 1;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        while self.stmts.contains_key(&self.next_id) {
            self.next_id = self.next_id.wrapping_add(1).max(1);
        }
        self.stmts.insert(self.next_id, stmt);
        Some(self.next_id)
    }

    pub fn get(&self, id: u32) -> Option<&ClientStmt> {
        self.stmts.get(&id)
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut ClientStmt> {
        self.stmts.get_mut(&id)
    }

    pub fn remove(&mut self, id: u32) -> Option<ClientStmt> {
        let stmt = self.stmts.remove(&id)?;
        self.bytes -= stmt.key.sql().len();
        if let Some(n) = self.keys.get_mut(&stmt.key) {
            *n -= 1;
            if *n == 0 {
                self.keys.remove(&stmt.key);
            }
        }
        Some(stmt)
    }

    /// The key a new statement gets: `key` itself, unless the session already has a
    /// statement with it; then one private to this session.
    pub fn distinct(&mut self, key: StmtKey) -> StmtKey {
        if !self.keys.contains_key(&key) {
            return key;
        }
        self.next_instance = self.next_instance.wrapping_add(1).max(1);
        StmtKey::build(
            key.schema,
            key.parse,
            key.sql,
            self.next_instance,
            key.generation,
        )
    }

    pub fn clear(&mut self) {
        self.stmts.clear();
        self.keys.clear();
        self.bytes = 0;
    }

    pub fn len(&self) -> usize {
        self.stmts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stmts.is_empty()
    }
}

/// A statement prepared on one backend connection.
#[derive(Debug)]
pub struct ServerStmt {
    pub id: u32,
    pub params: u16,
    /// The whole COM_STMT_PREPARE response (wire bytes), to answer another client's
    /// prepare of the same statement without asking the server again.
    pub response: Arc<[u8]>,
    /// The parameter types the server last received for it.
    pub types: Option<Box<[u8]>>,
    /// It was executed with a cursor. MySQL (seen on 9.7) answers every later execute of
    /// such a statement wrongly: without a cursor, its columns and then an OK in place
    /// of rows; with one, its rows twice. So on MySQL it is never executed again, and the
    /// next execute gets a statement prepared afresh (a client's own statement or
    /// another's: server statements are shared).
    pub cursor_opened: bool,
}

/// One backend connection's statements, with a least-recently-used bound. The order is
/// the `lru` crate's (a hash map over a linked list, O(1) per use), not a clock scanned
/// at each eviction. Its own capacity is unbounded: the bound moves with the server's
/// `max_prepared_stmt_count` and some statements may not be evicted, so eviction is
/// done here.
#[derive(Debug)]
pub struct BackendStatements {
    stmts: lru::LruCache<Arc<StmtKey>, ServerStmt>,
}

impl Default for BackendStatements {
    fn default() -> Self {
        Self {
            stmts: lru::LruCache::unbounded(),
        }
    }
}

impl BackendStatements {
    /// The server statement for `key`, marked as just used.
    pub fn get_mut(&mut self, key: &StmtKey) -> Option<&mut ServerStmt> {
        self.stmts.get_mut(key)
    }

    /// Records a newly prepared statement and returns the server ids to close so that at
    /// most `bound` stay open (least recently used first). Never the new one, nor those in
    /// `keep`: statements holding the session's long data or open cursor, which closing
    /// would lose (the bound is exceeded rather than that).
    pub fn insert(
        &mut self,
        key: Arc<StmtKey>,
        id: u32,
        params: u16,
        response: Arc<[u8]>,
        bound: usize,
        keep: &[Arc<StmtKey>],
    ) -> Vec<u32> {
        let stmt = ServerStmt {
            id,
            params,
            response,
            types: None,
            cursor_opened: false,
        };
        let mut evicted = Vec::new();
        // A statement prepared again under a key already held replaces the old one, whose
        // server statement nobody can reach any more.
        if let Some((_, old)) = self.stmts.push(key, stmt) {
            evicted.push(old.id);
        }
        while self.stmts.len() > bound.max(1) {
            let Some(oldest) = self
                .stmts
                .iter()
                .rev()
                // The newest is the one just prepared: never evicted.
                .take(self.stmts.len() - 1)
                .find(|(k, _)| !keep.contains(k))
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(s) = self.stmts.pop(&oldest) {
                evicted.push(s.id);
            }
        }
        evicted
    }

    /// Forgets a statement (closed on the server by the caller); its server id.
    pub fn remove(&mut self, key: &StmtKey) -> Option<u32> {
        self.stmts.pop(key).map(|s| s.id)
    }

    pub fn len(&self) -> usize {
        self.stmts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stmts.is_empty()
    }

    /// After COM_RESET_CONNECTION the server has closed them all.
    pub fn clear(&mut self) {
        self.stmts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sql: &str) -> Arc<StmtKey> {
        Arc::new(StmtKey::new(
            Some(b"shop".to_vec()),
            Variables::default(),
            sql.as_bytes().to_vec(),
        ))
    }

    #[test]
    fn client_ids_are_unique_and_start_at_one() {
        let mut c = ClientStatements::default();
        let stmt = || ClientStmt {
            key: key("SELECT 1"),
            params: 0,
            class: Classification::default(),
            types: None,
        };
        assert_eq!(c.add(stmt()), Some(1));
        assert_eq!(c.add(stmt()), Some(2));
        c.remove(1);
        assert!(c.get(1).is_none());
        assert_eq!(c.add(stmt()), Some(3));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn a_session_preparing_the_same_statement_twice_gets_two_keys() {
        let mut c = ClientStatements::default();
        let sql = || StmtKey::new(None, Variables::default(), b"SELECT ?".to_vec());
        let first = Arc::new(c.distinct(sql()));
        let stmt = |key: Arc<StmtKey>| ClientStmt {
            key,
            params: 1,
            class: Classification::default(),
            types: None,
        };
        let a = c.add(stmt(first.clone())).unwrap();
        let second = Arc::new(c.distinct(sql()));
        assert_ne!(second, first);
        c.add(stmt(second)).unwrap();
        // Once the first is closed, the shared key is free again.
        c.remove(a);
        assert_eq!(c.distinct(sql()), *first);
    }

    #[test]
    fn a_client_cannot_hold_unbounded_sql() {
        let mut c = ClientStatements::default();
        let big = |n: usize| ClientStmt {
            key: Arc::new(StmtKey::new(None, Variables::default(), vec![b'x'; n])),
            params: 0,
            class: Classification::default(),
            types: None,
        };
        let id = c.add(big(MAX_BYTES_PER_CLIENT - 10)).unwrap();
        assert_eq!(c.add(big(11)), None);
        assert!(c.add(big(10)).is_some());
        c.remove(id);
        assert!(c.add(big(1000)).is_some());
    }

    #[test]
    fn backend_statements_evict_the_least_recently_used() {
        let mut b = BackendStatements::default();
        let r: Arc<[u8]> = Arc::from(&b""[..]);
        assert!(b.insert(key("a"), 1, 0, r.clone(), 2, &[]).is_empty());
        assert!(b.insert(key("b"), 2, 0, r.clone(), 2, &[]).is_empty());
        // Using "a" makes "b" the oldest.
        assert_eq!(b.get_mut(&key("a")).unwrap().id, 1);
        assert_eq!(b.insert(key("c"), 3, 0, r.clone(), 2, &[]), vec![2]);
        assert!(b.get_mut(&key("b")).is_none());
        assert_eq!(b.len(), 2);
        // A bound below one still keeps the statement just prepared.
        assert_eq!(b.insert(key("d"), 4, 0, r.clone(), 0, &[]).len(), 2);
        assert_eq!(b.get_mut(&key("d")).unwrap().id, 4);
    }

    #[test]
    fn statements_holding_session_data_are_never_evicted() {
        let mut b = BackendStatements::default();
        let r: Arc<[u8]> = Arc::from(&b""[..]);
        b.insert(key("long data"), 1, 0, r.clone(), 2, &[]);
        b.insert(key("b"), 2, 0, r.clone(), 2, &[]);
        // "long data" is the oldest but holds the session's blob: "b" goes instead.
        assert_eq!(
            b.insert(key("c"), 3, 0, r.clone(), 2, &[key("long data")]),
            vec![2]
        );
        // Nothing else to evict: the bound gives way.
        let keep = [key("long data"), key("c")];
        assert!(b.insert(key("d"), 4, 0, r, 1, &keep).is_empty());
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn the_same_text_after_ddl_is_another_statement() {
        let key =
            |g| StmtKey::new(None, Variables::default(), b"SELECT ?".to_vec()).at_generation(g);
        assert_eq!(key(3), key(3));
        assert_ne!(key(3), key(4));
    }

    #[test]
    fn the_same_text_under_another_sql_mode_is_another_statement() {
        let baseline = Variables::default();
        let mut ansi = Variables::default();
        ansi.record("sql_mode", b"ANSI_QUOTES", &baseline);
        let sql = b"SELECT \"a\"".to_vec();
        let plain = StmtKey::new(None, Variables::default(), sql.clone());
        let quoted = StmtKey::new(None, ansi, sql);
        assert_ne!(plain, quoted);
    }

    #[test]
    fn the_same_statement_in_another_schema_is_another_statement() {
        let mut b = BackendStatements::default();
        b.insert(key("SELECT * FROM t"), 1, 0, Arc::from(&b""[..]), 10, &[]);
        let other = StmtKey::new(
            Some(b"other".to_vec()),
            Variables::default(),
            b"SELECT * FROM t".to_vec(),
        );
        assert!(b.get_mut(&other).is_none());
    }
}

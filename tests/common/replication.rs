//! A replicated set of private servers: a source and its replicas with GTID replication
//! (started as `TestDb` starts one), and a failover done the way RDS does one: the
//! writer stops taking writes (it dies, or turns read-only), a replica is promoted
//! (replication stopped, read-only off), and the old writer may come back as a
//! read-only replica of the new one.

use std::time::{Duration, Instant};

use super::db::Flavor;
use super::{TestDb, APP_USER};

const REPL_USER: &str = "repl";
const REPL_PASSWORD: &str = "repl-password";

/// How the writer leaves its role in a failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldWriter {
    /// Killed: nothing answers at its address.
    Killed,
    /// Still answering, read-only: writes get 1290, as a demoted writer's do.
    ReadOnly,
}

pub struct Replicated {
    /// The writer (after a failover: the promoted one).
    pub writer: TestDb,
    /// The read-only replicas, replicating from the writer.
    pub replicas: Vec<TestDb>,
    /// The writer before the last failover, if it is still there.
    pub old_writer: Option<TestDb>,
    next_server_id: u32,
}

/// Options that make a server a member: its own id, a binary log, GTIDs.
fn member_args(flavor: Flavor, server_id: u32) -> Vec<String> {
    let mut args = vec![
        format!("--server-id={server_id}"),
        "--log-bin=binlog".to_string(),
        "--relay-log=relay".to_string(),
    ];
    if flavor.is_mysql() {
        args.push("--gtid-mode=ON".to_string());
        args.push("--enforce-gtid-consistency=ON".to_string());
    } else {
        // Changes it applies as a replica are logged, so that it can be a source later.
        args.push("--log-slave-updates".to_string());
    }
    args
}

impl Replicated {
    /// A writer with the test schema and `replicas` read-only replicas that have caught
    /// up with it.
    pub async fn start(max_connections: u32, replicas: usize) -> Self {
        let flavor = Flavor::current();
        let writer = TestDb::start_with(max_connections, member_args(flavor, 1)).await;
        writer.cli_socket(&format!(
            "CREATE USER '{REPL_USER}'@'%' IDENTIFIED BY '{REPL_PASSWORD}';\
             GRANT REPLICATION SLAVE ON *.* TO '{REPL_USER}'@'%';"
        ));
        if !writer.is_mysql() {
            // MariaDB's ALL PRIVILEGES holds READ_ONLY ADMIN, which passes read_only; an
            // RDS application user has no such privilege.
            writer.cli_socket(&format!(
                "REVOKE READ_ONLY ADMIN ON *.* FROM '{APP_USER}'@'%';"
            ));
        }
        let mut set = Self {
            writer,
            replicas: Vec::new(),
            old_writer: None,
            next_server_id: 2,
        };
        for _ in 0..replicas {
            let id = set.next_server_id;
            set.next_server_id += 1;
            let replica = TestDb::start_empty(max_connections, member_args(flavor, id)).await;
            replicate(&replica, &set.writer);
            set.replicas.push(replica);
        }
        set.replicas_caught_up().await;
        set
    }

    /// Waits until every replica has applied what the writer has now.
    pub async fn replicas_caught_up(&self) {
        for replica in &self.replicas {
            caught_up(replica, &self.writer).await;
        }
    }

    /// Fails over to the first replica, the way RDS does: the writer stops taking
    /// writes as `how` says, the replica applies what it received, stops replicating
    /// and turns writable; the other replicas replicate from it. Returns when the new
    /// writer takes writes.
    pub async fn fail_over(&mut self, how: OldWriter) {
        let mut old = std::mem::replace(&mut self.writer, self.replicas.remove(0));
        match how {
            OldWriter::Killed => old.kill(),
            OldWriter::ReadOnly => {
                set_read_only(&old, true);
                caught_up(&self.writer, &old).await;
            }
        }
        let new = &self.writer;
        new.cli_socket(if new.is_mysql() {
            "STOP REPLICA; RESET REPLICA ALL;"
        } else {
            "STOP SLAVE; RESET SLAVE ALL;"
        });
        set_read_only(new, false);
        for replica in &self.replicas {
            replica.cli_socket(if replica.is_mysql() {
                "STOP REPLICA;"
            } else {
                "STOP SLAVE;"
            });
            replicate(replica, new);
        }
        self.old_writer = (how == OldWriter::ReadOnly).then_some(old);
    }

    /// The old writer (read-only since the failover) replicates from the new one, as a
    /// replica; it has caught up when this returns.
    pub async fn rejoin_old_writer(&mut self) {
        let old = self.old_writer.take().expect("an old writer still running");
        replicate(&old, &self.writer);
        caught_up(&old, &self.writer).await;
        self.replicas.push(old);
    }
}

/// Stops `replica`'s replication: it reports no lag then (NULL), as one stopped by
/// an operator or broken by an error does.
pub fn stop_replicating(replica: &TestDb) {
    replica.cli_socket(if replica.is_mysql() {
        "STOP REPLICA;"
    } else {
        "STOP SLAVE;"
    });
}

/// Starts `replica`'s replication again.
pub fn resume_replicating(replica: &TestDb) {
    replica.cli_socket(if replica.is_mysql() {
        "START REPLICA;"
    } else {
        "START SLAVE;"
    });
}

/// `replica` applies each transaction `seconds` after its source committed it (a
/// delayed replica): after a write on the source it falls behind by that much.
pub fn delay_replication(replica: &TestDb, seconds: u32) {
    replica.cli_socket(&if replica.is_mysql() {
        format!(
            "STOP REPLICA; CHANGE REPLICATION SOURCE TO SOURCE_DELAY = {seconds}; START REPLICA;"
        )
    } else {
        format!("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = {seconds}; START SLAVE;")
    });
}

/// `replica` replicates from `source` by GTID, and is read-only.
fn replicate(replica: &TestDb, source: &TestDb) {
    let port = source.port;
    let sql = if replica.is_mysql() {
        // GET_SOURCE_PUBLIC_KEY: caching_sha2_password over a connection without TLS.
        format!(
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT={port}, \
             SOURCE_USER='{REPL_USER}', SOURCE_PASSWORD='{REPL_PASSWORD}', \
             SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1; START REPLICA;"
        )
    } else {
        // current_pos: an old writer that rejoins starts from what it wrote itself.
        format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={port}, \
             MASTER_USER='{REPL_USER}', MASTER_PASSWORD='{REPL_PASSWORD}', \
             MASTER_USE_GTID=current_pos; START SLAVE;"
        )
    };
    replica.cli_socket(&sql);
    set_read_only(replica, true);
}

/// Read-only for every client, as RDS replicas are: on MySQL `super_read_only`, since
/// the test users hold every privilege (SUPER passes plain `read_only`).
pub fn set_read_only(db: &TestDb, on: bool) {
    let v = if on { "ON" } else { "OFF" };
    db.cli_socket(&if db.is_mysql() {
        format!("SET GLOBAL super_read_only = {v}; SET GLOBAL read_only = {v};")
    } else {
        format!("SET GLOBAL read_only = {v};")
    });
}

/// Waits until `replica` has applied every transaction `source` has now.
async fn caught_up(replica: &TestDb, source: &TestDb) {
    let target = executed(source);
    let deadline = Instant::now() + Duration::from_secs(60);
    let wait = if replica.is_mysql() {
        format!("SELECT WAIT_FOR_EXECUTED_GTID_SET('{target}', 1)")
    } else {
        format!("SELECT MASTER_GTID_WAIT('{target}', 1)")
    };
    loop {
        match replica.try_cli_socket(&wait) {
            Ok(out) if out.trim() == "0" => return,
            outcome => assert!(
                Instant::now() < deadline,
                "replica not caught up with {target}: {outcome:?}; {}",
                replication_status(replica)
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The GTIDs `db` has executed (MySQL) or its binlog position (MariaDB).
fn executed(db: &TestDb) -> String {
    let sql = if db.is_mysql() {
        "SELECT @@GLOBAL.gtid_executed"
    } else {
        "SELECT @@GLOBAL.gtid_binlog_pos"
    };
    // Batch output writes a newline inside a value as `\n`.
    db.cli_socket(sql).trim().replace("\\n", "")
}

/// What the replica says of its replication, for a failure's message.
pub fn replication_status(db: &TestDb) -> String {
    let sql = if db.is_mysql() {
        "SHOW REPLICA STATUS\\G"
    } else {
        "SHOW SLAVE STATUS\\G"
    };
    db.try_cli_socket(sql).unwrap_or_else(|e| e)
}

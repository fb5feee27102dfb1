//! The replicated servers the failover work runs on, and what clients connected
//! straight to them see in a failover done the way RDS does one: the baseline Sluice is
//! to do better than.

mod common;

use common::replication::{OldWriter, Replicated};
use mysql_async::prelude::*;

async fn count_items(conn: &mut mysql_async::Conn) -> i64 {
    let n: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM items")
        .await
        .unwrap();
    n.unwrap()
}

/// The server's error code for `sql`, or 0 when it succeeded.
async fn code(conn: &mut mysql_async::Conn, sql: &str) -> u16 {
    match conn.query_drop(sql).await {
        Ok(()) => 0,
        Err(mysql_async::Error::Server(e)) => e.code,
        Err(e) => panic!("{sql}: {e}"),
    }
}

const WRITE: &str = "INSERT INTO items (owner, note) VALUES (1, 'w')";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_writer_refuses_writes_and_the_promoted_replica_takes_them() {
    let mut set = Replicated::start(30, 1).await;
    let mut old = mysql_async::Conn::new(set.writer.direct_opts())
        .await
        .unwrap();
    assert_eq!(code(&mut old, WRITE).await, 0);
    set.replicas_caught_up().await;
    let mut replica = mysql_async::Conn::new(set.replicas[0].direct_opts())
        .await
        .unwrap();
    assert_eq!(count_items(&mut replica).await, 1, "replicated");
    // Read-only for the application, as an RDS replica is.
    assert_eq!(code(&mut replica, WRITE).await, 1290);
    replica.disconnect().await.unwrap();

    set.fail_over(OldWriter::ReadOnly).await;
    // A client that stayed on the old writer's address: every write now gets 1290,
    // which is what pools that keep their connections see after a failover.
    assert_eq!(code(&mut old, WRITE).await, 1290);
    assert_eq!(count_items(&mut old).await, 1);
    old.disconnect().await.unwrap();
    let mut new = mysql_async::Conn::new(set.writer.direct_opts())
        .await
        .unwrap();
    assert_eq!(code(&mut new, WRITE).await, 0);
    assert_eq!(count_items(&mut new).await, 2);
    new.disconnect().await.unwrap();

    // The old writer comes back as a read-only replica of the new one.
    set.rejoin_old_writer().await;
    let mut back = mysql_async::Conn::new(set.replicas[0].direct_opts())
        .await
        .unwrap();
    assert_eq!(count_items(&mut back).await, 2);
    assert_eq!(code(&mut back, WRITE).await, 1290);
    back.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_writer_loses_its_clients_and_the_other_replica_follows_the_new_one() {
    let mut set = Replicated::start(30, 2).await;
    let mut old = mysql_async::Conn::new(set.writer.direct_opts())
        .await
        .unwrap();
    assert_eq!(code(&mut old, WRITE).await, 0);
    set.replicas_caught_up().await;

    set.fail_over(OldWriter::Killed).await;
    // Its client's connection is gone: the next statement fails without a server
    // error (a lost connection), as a direct client sees it.
    match old.query_drop(WRITE).await {
        Err(mysql_async::Error::Server(e)) => panic!("a server answered: {e}"),
        Err(_) => {}
        Ok(()) => panic!("a write reached a killed server"),
    }
    assert!(set.old_writer.is_none());
    let mut new = mysql_async::Conn::new(set.writer.direct_opts())
        .await
        .unwrap();
    assert_eq!(count_items(&mut new).await, 1, "the replica had the write");
    assert_eq!(code(&mut new, WRITE).await, 0);
    new.disconnect().await.unwrap();
    // The remaining replica replicates from the new writer.
    set.replicas_caught_up().await;
    let mut other = mysql_async::Conn::new(set.replicas[0].direct_opts())
        .await
        .unwrap();
    assert_eq!(count_items(&mut other).await, 2);
    assert_eq!(code(&mut other, WRITE).await, 1290);
    other.disconnect().await.unwrap();
}

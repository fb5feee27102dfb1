//! The Docker path, checked without a Docker engine: `config/docker/sluice.toml` as
//! written (only the service names and the published ports replaced by this machine's
//! addresses) in front of a real server started the way `docker-compose.yml` starts
//! MySQL 8.4 (`max_connections=65`, user app in database shop), the backend login read
//! from a Secrets Manager emulator holding the secret the compose file creates.

mod common;

use common::db::free_port;
use common::moto::Moto;
use common::{Proxy, TestDb, APP_PASSWORD, APP_USER};
use mysql_async::prelude::*;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docker_config_serves_clients_as_written() {
    let compose = repo_file("docker-compose.yml");
    let config = repo_file("config/docker/sluice.toml");
    // What the compose file sets up is what the harness's server has.
    for expected in [
        "image: mysql:8.4",
        "MYSQL_DATABASE: shop",
        &format!("MYSQL_USER: {APP_USER}"),
        &format!("MYSQL_PASSWORD: {APP_PASSWORD}"),
        "--max-connections=65",
        "--name sluice/app",
        &format!("{{\"username\":\"{APP_USER}\",\"password\":\"{APP_PASSWORD}\"}}"),
        "./config/docker/sluice.toml:/etc/sluice/sluice.toml:ro",
        "\"3306:3306\"",
        "\"9104:9104\"",
    ] {
        assert!(
            compose.contains(expected),
            "docker-compose.yml lacks {expected}"
        );
    }
    for expected in [
        "listen = \"0.0.0.0:3306\"",
        "listen = \"0.0.0.0:9104\"",
        "address = \"mysql:3306\"",
        "endpoint_url = \"http://secretsmanager:5000\"",
        "secret = \"sluice/app\"",
    ] {
        assert!(
            config.contains(expected),
            "config/docker/sluice.toml lacks {expected}"
        );
    }

    let db = TestDb::start(65).await;
    let moto = Moto::start().await;
    moto.put_login("sluice/app", APP_USER, APP_PASSWORD).await;
    let local = config
        .replace("0.0.0.0:3306", &format!("127.0.0.1:{}", free_port()))
        .replace("0.0.0.0:9104", "127.0.0.1:0")
        .replace("mysql:3306", &db.address())
        .replace("http://secretsmanager:5000", &moto.endpoint);
    let proxy = Proxy::start(&local).await;
    let mut conn = proxy.conn().await;
    let rows: Vec<(i32, String)> = conn
        .query("SELECT id, name FROM menus ORDER BY id")
        .await
        .unwrap();
    assert_eq!(rows.len(), 9);
    let who: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(who.as_deref(), Some("app@%"));
    conn.disconnect().await.unwrap();
    // 70 % of the server's 65.
    assert_eq!(
        proxy
            .metric("sluice_database_connections_max_allowed")
            .await,
        45.0
    );
    assert!(
        proxy
            .metric("sluice_secret_fetches_total{result=\"ok\"}")
            .await
            >= 1.0
    );
    proxy.stop().await;
}

//! A private MariaDB server: its own temp datadir, free port, socket and max_connections.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;

use super::{APP_PASSWORD, APP_USER, MENUS};

pub struct MariaDb {
    dir: tempfile::TempDir,
    pub port: u16,
    pub max_connections: u32,
    extra_args: Vec<String>,
    child: Option<Child>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn server_binary() -> PathBuf {
    for p in [
        "/usr/sbin/mariadbd",
        "/usr/bin/mariadbd",
        "/usr/sbin/mysqld",
    ] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("mariadbd not found: run scripts/test.sh, which installs mariadb-server");
}

fn is_root() -> bool {
    std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false)
}

impl MariaDb {
    /// Installs a fresh datadir, starts the server and creates the test schema:
    /// user `app`, database `shop` with the menus table, root@127.0.0.1 for admin work.
    pub async fn start(max_connections: u32) -> Self {
        Self::start_with(max_connections, Vec::new()).await
    }

    /// As [`Self::start`], with extra mariadbd options (e.g. TLS files).
    pub async fn start_with(max_connections: u32, extra_args: Vec<String>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sluice-mariadb")
            .tempdir()
            .unwrap();
        // mariadb-install-db fails now and then when several run at once on a loaded
        // machine; a fresh attempt in a clean directory succeeds.
        let mut failure = String::new();
        for _ in 0..3 {
            let data = dir.path().join("data");
            let _ = std::fs::remove_dir_all(&data);
            let mut install = Command::new("mariadb-install-db");
            install
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg("--auth-root-authentication-method=normal")
                .arg("--skip-test-db")
                .stdin(Stdio::null());
            if is_root() {
                install.arg("--user=root");
            }
            let out = install.output().expect("mariadb-install-db runs");
            if out.status.success() {
                failure.clear();
                break;
            }
            failure = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!("mariadb-install-db failed, retrying: {failure}");
        }
        assert!(failure.is_empty(), "mariadb-install-db failed: {failure}");
        let mut db = Self {
            dir,
            port: free_port(),
            max_connections,
            extra_args,
            child: None,
        };
        db.launch().await;
        db.bootstrap();
        db
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("mariadb.sock")
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn launch(&mut self) {
        let d = self.dir.path();
        let mut cmd = Command::new(server_binary());
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--pid-file={}", d.join("mariadb.pid").display()))
            .arg(format!("--max-connections={}", self.max_connections))
            .arg(format!("--log-error={}", d.join("error.log").display()))
            .arg("--skip-name-resolve")
            .arg("--innodb-buffer-pool-size=64M")
            .arg("--max-allowed-packet=256M")
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if is_root() {
            cmd.arg("--user=root");
        }
        self.child = Some(cmd.spawn().expect("mariadbd starts"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.socket().exists() || std::net::TcpStream::connect(self.address()).is_err() {
            assert!(
                Instant::now() < deadline,
                "MariaDB did not start: {}",
                self.error_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn bootstrap(&self) {
        let mut sql = format!(
            "CREATE USER '{APP_USER}'@'%' IDENTIFIED BY '{APP_PASSWORD}';\
             GRANT ALL ON *.* TO '{APP_USER}'@'%';\
             CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\
             CREATE DATABASE shop CHARACTER SET utf8mb4; CREATE DATABASE other CHARACTER SET utf8mb4;\
             CREATE TABLE shop.menus (id INT PRIMARY KEY, name VARCHAR(64), price INT,\
               image_prefix VARCHAR(32), takeout TINYINT) CHARACTER SET utf8mb4;\
             CREATE TABLE shop.items (id INT AUTO_INCREMENT PRIMARY KEY, owner INT, note VARCHAR(255)) ENGINE=InnoDB;\
             INSERT INTO shop.menus VALUES "
        );
        let rows: Vec<String> = MENUS
            .iter()
            .map(|(id, name, price, prefix, takeout)| {
                format!("({id},'{name}',{price},'{prefix}',{takeout})")
            })
            .collect();
        sql.push_str(&rows.join(","));
        sql.push(';');
        self.cli_socket(&sql);
    }

    /// Runs SQL as root over the socket with the mariadb CLI; returns stdout.
    pub fn cli_socket(&self, sql: &str) -> String {
        let out = Command::new("mariadb")
            .arg(format!("--socket={}", self.socket().display()))
            .args([
                "-uroot",
                "--default-character-set=utf8mb4",
                "-N",
                "-B",
                "-e",
                sql,
            ])
            .output()
            .expect("mariadb CLI runs");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// mysql_async options for user app straight to this server (no Sluice).
    pub fn direct_opts(&self) -> mysql_async::OptsBuilder {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some(APP_USER))
            .pass(Some(APP_PASSWORD))
            .db_name(Some("shop"))
            .prefer_socket(false)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// A direct root connection over TCP (for checks the harness makes).
    pub async fn admin(&self) -> mysql_async::Conn {
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some("root"))
            // Otherwise mysql_async reconnects through the socket: two connections.
            .prefer_socket(false);
        mysql_async::Conn::new(opts)
            .await
            .expect("admin connection")
    }

    /// Resets Max_used_connections to the connections open now, after letting earlier
    /// connections finish closing (the server counts a closing connection a moment longer).
    /// Transactions open on the server right now (any connection).
    pub async fn open_transactions(&self) -> i64 {
        let n: Option<i64> = self
            .admin()
            .await
            .query_first("SELECT COUNT(*) FROM information_schema.INNODB_TRX")
            .await
            .unwrap();
        n.unwrap_or(0)
    }

    pub async fn reset_max_used_connections(&self) {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        self.cli_socket("FLUSH STATUS");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }

    pub async fn global_status(&self, name: &str) -> u64 {
        let mut c = self.admin().await;
        let row: Option<(String, String)> = c
            .query_first(format!("SHOW GLOBAL STATUS LIKE '{name}'"))
            .await
            .unwrap();
        c.disconnect().await.unwrap();
        row.map(|(_, v)| v.parse().unwrap()).unwrap_or(0)
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// SIGKILL: a crash, as far as clients can tell.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(self.socket());
    }

    /// Starts the server again on the same datadir and port.
    pub async fn restart(&mut self) {
        self.kill();
        self.launch().await;
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.kill();
    }
}

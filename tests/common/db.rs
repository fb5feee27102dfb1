//! A private database server for one test: Oracle MySQL (the default: what Sluice's users
//! run) or MariaDB, chosen by `SLUICE_TEST_DB=mysql|mariadb`. Each instance has its own
//! datadir, free port, socket and max_connections; no system service is used.
//!
//! MySQL comes from Debian's `sid` suite, installed by `scripts/test.sh` into a minimal
//! debootstrap root (`SLUICE_SID_ROOT`, default `/var/cache/sluice-test/sid`) holding a
//! template datadir made once with `--initialize-insecure`. Each test copies the template
//! into a directory inside that root and runs `mysqld` there with `chroot`. MariaDB is
//! Debian 12's own package, installed into a fresh temp datadir per test.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;

use super::{APP_PASSWORD, APP_USER, MENUS};

/// Which server the tests run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MySql,
    MariaDb,
}

impl Flavor {
    /// The server chosen by `SLUICE_TEST_DB` (MySQL when unset).
    pub fn current() -> Self {
        match std::env::var("SLUICE_TEST_DB").as_deref() {
            Err(_) | Ok("") | Ok("mysql") => Flavor::MySql,
            Ok("mariadb") => Flavor::MariaDb,
            Ok(other) => panic!("SLUICE_TEST_DB={other}: expected mysql or mariadb"),
        }
    }

    pub fn is_mysql(self) -> bool {
        self == Flavor::MySql
    }

    /// `sql` with MariaDB 10.11's variable names replaced by MySQL's where MySQL has
    /// only its own (`tx_isolation` and `tx_read_only` were removed in MySQL 8.0, and
    /// MariaDB 10.11 has no `transaction_isolation`), so one script runs on both.
    pub fn dialect(self, sql: &str) -> String {
        match self {
            Flavor::MariaDb => sql.to_string(),
            Flavor::MySql => sql
                .replace("@@tx_isolation", "@@transaction_isolation")
                .replace("@@tx_read_only", "@@transaction_read_only"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Flavor::MySql => "mysql",
            Flavor::MariaDb => "mariadb",
        }
    }
}

pub struct TestDb {
    pub flavor: Flavor,
    dir: tempfile::TempDir,
    /// The loopback address it listens on (127.0.0.1 unless a test needs two servers
    /// on one port).
    pub ip: String,
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

/// The debootstrap root that holds Oracle MySQL.
pub fn sid_root() -> PathBuf {
    std::env::var_os("SLUICE_SID_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/cache/sluice-test/sid".into())
}

fn mariadb_binary() -> PathBuf {
    for p in ["/usr/sbin/mariadbd", "/usr/bin/mariadbd"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("mariadbd not found: run scripts/test.sh, which installs mariadb-server");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

impl TestDb {
    /// Starts a fresh server and creates the test schema: user `app`, database `shop`
    /// with the menus table, root@127.0.0.1 for admin work.
    pub async fn start(max_connections: u32) -> Self {
        Self::start_with(max_connections, Vec::new()).await
    }

    /// As [`Self::start`], with extra server options (e.g. TLS files: option values that
    /// name files are copied into the MySQL root, which cannot see the host's paths).
    pub async fn start_with(max_connections: u32, extra_args: Vec<String>) -> Self {
        let db = Self::start_empty(max_connections, extra_args).await;
        db.bootstrap();
        db
    }

    /// A fresh server without the test schema (a replica, which gets it from its
    /// source), with its own server UUID.
    pub async fn start_empty(max_connections: u32, extra_args: Vec<String>) -> Self {
        Self::start_empty_on(None, max_connections, extra_args).await
    }

    /// As [`Self::start_with`], listening on `ip` (a loopback address) and `port`.
    pub async fn start_on(ip: &str, port: u16, max_connections: u32, args: Vec<String>) -> Self {
        let db = Self::start_empty_on(Some((ip, port)), max_connections, args).await;
        db.bootstrap();
        db
    }

    async fn start_empty_on(
        at: Option<(&str, u16)>,
        max_connections: u32,
        extra_args: Vec<String>,
    ) -> Self {
        let flavor = Flavor::current();
        let dir = match flavor {
            Flavor::MySql => mysql_datadir(),
            Flavor::MariaDb => mariadb_datadir(),
        };
        // Copies of one template share its UUID, which replication refuses: the server
        // makes a new one when the file is missing.
        let _ = std::fs::remove_file(dir.path().join("data/auto.cnf"));
        let mut db = Self {
            flavor,
            dir,
            ip: at.map_or("127.0.0.1", |(ip, _)| ip).to_string(),
            port: at.map_or_else(free_port, |(_, port)| port),
            max_connections,
            extra_args,
            child: None,
        };
        if flavor.is_mysql() {
            let args = std::mem::take(&mut db.extra_args);
            db.extra_args = db.copy_files_into_root(args);
        }
        // The port was free when chosen, but another test may bind it before the server
        // does (tests open hundreds of sockets in parallel): on the first start only, a
        // new port then. A restart keeps its port, which the proxy under test points at.
        for _ in 0..5 {
            match db.try_launch().await {
                Ok(()) => return db,
                Err(log) if log.contains("Address already in use") && at.is_none() => {
                    let _ = std::fs::remove_file(db.dir.path().join("error.log"));
                    db.port = free_port();
                }
                Err(log) => panic!("{:?} exited: {log}", db.flavor),
            }
        }
        panic!("{:?} found no free port", db.flavor);
    }

    pub fn is_mysql(&self) -> bool {
        self.flavor.is_mysql()
    }

    /// The server's socket, as the host sees it.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("server.sock")
    }

    pub fn address(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// `path` as the server process sees it (inside the chroot for MySQL).
    fn server_path(&self, path: &Path) -> PathBuf {
        match self.flavor {
            Flavor::MySql => Path::new("/").join(path.strip_prefix(sid_root()).unwrap()),
            Flavor::MariaDb => path.to_path_buf(),
        }
    }

    fn copy_files_into_root(&self, args: Vec<String>) -> Vec<String> {
        let files = self.dir.path().join("files");
        std::fs::create_dir_all(&files).unwrap();
        args.into_iter()
            .map(|arg| {
                let Some((key, value)) = arg.split_once('=') else {
                    return arg;
                };
                let host = Path::new(value);
                if !host.is_absolute() || !host.is_file() {
                    return arg;
                }
                let copy = files.join(host.file_name().unwrap());
                std::fs::copy(host, &copy).unwrap();
                format!("{key}={}", self.server_path(&copy).display())
            })
            .collect()
    }

    async fn launch(&mut self) {
        if let Err(log) = self.try_launch().await {
            panic!("{:?} exited: {log}", self.flavor);
        }
    }

    /// Starts the server and waits until it accepts connections; its error log if it
    /// exited instead.
    async fn try_launch(&mut self) -> Result<(), String> {
        let d = self.dir.path();
        let p = |name: &str| self.server_path(&d.join(name)).display().to_string();
        let mut cmd = match self.flavor {
            Flavor::MySql => {
                let mut c = Command::new("chroot");
                c.arg(sid_root())
                    .arg("/usr/sbin/mysqld")
                    .arg("--no-defaults")
                    .arg("--mysqlx=OFF")
                    .arg("--secure-file-priv=");
                c
            }
            Flavor::MariaDb => {
                let mut c = Command::new(mariadb_binary());
                c.arg("--no-defaults");
                c
            }
        };
        cmd.arg(format!("--datadir={}", p("data")))
            .arg(format!("--port={}", self.port))
            .arg(format!("--bind-address={}", self.ip))
            .arg(format!("--socket={}", p("server.sock")))
            .arg(format!("--pid-file={}", p("server.pid")))
            .arg(format!("--max-connections={}", self.max_connections))
            .arg(format!("--log-error={}", p("error.log")))
            .arg("--skip-name-resolve")
            .arg("--innodb-buffer-pool-size=64M")
            .arg("--max-allowed-packet=256M")
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if is_root() {
            cmd.arg("--user=root");
        }
        self.child = Some(cmd.spawn().expect("the database server starts"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.socket().exists() || std::net::TcpStream::connect(self.address()).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("({status}) {}", self.error_log()));
            }
            assert!(
                Instant::now() < deadline,
                "{:?} did not start: {}",
                self.flavor,
                self.error_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
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

    /// Runs SQL as root over the socket with the server's own CLI; returns stdout.
    pub fn cli_socket(&self, sql: &str) -> String {
        self.try_cli_socket(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// As [`Self::cli_socket`]; the CLI's error output when the SQL failed.
    pub fn try_cli_socket(&self, sql: &str) -> Result<String, String> {
        let mut cmd = match self.flavor {
            Flavor::MySql => {
                let mut c = Command::new("chroot");
                c.arg(sid_root()).arg("mysql");
                c
            }
            Flavor::MariaDb => Command::new("mariadb"),
        };
        let out = cmd
            .arg(format!(
                "--socket={}",
                self.server_path(&self.socket()).display()
            ))
            .args([
                "-uroot",
                "--default-character-set=utf8mb4",
                "-N",
                "-B",
                "-e",
                sql,
            ])
            .output()
            .expect("the database CLI runs");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8(out.stdout).unwrap())
    }

    /// mysql_async options for user app straight to this server (no Sluice).
    pub fn direct_opts(&self) -> mysql_async::OptsBuilder {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.ip.as_str())
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

    /// Resets Max_used_connections to the connections open now, after letting earlier
    /// connections finish closing (the server counts a closing connection a moment longer).
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

    /// Sends the server process a signal (`STOP` freezes it, `CONT` lets it go on).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the server runs").id();
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
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

impl Drop for TestDb {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A copy of the template datadir in a fresh directory inside the MySQL root.
fn mysql_datadir() -> tempfile::TempDir {
    let root = sid_root();
    let template = root.join("srv/template/data");
    assert!(
        template.join("mysql.ibd").exists(),
        "no MySQL template datadir at {}: run scripts/test.sh, which makes the sid root",
        template.display()
    );
    let runs = root.join("srv/run");
    std::fs::create_dir_all(&runs).unwrap();
    let dir = tempfile::Builder::new()
        .prefix("sluice-mysql")
        .tempdir_in(&runs)
        .unwrap();
    let out = Command::new("cp")
        .args(["-a", "--sparse=always"])
        .arg(&template)
        .arg(dir.path().join("data"))
        .output()
        .expect("cp runs");
    assert!(
        out.status.success(),
        "copying the MySQL template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// A freshly installed MariaDB datadir in a temp directory.
fn mariadb_datadir() -> tempfile::TempDir {
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
            return dir;
        }
        failure = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("mariadb-install-db failed, retrying: {failure}");
    }
    panic!("mariadb-install-db failed: {failure}");
}

//! Real clients run as processes: the mariadb CLI and Python scripts (pymysql,
//! mysql-connector-python) from the venv scripts/test.sh makes.

use std::path::PathBuf;
use std::process::{Command, Output};

use super::{APP_PASSWORD, APP_USER};

/// Runs the mariadb CLI as user app against 127.0.0.1:`port`.
pub fn mariadb_cli(port: u16, password: &str, extra: &[&str], sql: &str) -> Output {
    Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            &format!("-P{port}"),
            &format!("-u{APP_USER}"),
        ])
        .arg(format!("-p{password}"))
        .args(["--default-character-set=utf8mb4", "-N", "-B"])
        .args(extra)
        .args(["-e", sql])
        .output()
        .expect("mariadb CLI runs")
}

pub fn mariadb_ok(port: u16, extra: &[&str], sql: &str) -> String {
    let out = mariadb_cli(port, APP_PASSWORD, extra, sql);
    assert!(
        out.status.success(),
        "mariadb CLI failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The Python interpreter of the test venv.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("SLUICE_TEST_PYTHON") {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no test venv: run scripts/test.sh (it creates .venv with pymysql)"
    );
    venv
}

/// Runs tests/python/`script` with `args`; returns stdout, failing the test on error.
pub fn python_script(script: &str, args: &[String]) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let out = Command::new(python())
        .arg(path)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{script} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs Oracle MySQL 9's own `mysql` CLI (from the sid root; built without
/// mysql_native_password) as user app against 127.0.0.1:`port`.
pub fn mysql_cli(port: u16, extra: &[&str], sql: &str) -> Output {
    Command::new("chroot")
        .arg(super::db::sid_root())
        .args([
            "mysql",
            "-h127.0.0.1",
            &format!("-P{port}"),
            &format!("-u{APP_USER}"),
            &format!("-p{APP_PASSWORD}"),
            "--default-character-set=utf8mb4",
            "-N",
            "-B",
        ])
        .args(extra)
        .args(["-e", sql])
        .output()
        .expect("the mysql CLI runs (chroot into the sid root)")
}

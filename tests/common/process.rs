//! Sluice as a separate process (the real binary), for signal and load tests.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct SluiceProcess {
    pub child: Option<Child>,
    pub port: u16,
    /// The admin listener, when the config has one and the caller set it here.
    pub admin: Option<SocketAddr>,
    _dir: tempfile::TempDir,
}

impl SluiceProcess {
    /// Starts the binary with `config` (whose `server.listen` must be 127.0.0.1:`port`)
    /// and waits until it accepts connections.
    pub async fn start(config: &str, port: u16, stderr: Stdio) -> Self {
        Self::start_under(&[], config, port, stderr).await
    }

    /// As [`SluiceProcess::start`], with the binary run by `wrapper` (e.g. valgrind's
    /// command line), which must exec it in the same process.
    pub async fn start_under(wrapper: &[String], config: &str, port: u16, stderr: Stdio) -> Self {
        let binary = env!("CARGO_BIN_EXE_sluice");
        Self::start_binary_under(binary, wrapper, config, port, stderr).await
    }

    /// As [`SluiceProcess::start_under`], with another build of Sluice (an earlier
    /// commit's, for a before/after figure).
    pub async fn start_binary_under(
        binary: &str,
        wrapper: &[String],
        config: &str,
        port: u16,
        stderr: Stdio,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, config).unwrap();
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        let mut child = command
            .arg("--config")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("sluice exited before accepting clients: {status}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            child: Some(child),
            port,
            admin: None,
            _dir: dir,
        }
    }

    /// One sample of /metrics (0 when absent).
    pub async fn metric(&self, name_with_labels: &str) -> f64 {
        let admin = self.admin.expect("started with an admin listener");
        super::metrics::sample(&super::metrics::scrape(admin).await, name_with_labels)
    }

    /// Pins of every reason.
    pub async fn pins_total(&self) -> f64 {
        let admin = self.admin.expect("started with an admin listener");
        super::metrics::pins(&super::metrics::scrape(admin).await)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }
}

impl Drop for SluiceProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

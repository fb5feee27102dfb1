//! `moto_server` (PyPI `moto[server]`, in the test venv) as a private Secrets Manager on
//! a free port, and a Secrets Manager client for the tests to write secrets with.

use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::Duration;

use aws_sdk_secretsmanager::Client;

use super::clients::python;
use super::db::free_port;

pub const REGION: &str = "us-east-1";

/// Dummy AWS credentials for the SDK's standard chain (moto accepts any). Set once per
/// test binary, before anything reads them.
pub fn aws_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDSLUICETEST");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "sluice-test-secret");
        std::env::set_var("AWS_REGION", REGION);
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        // The key pair the Lambda handler signs IAM tokens with (local mode).
        std::env::set_var("SLUICE_KEY_ID", "AKIDSLUICETEST");
        std::env::set_var("SLUICE_KEY_SECRET", "sluice-test-secret");
    });
}

pub struct Moto {
    child: Option<Child>,
    pub port: u16,
    pub endpoint: String,
    pub client: Client,
}

impl Moto {
    pub async fn start() -> Self {
        aws_env();
        let port = free_port();
        let child = spawn(port);
        let endpoint = format!("http://127.0.0.1:{port}");
        wait_ready(port).await;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .region(aws_config::Region::new(REGION))
            .endpoint_url(&endpoint)
            .load()
            .await;
        Self {
            child: Some(child),
            port,
            endpoint,
            client: Client::new(&sdk),
        }
    }

    /// Creates the secret, or puts a new AWSCURRENT version (the old one becomes
    /// AWSPREVIOUS, as in a rotation).
    pub async fn put(&self, name: &str, value: &str) {
        let created = self
            .client
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await;
        if created.is_err() {
            self.client
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await
                .expect("put secret value");
        }
    }

    pub async fn put_login(&self, name: &str, user: &str, password: &str) {
        self.put(name, &login_json(user, password)).await;
    }

    /// A rotation function's createSecret step: the new value as AWSPENDING. Returns its
    /// version id for `finish_rotation`.
    pub async fn put_pending(&self, name: &str, user: &str, password: &str) -> String {
        let out = self
            .client
            .put_secret_value()
            .secret_id(name)
            .secret_string(login_json(user, password))
            .version_stages("AWSPENDING")
            .send()
            .await
            .expect("put AWSPENDING");
        out.version_id().expect("version id").to_string()
    }

    /// finishSecret: AWSCURRENT moves to `version` (the old one becomes AWSPREVIOUS).
    pub async fn finish_rotation(&self, name: &str, version: &str) {
        let current = self
            .client
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .expect("read AWSCURRENT");
        self.client
            .update_secret_version_stage()
            .secret_id(name)
            .version_stage("AWSCURRENT")
            .move_to_version_id(version)
            .remove_from_version_id(current.version_id().expect("version id"))
            .send()
            .await
            .expect("move AWSCURRENT");
    }

    /// Stops the server (Secrets Manager "unreachable").
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub async fn restart(&mut self) {
        self.kill();
        self.child = Some(spawn(self.port));
        wait_ready(self.port).await;
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

fn login_json(user: &str, password: &str) -> String {
    serde_json::json!({"username": user, "password": password, "engine": "mysql"}).to_string()
}

fn spawn(port: u16) -> Child {
    let bin = python().with_file_name("moto_server");
    Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{} runs (scripts/test.sh installs moto[server]): {e}",
                bin.display()
            )
        })
}

async fn wait_ready(port: u16) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("moto_server did not start on port {port}");
}

//! rustls client configuration for TLS to the backend (CA bundle, hostname verification).

use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};

use crate::config::BackendTlsConfig;
use crate::tls::{load_certs, TlsError};

/// What a backend TLS handshake needs, built once at start.
#[derive(Clone)]
pub struct BackendTls {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
}

impl BackendTls {
    pub fn from_config(cfg: &BackendTlsConfig, default_host: &str) -> Result<Self, TlsError> {
        let mut roots = RootCertStore::empty();
        match &cfg.ca {
            Some(path) => {
                for cert in load_certs(path)? {
                    roots
                        .add(cert)
                        .map_err(|e| TlsError::Rustls(path.clone(), e))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(Default::default(), e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = cfg
            .server_name
            .as_deref()
            .unwrap_or(default_host)
            .to_owned();
        let server_name =
            ServerName::try_from(name.clone()).map_err(|_| TlsError::ServerName(name))?;
        Ok(Self {
            config: Arc::new(config),
            server_name,
        })
    }
}

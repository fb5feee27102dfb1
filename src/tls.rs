//! Loading PEM certificates and keys, and the client-facing rustls server configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;

// PEM parsing is rustls-pki-types' own (`PemObject`): the rustls-pemfile crate it
// replaced is unmaintained (RUSTSEC-2025-0134).
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use crate::config::ServerTlsConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0} is not valid PEM: {1}")]
    Pem(PathBuf, pem::Error),
    #[error("{0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    #[error("{0} holds no PEM private key")]
    NoKey(PathBuf),
    #[error("TLS configuration from {0} rejected: {1}")]
    Rustls(PathBuf, rustls::Error),
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| TlsError::Read(path.into(), e))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(path.into(), e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.into()));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| TlsError::Read(path.into(), e))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey(path.into()),
        e => TlsError::Pem(path.into(), e),
    })
}

/// The rustls server configuration clients' TLS handshakes use.
pub fn server_config(cfg: &ServerTlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = load_certs(&cfg.cert)?;
    let key = load_key(&cfg.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(cfg.cert.clone(), e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Rustls(cfg.cert.clone(), e))?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_files() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (dir, cert_path, key_path)
    }

    #[test]
    fn a_certificate_and_its_key_make_a_server_config() {
        let (_dir, cert, key) = pem_files();
        assert_eq!(load_certs(&cert).unwrap().len(), 1);
        assert!(load_key(&key).is_ok());
        let cfg = ServerTlsConfig {
            cert,
            key,
            require: false,
        };
        assert!(server_config(&cfg).is_ok());
    }

    #[test]
    fn files_without_what_they_should_hold_say_so() {
        let (dir, cert, key) = pem_files();
        assert!(matches!(load_certs(&key), Err(TlsError::NoCertificate(_))));
        assert!(matches!(load_key(&cert), Err(TlsError::NoKey(_))));
        let broken = dir.path().join("broken.pem");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        assert!(matches!(load_certs(&broken), Err(TlsError::Pem(..))));
        let missing = dir.path().join("missing.pem");
        assert!(matches!(load_certs(&missing), Err(TlsError::Read(..))));
    }
}

//! `caching_sha2_password`: the fast-path scramble
//! XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)) + scramble)), the full-authentication
//! exchange markers, and RSA encryption of the password for servers without TLS.

use rsa::pkcs8::DecodePublicKey;
use rsa::{Oaep, RsaPublicKey};
use sha2::{Digest, Sha256};

/// AuthMoreData payload byte: the fast path succeeded, an OK follows.
pub const FAST_AUTH_SUCCESS: u8 = 0x03;
/// AuthMoreData payload byte: send the password (over TLS) or ask for the RSA key.
pub const PERFORM_FULL_AUTH: u8 = 0x04;
/// Client request for the server's RSA public key.
pub const REQUEST_PUBLIC_KEY: u8 = 0x02;

pub fn scramble(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let p1 = Sha256::digest(password);
    let p2 = Sha256::digest(p1);
    let mut h = Sha256::new();
    h.update(p2);
    h.update(nonce);
    let p3 = h.finalize();
    p1.iter().zip(p3.iter()).map(|(a, b)| a ^ b).collect()
}

pub fn verify(password: &[u8], nonce: &[u8], response: &[u8]) -> bool {
    super::constant_time_eq(&scramble(password, nonce), response)
}

#[derive(Debug, thiserror::Error)]
pub enum RsaError {
    #[error("server sent an unusable RSA public key")]
    BadKey,
    #[error("RSA encryption failed")]
    Encrypt,
}

/// Encrypts NUL-terminated password XOR scramble with the server's RSA key (OAEP, SHA-1),
/// as MySQL 8.0.5+ expects.
pub fn encrypt_password(password: &[u8], nonce: &[u8], pem: &[u8]) -> Result<Vec<u8>, RsaError> {
    let pem = std::str::from_utf8(pem).map_err(|_| RsaError::BadKey)?;
    let key = RsaPublicKey::from_public_key_pem(pem.trim_end_matches('\0').trim())
        .or_else(|_| {
            use rsa::pkcs1::DecodeRsaPublicKey;
            RsaPublicKey::from_pkcs1_pem(pem.trim_end_matches('\0').trim())
        })
        .map_err(|_| RsaError::BadKey)?;
    let mut plain: Vec<u8> = password.to_vec();
    plain.push(0);
    if !nonce.is_empty() {
        for (i, b) in plain.iter_mut().enumerate() {
            *b ^= nonce[i % nonce.len()];
        }
    }
    key.encrypt(&mut rand::rngs::OsRng, Oaep::new::<sha1::Sha1>(), &plain)
        .map_err(|_| RsaError::Encrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_round_trip() {
        let nonce = b"abcdefghijklmnopqrst";
        let r = scramble(b"pw", nonce);
        assert_eq!(r.len(), 32);
        assert!(verify(b"pw", nonce, &r));
        assert!(!verify(b"pw2", nonce, &r));
    }

    #[test]
    fn rsa_encrypted_password_decrypts_to_password_xor_scramble() {
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        let pem = key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let nonce = b"abcdefghijklmnopqrst";
        let enc = encrypt_password(b"secret", nonce, pem.as_bytes()).unwrap();
        let plain = key.decrypt(Oaep::new::<sha1::Sha1>(), &enc).unwrap();
        let unmasked: Vec<u8> = plain
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ nonce[i % nonce.len()])
            .collect();
        assert_eq!(unmasked, b"secret\0");
    }

    #[test]
    fn garbage_key_is_an_error() {
        assert!(encrypt_password(b"pw", b"n", b"not a key").is_err());
    }
}

//! Connection-phase packets: the server greeting, SSLRequest, HandshakeResponse41 and
//! the authentication exchange packets (AuthSwitchRequest, AuthMoreData).

use super::wire::{put_lenenc_bytes, put_lenenc_int, Reader};
use super::{caps, ProtocolError};

pub const AUTH_SWITCH_HEADER: u8 = 0xFE;
pub const AUTH_MORE_DATA_HEADER: u8 = 0x01;

/// Initial handshake packet (protocol version 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    pub server_version: Vec<u8>,
    pub connection_id: u32,
    pub scramble: Vec<u8>,
    pub capabilities: u32,
    pub charset: u8,
    pub status: u16,
    pub auth_plugin: Vec<u8>,
}

impl Greeting {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        out.push(10);
        out.extend_from_slice(&self.server_version);
        out.push(0);
        out.extend_from_slice(&self.connection_id.to_le_bytes());
        out.extend_from_slice(&self.scramble[..8]);
        out.push(0);
        out.extend_from_slice(&(self.capabilities as u16).to_le_bytes());
        out.push(self.charset);
        out.extend_from_slice(&self.status.to_le_bytes());
        out.extend_from_slice(&((self.capabilities >> 16) as u16).to_le_bytes());
        out.push(self.scramble.len() as u8 + 1);
        out.extend_from_slice(&[0; 10]);
        out.extend_from_slice(&self.scramble[8..]);
        out.push(0);
        out.extend_from_slice(&self.auth_plugin);
        out.push(0);
        out
    }

    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        if r.u8("protocol version")? != 10 {
            return Err(ProtocolError::Malformed("unsupported protocol version"));
        }
        let server_version = r.null_terminated("server version")?.to_vec();
        let connection_id = r.u32("connection id")?;
        let mut scramble = r.bytes(8, "scramble")?.to_vec();
        r.skip(1, "filler")?;
        let low = r.u16("capabilities")?;
        let charset = r.u8("charset")?;
        let status = r.u16("status")?;
        let high = r.u16("capabilities")?;
        let capabilities = u32::from(low) | u32::from(high) << 16;
        let auth_len = r.u8("auth data length")?;
        r.skip(10, "reserved")?;
        if capabilities & caps::SECURE_CONNECTION != 0 {
            let n = usize::from(auth_len).saturating_sub(8).max(13);
            let part2 = r.bytes(n.min(r.remaining()), "scramble")?;
            let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
            scramble.extend_from_slice(part2);
        }
        let auth_plugin = if capabilities & caps::PLUGIN_AUTH != 0 && !r.is_empty() {
            let rest = r.rest();
            rest.strip_suffix(&[0]).unwrap_or(rest).to_vec()
        } else {
            b"mysql_native_password".to_vec()
        };
        Ok(Self {
            server_version,
            connection_id,
            scramble,
            capabilities,
            charset,
            status,
            auth_plugin,
        })
    }
}

/// HandshakeResponse41, or its 32-byte SSLRequest prefix.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandshakeResponse {
    pub capabilities: u32,
    pub max_packet: u32,
    pub charset: u8,
    pub user: Vec<u8>,
    pub auth_response: Vec<u8>,
    pub database: Option<Vec<u8>>,
    pub auth_plugin: Option<Vec<u8>>,
    pub attributes: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Payload length of an SSLRequest.
pub const SSL_REQUEST_LEN: usize = 32;

impl HandshakeResponse {
    /// True for an SSLRequest: the fixed prefix alone, with `CLIENT_SSL` set.
    pub fn is_ssl_request(payload: &[u8]) -> bool {
        payload.len() == SSL_REQUEST_LEN
            && u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) & caps::SSL != 0
    }

    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        let capabilities = r.u32("capabilities")?;
        if capabilities & caps::PROTOCOL_41 == 0 {
            return Err(ProtocolError::Malformed(
                "client does not speak protocol 4.1",
            ));
        }
        let max_packet = r.u32("max packet")?;
        let charset = r.u8("charset")?;
        r.skip(23, "filler")?;
        let user = r.null_terminated("user name")?.to_vec();
        let auth_response = if capabilities & caps::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            r.lenenc_bytes("auth response")?
        } else if capabilities & caps::SECURE_CONNECTION != 0 {
            let n = r.u8("auth response length")?;
            r.bytes(usize::from(n), "auth response")?
        } else {
            r.null_terminated("auth response")?
        }
        .to_vec();
        let database = if capabilities & caps::CONNECT_WITH_DB != 0 && !r.is_empty() {
            Some(r.null_terminated("database")?.to_vec()).filter(|d| !d.is_empty())
        } else {
            None
        };
        let auth_plugin = if capabilities & caps::PLUGIN_AUTH != 0 && !r.is_empty() {
            Some(r.null_terminated("auth plugin")?.to_vec())
        } else {
            None
        };
        let mut attributes = Vec::new();
        if capabilities & caps::CONNECT_ATTRS != 0 && !r.is_empty() {
            let mut a = Reader::new(r.lenenc_bytes("connection attributes")?);
            while !a.is_empty() {
                let k = a.lenenc_bytes("attribute name")?.to_vec();
                let v = a.lenenc_bytes("attribute value")?.to_vec();
                attributes.push((k, v));
            }
        }
        Ok(Self {
            capabilities,
            max_packet,
            charset,
            user,
            auth_response,
            database,
            auth_plugin,
            attributes,
        })
    }

    /// The 32-byte fixed prefix (also the whole SSLRequest).
    pub fn encode_prefix(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&self.capabilities.to_le_bytes());
        out.extend_from_slice(&self.max_packet.to_le_bytes());
        out.push(self.charset);
        out.extend_from_slice(&[0; 23]);
        out
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.encode_prefix();
        out.extend_from_slice(&self.user);
        out.push(0);
        if self.capabilities & caps::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            put_lenenc_bytes(&mut out, &self.auth_response);
        } else if self.capabilities & caps::SECURE_CONNECTION != 0 {
            out.push(self.auth_response.len().min(255) as u8);
            out.extend_from_slice(&self.auth_response[..self.auth_response.len().min(255)]);
        } else {
            out.extend_from_slice(&self.auth_response);
            out.push(0);
        }
        if self.capabilities & caps::CONNECT_WITH_DB != 0 {
            // Present (possibly empty) whenever the flag says so, or what follows shifts.
            out.extend_from_slice(self.database.as_deref().unwrap_or_default());
            out.push(0);
        }
        if let Some(plugin) = &self.auth_plugin {
            out.extend_from_slice(plugin);
            out.push(0);
        }
        if self.capabilities & caps::CONNECT_ATTRS != 0 {
            let mut attrs = Vec::new();
            for (k, v) in &self.attributes {
                put_lenenc_bytes(&mut attrs, k);
                put_lenenc_bytes(&mut attrs, v);
            }
            put_lenenc_int(&mut out, attrs.len() as u64);
            out.extend_from_slice(&attrs);
        }
        out
    }
}

/// AuthSwitchRequest: `0xFE`, plugin name, plugin data.
pub fn auth_switch_request(plugin: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + plugin.len() + data.len());
    out.push(AUTH_SWITCH_HEADER);
    out.extend_from_slice(plugin);
    out.push(0);
    out.extend_from_slice(data);
    out
}

/// Parses an AuthSwitchRequest into (plugin name, plugin data without a trailing NUL).
pub fn parse_auth_switch(payload: &[u8]) -> Result<(&[u8], &[u8]), ProtocolError> {
    let mut r = Reader::new(payload);
    if r.u8("auth switch header")? != AUTH_SWITCH_HEADER {
        return Err(ProtocolError::Malformed("not an auth switch request"));
    }
    let plugin = r.null_terminated("auth plugin")?;
    let data = r.rest();
    Ok((plugin, data.strip_suffix(&[0]).unwrap_or(data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Greeting captured from MariaDB 10.11.19 (scramble replaced by a fixed one).
    const MARIADB_GREETING: &[u8] = b"\x0a5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x05\x00\x00\x00\
ABCDEFGH\x00\xfe\xf7\x2d\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00\
IJKLMNOPQRST\x00mysql_native_password\x00";

    #[test]
    fn parses_a_mariadb_greeting() {
        let g = Greeting::parse(MARIADB_GREETING).unwrap();
        assert_eq!(g.server_version, b"5.5.5-10.11.19-MariaDB-0+deb12u1");
        assert_eq!(g.connection_id, 5);
        assert_eq!(g.scramble, b"ABCDEFGHIJKLMNOPQRST");
        assert_eq!(g.auth_plugin, b"mysql_native_password");
        assert_ne!(g.capabilities & caps::SESSION_TRACK, 0);
        assert_eq!(g.charset, 45);
    }

    #[test]
    fn greeting_round_trips() {
        let g = Greeting {
            server_version: b"8.0.36-sluice".to_vec(),
            connection_id: 42,
            scramble: b"01234567890123456789".to_vec(),
            capabilities: caps::PROTOCOL_41 | caps::SECURE_CONNECTION | caps::PLUGIN_AUTH,
            charset: 45,
            status: 2,
            auth_plugin: b"caching_sha2_password".to_vec(),
        };
        assert_eq!(Greeting::parse(&g.encode()).unwrap(), g);
    }

    #[test]
    fn handshake_response_round_trips_with_attributes() {
        let h = HandshakeResponse {
            capabilities: caps::PROTOCOL_41
                | caps::SECURE_CONNECTION
                | caps::PLUGIN_AUTH
                | caps::PLUGIN_AUTH_LENENC_CLIENT_DATA
                | caps::CONNECT_WITH_DB
                | caps::CONNECT_ATTRS,
            max_packet: 1 << 24,
            charset: 45,
            user: b"app".to_vec(),
            auth_response: vec![7; 20],
            database: Some(b"shop".to_vec()),
            auth_plugin: Some(b"mysql_native_password".to_vec()),
            attributes: vec![(b"_client_name".to_vec(), b"pymysql".to_vec())],
        };
        assert_eq!(HandshakeResponse::parse(&h.encode()).unwrap(), h);
        assert!(!HandshakeResponse::is_ssl_request(&h.encode()));
        let mut ssl = h.clone();
        ssl.capabilities |= caps::SSL;
        assert!(HandshakeResponse::is_ssl_request(&ssl.encode_prefix()));
    }

    #[test]
    fn truncated_handshake_responses_are_errors() {
        let h = HandshakeResponse {
            capabilities: caps::PROTOCOL_41 | caps::SECURE_CONNECTION | caps::CONNECT_ATTRS,
            user: b"app".to_vec(),
            auth_response: vec![1; 20],
            attributes: vec![(b"k".to_vec(), b"v".to_vec())],
            ..Default::default()
        };
        let wire = h.encode();
        for cut in 0..wire.len() - 1 {
            let _ = HandshakeResponse::parse(&wire[..cut]);
        }
        assert!(HandshakeResponse::parse(&wire[..40]).is_err());
    }

    #[test]
    fn empty_database_keeps_its_place_when_re_encoded() {
        // Found by the `handshake` fuzz target: CONNECT_WITH_DB with an empty name.
        let input = b"\x2a\x32\xfe\xff\xff\xff\xff\x11\x43\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x11\xf1\xd1\xf5\xfd\x00\x00\x00\x00\x00\x00\x45\x00\x22\x0a\x0a\x2a\x18\x00\xd7\x00\x00\x3d\x00\x00\x00\x01\x0a\x04\x04\x04\x04\x2f\x04\x04\xf7\x10\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x78\x00\x0b\xff\x00\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
        let h = HandshakeResponse::parse(input).unwrap();
        assert_eq!(HandshakeResponse::parse(&h.encode()).unwrap(), h);
    }

    #[test]
    fn auth_switch_round_trip() {
        let p = auth_switch_request(b"mysql_clear_password", b"");
        assert_eq!(
            parse_auth_switch(&p).unwrap(),
            (&b"mysql_clear_password"[..], &b""[..])
        );
    }
}

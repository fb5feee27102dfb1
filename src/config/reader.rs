//! `[reader]`: a second listener whose sessions read from the replicas, as an Aurora
//! reader endpoint or an RDS Proxy read-only endpoint does. Its clients log in as on
//! the main listener (same users, TLS and limits); their statements run on the
//! replicas among `backend.instances`.

use std::net::SocketAddr;

use serde::Deserialize;

use super::{ConfigError, Seconds};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaderConfig {
    /// Address reader clients connect to.
    pub listen: SocketAddr,
    /// Seconds a replica may be behind its source (its own `Seconds_Behind_Source`)
    /// and still get new work. A replica further behind, one whose replication is
    /// stopped, or one that cannot say, gets none until it is current again; its open
    /// sessions are not cut.
    #[serde(default = "default_max_replica_lag")]
    pub max_replica_lag: Seconds,
    /// With no replica fit to serve: `writer` (the default, as an Aurora reader
    /// endpoint with no replicas reaches the writer) runs reader sessions on the
    /// writer; `refuse` answers them with error 3032 instead.
    #[serde(default)]
    pub fallback: ReaderFallback,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReaderFallback {
    #[default]
    Writer,
    Refuse,
}

impl ReaderConfig {
    /// `instances`: how many the backend lists; `taken`: the other listeners.
    pub(super) fn validate(
        &self,
        instances: usize,
        taken: &[(&str, Option<SocketAddr>)],
    ) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError::Invalid(msg));
        if instances < 2 {
            return bad(
                "[reader] needs the replicas: list the writer and its replicas in \
                 backend.instances"
                    .into(),
            );
        }
        for (name, addr) in taken {
            if *addr == Some(self.listen) && self.listen.port() != 0 {
                return bad(format!(
                    "reader.listen {} is also {name}; give each listener its own address",
                    self.listen
                ));
            }
        }
        Ok(())
    }
}

fn default_max_replica_lag() -> Seconds {
    Seconds::from_secs(30)
}

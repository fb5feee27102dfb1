//! The backend as the database IAM's `rds` mode verifies tokens at: one login, then
//! quit, with nothing of a session set up.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::conn::BackendConn;
use super::Pool;
use crate::auth::iam::rds::{DatabaseLogin, LoginVerdict};
use crate::credentials::Login;

/// The server's "access denied".
const ACCESS_DENIED: u16 = 1045;

impl DatabaseLogin for Pool {
    /// The first configured instance: what clients sign for unless `iam.rds_endpoint`
    /// says otherwise.
    fn endpoint(&self) -> String {
        self.connector().target().address.clone()
    }

    fn login_timeout(&self) -> Duration {
        self.connector().target().connect_timeout
    }

    fn check<'a>(
        &'a self,
        login: &'a Login,
    ) -> Pin<Box<dyn Future<Output = LoginVerdict> + Send + 'a>> {
        Box::pin(async move {
            // At the writer (any instance would do; the first while there is none).
            let topology = self.connector().topology();
            let target = topology
                .writer()
                .map_or(self.connector().target(), |(t, _)| t);
            match BackendConn::check_login(target, login).await {
                Ok(()) => LoginVerdict::Accepted,
                Err(e) if e.server_code() == Some(ACCESS_DENIED) => LoginVerdict::Refused,
                Err(e) => LoginVerdict::Failed(e.to_string()),
            }
        })
    }
}

//! Users and passwords listed in the configuration.

use std::collections::HashMap;
use std::sync::Arc;

use super::Login;
use crate::config::UserConfig;

/// Looks up the login of a user by name.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    users: HashMap<Vec<u8>, Login>,
}

impl Credentials {
    pub fn from_config(users: &[UserConfig]) -> Self {
        let users = users
            .iter()
            .map(|u| {
                let login = Login {
                    user: Arc::from(u.name.as_str()),
                    password: Arc::from(u.password.as_bytes()),
                };
                (u.name.as_bytes().to_vec(), login)
            })
            .collect();
        Self { users }
    }

    pub fn get(&self, user: &[u8]) -> Option<&Login> {
        self.users.get(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_by_exact_name_and_hides_passwords() {
        let c = Credentials::from_config(&[UserConfig {
            name: "app".into(),
            password: "pw".into(),
        }]);
        let login = c.get(b"app").unwrap();
        assert_eq!(&*login.password, b"pw");
        assert!(c.get(b"App").is_none());
        assert!(!format!("{login:?}").contains("pw\""));
    }
}

//! Which server a backend is: Oracle MySQL or MariaDB, told by its greeting's version.
//!
//! The two speak the same protocol but differ where a proxy must imitate the server
//! exactly, e.g. which statements clear the previous statement's warnings.

/// The server family behind a backend connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// Oracle MySQL (RDS for MySQL, Aurora MySQL): the default until a greeting says
    /// otherwise.
    #[default]
    MySql,
    MariaDb,
}

impl Flavor {
    /// From a greeting's version string: MariaDB says so (`5.5.5-10.11.19-MariaDB…`).
    pub fn from_version(version: &[u8]) -> Self {
        if version
            .windows(7)
            .any(|w| w.eq_ignore_ascii_case(b"mariadb"))
        {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn told_by_the_version_string() {
        assert_eq!(
            Flavor::from_version(b"5.5.5-10.11.19-MariaDB-0+deb12u1"),
            Flavor::MariaDb
        );
        assert_eq!(Flavor::from_version(b"9.7.4-2"), Flavor::MySql);
        assert_eq!(
            Flavor::from_version(b"8.0.mysql_aurora.3.08.0"),
            Flavor::MySql
        );
        assert_eq!(Flavor::from_version(b"8.4.3"), Flavor::MySql);
    }
}

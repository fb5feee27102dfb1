//! DDL run outside Sluice (a migration connected straight to the database) changes what
//! a shared server statement refers to, and MySQL then fails an execute that a fresh
//! prepare would pass (3988 after a table is created again with other column types).
//! Both servers count DDL statements in global status counters, whoever runs them:
//! once statements have been prepared, the pool reads their sum each second through an
//! idle connection, and a change starts a new statement generation
//! (`MySqlConnector::schema_changed`), so later prepares of any text get fresh server
//! statements. DDL relayed by Sluice starts one at once; this catches the rest within
//! about a second (later, while no connection is idle).

use std::sync::Arc;

use super::Pool;

/// The DDL that can change a prepared statement's tables, views or routines.
const DDL_COUNTERS: &str = "SHOW GLOBAL STATUS WHERE Variable_name IN (\
'Com_alter_table', 'Com_create_table', 'Com_drop_table', 'Com_rename_table', \
'Com_create_index', 'Com_drop_index', 'Com_create_view', 'Com_drop_view', \
'Com_create_db', 'Com_drop_db', 'Com_alter_db', 'Com_create_trigger', 'Com_drop_trigger', \
'Com_create_function', 'Com_drop_function', 'Com_alter_function', \
'Com_create_procedure', 'Com_drop_procedure', 'Com_alter_procedure')";

impl Pool {
    /// One look at the DDL counters (see the module comment).
    pub(super) async fn watch_ddl(self: &Arc<Self>) {
        if self.metrics().statements_prepared.get() == 0 {
            return;
        }
        let Some(mut lease) = self.lend_idle() else {
            return;
        };
        let read = self.connector().target().connect_timeout;
        let rows = crate::clock::timeout(read, lease.conn().query(DDL_COUNTERS)).await;
        let rows = match rows {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) if e.server_code().is_some() => {
                // Not allowed to read them (a very limited user): nothing to learn.
                tracing::debug!(error = %e, "cannot read the server's DDL counters");
                lease.release_unused();
                return;
            }
            _ => {
                lease.close("error");
                return;
            }
        };
        let total: u64 = rows
            .iter()
            .filter_map(|row| {
                std::str::from_utf8(row.get(1)?.as_deref()?)
                    .ok()?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        if self.connector().ddl_total_changed(total) {
            tracing::debug!("DDL ran on the server: later prepares get fresh statements");
            self.connector().schema_changed();
        }
        // The look is not a use: the connection still expires when its clients stop.
        lease.release_unused();
    }
}

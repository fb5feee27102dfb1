//! Test harness: private MariaDB instances, an in-process Sluice, real clients.
// Tests run on their own runtimes, which have tokio's time driver; only Sluice's code
// must make its timers through `sluice::clock` (see clippy.toml).
#![allow(clippy::disallowed_methods)]
#![allow(dead_code, unused_imports)]

pub mod certs;
pub mod clients;
pub mod db;
pub mod failover_load;
pub mod fake_rds;
pub mod fake_sts;
pub mod metrics;
pub mod moto;
pub mod process;
pub mod proxy;
pub mod replication;
pub mod steady;
pub mod storm;

pub use db::{Flavor, TestDb};
pub use proxy::Proxy;

/// The menus table of the user story, as (id, name, price, image_prefix, takeout).
pub const MENUS: [(i32, &str, i32, &str, i32); 9] = [
    (1, "目玉焼き定食", 500, "menu_med", 0),
    (2, "唐揚げ定食", 750, "menu_kar", 0),
    (3, "カツ丼", 650, "menu_kat", 1),
    (4, "ラーメン", 600, "menu_ram", 1),
    (5, "チャーハン", 400, "menu_cha", 1),
    (6, "生姜焼き定食", 800, "menu_sho", 1),
    (7, "うどん", 300, "menu_udo", 1),
    (8, "牛丼", 380, "menu_gyu", 1),
    (9, "カレーライス", 450, "menu_cur", 1),
];

pub const APP_USER: &str = "app";
pub const APP_PASSWORD: &str = "app-password";

/// A derived table `seq` with one column `seq` holding 1..=`n` (n ≤ 100,000), in SQL both
/// servers run (MariaDB's `seq_1_to_N` tables are MariaDB's own; MySQL's recursive CTEs
/// stop at 1,000 rows by default).
pub fn numbers(n: u32) -> String {
    assert!(n <= 100_000);
    let digits = "(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 \
                  UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 \
                  UNION ALL SELECT 8 UNION ALL SELECT 9)";
    format!(
        "(SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 1 AS seq \
         FROM {digits} a, {digits} b, {digits} c, {digits} e, {digits} f \
         HAVING seq <= {n} ORDER BY seq) AS seq"
    )
}

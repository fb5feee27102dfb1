//! The SQL lexer, the statement classifier, and the reads Sluice answers itself; and the
//! replay statement built from tracked variable values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::multiplex::{classify, lexer, Variables};

fuzz_target!(|data: &[u8]| {
    let _ = lexer::tokens(data).count();
    let _ = classify::classify(data, true);
    let _ = classify::classify(data, false);
    let _ = classify::scope_read_query(data, true);
    let _ = classify::diagnostics_read(data, false);
    // Any tracked value, however odd, becomes one SET that the lexer reads as one
    // statement with no user variable (nothing in a value escapes its quotes).
    let mut wanted = Variables::default();
    wanted.record("sql_mode", data, &Variables::default());
    if let Some(sql) =
        Variables::replay(&wanted, &Variables::default(), &Variables::default(), true)
    {
        let class = classify::classify(sql.as_bytes(), true);
        assert_eq!(class.pin, None, "{sql}");
        assert_eq!(
            lexer::tokens(sql.as_bytes())
                .filter(|t| *t == lexer::Token::Punct(b';'))
                .count(),
            0,
            "{sql}"
        );
    }
});

//! A small SQL lexer: enough to find keywords, function names and variables while
//! skipping comments, string literals and quoted identifiers, as MySQL does.

/// One token. Words are returned as written; compare them case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    /// An unquoted keyword or identifier.
    Word(&'a [u8]),
    /// A `quoted` identifier.
    Quoted(&'a [u8]),
    /// A string literal (content not unescaped).
    Str,
    Number,
    /// `@name`, `@'name'`, `@"name"` or `` @`name` ``.
    UserVar,
    /// `@@name` or `@@scope.name`; the slice is the name after the last `.`.
    SysVar(&'a [u8]),
    Punct(u8),
}

pub struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    /// False under sql_mode NO_BACKSLASH_ESCAPES, where `\` is an ordinary character.
    backslash_escapes: bool,
}

pub fn tokens(sql: &[u8]) -> Lexer<'_> {
    tokens_with(sql, true)
}

/// Tokens of `sql` as the server reads it with or without backslash escapes in strings.
pub fn tokens_with(sql: &[u8], backslash_escapes: bool) -> Lexer<'_> {
    Lexer {
        s: sql,
        i: 0,
        backslash_escapes,
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl<'a> Lexer<'a> {
    fn peek(&self, k: usize) -> Option<u8> {
        self.s.get(self.i + k).copied()
    }

    /// Skips whitespace and comments. Executable comments (`/*! ... */`, `/*M! ... */`)
    /// are code: only their markers are skipped.
    fn skip_trivia(&mut self) {
        loop {
            match (self.peek(0), self.peek(1), self.peek(2)) {
                (Some(b), _, _) if b.is_ascii_whitespace() => self.i += 1,
                (Some(b'#'), _, _) => self.skip_line(),
                (Some(b'-'), Some(b'-'), c) if c.is_none_or(|c| c.is_ascii_whitespace()) => {
                    self.skip_line()
                }
                (Some(b'/'), Some(b'*'), Some(b'!')) => {
                    self.i += 3;
                    while self.peek(0).is_some_and(|b| b.is_ascii_digit()) {
                        self.i += 1;
                    }
                }
                (Some(b'/'), Some(b'*'), Some(b'M')) if self.peek(3) == Some(b'!') => {
                    self.i += 4;
                    while self.peek(0).is_some_and(|b| b.is_ascii_digit()) {
                        self.i += 1;
                    }
                }
                (Some(b'/'), Some(b'*'), _) => {
                    self.i += 2;
                    while self.i < self.s.len()
                        && !(self.peek(0) == Some(b'*') && self.peek(1) == Some(b'/'))
                    {
                        self.i += 1;
                    }
                    self.i = (self.i + 2).min(self.s.len());
                }
                // The end of an executable comment.
                (Some(b'*'), Some(b'/'), _) => self.i += 2,
                _ => return,
            }
        }
    }

    fn skip_line(&mut self) {
        while self.peek(0).is_some_and(|b| b != b'\n') {
            self.i += 1;
        }
    }

    /// Skips a quoted run starting at the opening quote; returns its content.
    fn quoted(&mut self, q: u8) -> &'a [u8] {
        let start = self.i + 1;
        self.i += 1;
        while let Some(b) = self.peek(0) {
            if b == b'\\' && q != b'`' && self.backslash_escapes {
                self.i += 2;
            } else if b == q {
                if self.peek(1) == Some(q) {
                    self.i += 2;
                } else {
                    let content = &self.s[start..self.i];
                    self.i += 1;
                    return content;
                }
            } else {
                self.i += 1;
            }
        }
        self.i = self.s.len();
        &self.s[start.min(self.s.len())..]
    }

    fn word(&mut self) -> &'a [u8] {
        let start = self.i;
        while self.peek(0).is_some_and(is_word_byte) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        self.skip_trivia();
        let b = self.peek(0)?;
        Some(match b {
            b'\'' | b'"' => {
                self.quoted(b);
                Token::Str
            }
            b'`' => Token::Quoted(self.quoted(b'`')),
            b'@' if self.peek(1) == Some(b'@') => {
                self.i += 2;
                let mut name = self.word();
                while self.peek(0) == Some(b'.') {
                    self.i += 1;
                    name = if self.peek(0) == Some(b'`') {
                        self.quoted(b'`')
                    } else {
                        self.word()
                    };
                }
                Token::SysVar(name)
            }
            b'@' => {
                self.i += 1;
                match self.peek(0) {
                    Some(q @ (b'\'' | b'"' | b'`')) => {
                        self.quoted(q);
                    }
                    _ => {
                        self.word();
                    }
                }
                Token::UserVar
            }
            b'0'..=b'9' => {
                while self
                    .peek(0)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.')
                {
                    self.i += 1;
                }
                Token::Number
            }
            _ if is_word_byte(b) => Token::Word(self.word()),
            _ => {
                self.i += 1;
                Token::Punct(b)
            }
        })
    }
}

/// Case-insensitive keyword comparison.
pub fn is(tok: &Token<'_>, kw: &str) -> bool {
    matches!(tok, Token::Word(w) if w.eq_ignore_ascii_case(kw.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(sql: &str) -> Vec<String> {
        tokens(sql.as_bytes())
            .filter_map(|t| match t {
                Token::Word(w) => Some(String::from_utf8_lossy(w).to_uppercase()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn skips_comments_and_strings() {
        assert_eq!(
            words("/* GET_LOCK */ select -- get_lock\n 'get_lock(' , `get_lock` # x\n from t"),
            ["SELECT", "FROM", "T"]
        );
        assert_eq!(
            words("SELECT 'it''s', \"a\\\"b\" FROM t"),
            ["SELECT", "FROM", "T"]
        );
    }

    #[test]
    fn executable_comments_are_code() {
        assert_eq!(
            words("/*!40101 SET NAMES utf8 */"),
            ["SET", "NAMES", "UTF8"]
        );
        assert_eq!(
            words("/*M!100000 LOCK TABLES t READ */"),
            ["LOCK", "TABLES", "T", "READ"]
        );
    }

    #[test]
    fn variables() {
        let t: Vec<_> = tokens(b"SET @x := 1, @@session.sql_mode = '', @`y`=2").collect();
        assert!(t.contains(&Token::UserVar));
        assert!(t.contains(&Token::SysVar(b"sql_mode")));
        assert_eq!(t.iter().filter(|t| **t == Token::UserVar).count(), 2);
    }

    #[test]
    fn backslash_is_plain_under_no_backslash_escapes() {
        let sql = br"SELECT 'a\', GET_LOCK('x', 1), 'b'";
        let with: Vec<_> = tokens_with(sql, true).collect();
        let without: Vec<_> = tokens_with(sql, false).collect();
        assert!(!with.contains(&Token::Word(b"GET_LOCK")));
        assert!(without.contains(&Token::Word(b"GET_LOCK")));
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        for sql in ["'abc", "`abc", "/* abc", "@", "@@", "@'", "--", "/*!", "\\"] {
            let _ = tokens(sql.as_bytes()).count();
        }
    }
}

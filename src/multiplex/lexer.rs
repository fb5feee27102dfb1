//! A small SQL lexer: enough to find keywords, function names and variables while
//! skipping comments, string literals and quoted identifiers, as MySQL does.

/// The words Sluice looks for in a statement, recognised once by the lexer so that
/// every later question is an enum comparison, not a case-insensitive string one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kw {
    /// Any other word.
    Other,
    Alter,
    As,
    Begin,
    Call,
    Count,
    Create,
    Current,
    Deallocate,
    Diagnostics,
    Drop,
    Dual,
    Errors,
    Execute,
    Export,
    Flush,
    For,
    FoundRows,
    From,
    Get,
    GetLock,
    Handler,
    Into,
    Join,
    Kill,
    LastInsertId,
    Lock,
    Prepare,
    Read,
    ReleaseLock,
    Rename,
    Returning,
    RowCount,
    Select,
    Set,
    Show,
    SqlCalcFoundRows,
    Table,
    Temporary,
    Transaction,
    Truncate,
    Union,
    Update,
    Warnings,
    Xa,
}

/// Every keyword, by length (then alphabetically; a test checks), so that the few of a
/// word's length are a short run.
const KEYWORDS: [(&[u8], Kw); 44] = [
    (b"AS", Kw::As),
    (b"XA", Kw::Xa),
    (b"FOR", Kw::For),
    (b"GET", Kw::Get),
    (b"SET", Kw::Set),
    (b"CALL", Kw::Call),
    (b"DROP", Kw::Drop),
    (b"DUAL", Kw::Dual),
    (b"FROM", Kw::From),
    (b"INTO", Kw::Into),
    (b"JOIN", Kw::Join),
    (b"KILL", Kw::Kill),
    (b"LOCK", Kw::Lock),
    (b"READ", Kw::Read),
    (b"SHOW", Kw::Show),
    (b"ALTER", Kw::Alter),
    (b"BEGIN", Kw::Begin),
    (b"COUNT", Kw::Count),
    (b"FLUSH", Kw::Flush),
    (b"TABLE", Kw::Table),
    (b"UNION", Kw::Union),
    (b"CREATE", Kw::Create),
    (b"ERRORS", Kw::Errors),
    (b"EXPORT", Kw::Export),
    (b"RENAME", Kw::Rename),
    (b"SELECT", Kw::Select),
    (b"UPDATE", Kw::Update),
    (b"CURRENT", Kw::Current),
    (b"EXECUTE", Kw::Execute),
    (b"HANDLER", Kw::Handler),
    (b"PREPARE", Kw::Prepare),
    (b"GET_LOCK", Kw::GetLock),
    (b"TRUNCATE", Kw::Truncate),
    (b"WARNINGS", Kw::Warnings),
    (b"RETURNING", Kw::Returning),
    (b"ROW_COUNT", Kw::RowCount),
    (b"TEMPORARY", Kw::Temporary),
    (b"DEALLOCATE", Kw::Deallocate),
    (b"FOUND_ROWS", Kw::FoundRows),
    (b"DIAGNOSTICS", Kw::Diagnostics),
    (b"TRANSACTION", Kw::Transaction),
    (b"RELEASE_LOCK", Kw::ReleaseLock),
    (b"LAST_INSERT_ID", Kw::LastInsertId),
    (b"SQL_CALC_FOUND_ROWS", Kw::SqlCalcFoundRows),
];

/// The longest keyword is SQL_CALC_FOUND_ROWS (19 bytes).
const LONGEST: usize = 19;

/// For each length: the first letters keywords of that length start with (bit 0 for
/// A), and where they are in `KEYWORDS`. Most words of a statement (column and table
/// names) are told apart by the first alone, with no comparison at all.
const BY_LENGTH: [(u32, u8, u8); LONGEST + 1] = {
    let mut table = [(0u32, 0u8, 0u8); LONGEST + 1];
    let mut i = 0;
    while i < KEYWORDS.len() {
        let word = KEYWORDS[i].0;
        let entry = &mut table[word.len()];
        if entry.0 == 0 {
            entry.1 = i as u8;
        }
        entry.0 |= 1 << (word[0] - b'A');
        entry.2 = i as u8 + 1;
        i += 1;
    }
    table
};

impl Kw {
    /// The keyword `word` is, compared case-insensitively.
    fn of(word: &[u8]) -> Self {
        let Some(&first) = word.first() else {
            return Self::Other;
        };
        let first = first.to_ascii_uppercase();
        let letter = first.wrapping_sub(b'A');
        let (letters, from, to) = BY_LENGTH.get(word.len()).copied().unwrap_or_default();
        if letter >= 26 || letters & (1 << letter) == 0 {
            return Self::Other;
        }
        KEYWORDS[usize::from(from)..usize::from(to)]
            .iter()
            .find(|(k, _)| k[0] == first && k[1..].eq_ignore_ascii_case(&word[1..]))
            .map_or(Self::Other, |&(_, kw)| kw)
    }
}

/// One token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    /// An unquoted keyword or identifier, as written, and the keyword it is.
    Word(&'a [u8], Kw),
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

impl Token<'_> {
    /// Whether this is the keyword `kw`.
    #[inline]
    pub fn is(&self, kw: Kw) -> bool {
        matches!(self, Token::Word(_, k) if *k == kw)
    }
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

/// What a byte starts, for the lexer's one table look-up per token (and per byte of
/// whitespace): most of a statement is words and single spaces, and a table sends each
/// to its case without a chain of comparisons.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Starts {
    /// ASCII whitespace.
    Space,
    /// A letter, `_`, `$` or any non-ASCII byte: an unquoted word.
    Word,
    Digit,
    /// `'` or `"`.
    Quote,
    Backtick,
    At,
    /// `#`, `-`, `/` or `*`: a comment or a comment's end, or else punctuation.
    MaybeTrivia,
    Punct,
}

const STARTS: [Starts; 256] = {
    let mut table = [Starts::Punct; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = match c {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => Starts::Space,
            b'0'..=b'9' => Starts::Digit,
            b'\'' | b'"' => Starts::Quote,
            b'`' => Starts::Backtick,
            b'@' => Starts::At,
            b'#' | b'-' | b'/' | b'*' => Starts::MaybeTrivia,
            _ if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80 => Starts::Word,
            _ => Starts::Punct,
        };
        b += 1;
    }
    table
};

/// Bytes of unquoted words: ASCII letters, digits, `_`, `$` and every non-ASCII byte
/// (identifiers may hold any UTF-8 letter). A table, because the lexer asks this of
/// nearly every byte of every statement.
const WORD_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
        b += 1;
    }
    table
};

fn is_word_byte(b: u8) -> bool {
    WORD_BYTES[usize::from(b)]
}

/// Where the run of word bytes from `from` ends.
#[inline]
fn word_end(s: &[u8], from: usize) -> usize {
    let rest = s.get(from..).unwrap_or_default();
    from + rest
        .iter()
        .position(|&b| !is_word_byte(b))
        .unwrap_or(rest.len())
}

impl<'a> Lexer<'a> {
    #[inline]
    fn peek(&self, k: usize) -> Option<u8> {
        self.s.get(self.i + k).copied()
    }

    /// At `#`, `-`, `/` or `*`: skips the comment (or the end of an executable comment)
    /// that starts here and says so, or says it is punctuation. Executable comments
    /// (`/*! ... */`, `/*M! ... */`) are code: only their markers are skipped.
    fn skipped_trivia(&mut self, b: u8) -> bool {
        match b {
            b'#' => self.skip_line(),
            b'-' if self.peek(1) == Some(b'-')
                && self.peek(2).is_none_or(|c| c.is_ascii_whitespace()) =>
            {
                self.skip_line()
            }
            b'/' if self.peek(1) == Some(b'*') => self.skip_comment(),
            // The end of an executable comment.
            b'*' if self.peek(1) == Some(b'/') => self.i += 2,
            _ => return false,
        }
        true
    }

    /// At `/*`: skips a comment, or only the marker of an executable one.
    fn skip_comment(&mut self) {
        let marker = match (self.peek(2), self.peek(3)) {
            (Some(b'!'), _) => 3,
            (Some(b'M'), Some(b'!')) => 4,
            _ => 0,
        };
        if marker > 0 {
            self.i += marker;
            while self.peek(0).is_some_and(|b| b.is_ascii_digit()) {
                self.i += 1;
            }
            return;
        }
        self.i += 2;
        while self.i < self.s.len() && !(self.peek(0) == Some(b'*') && self.peek(1) == Some(b'/')) {
            self.i += 1;
        }
        self.i = (self.i + 2).min(self.s.len());
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

    #[inline]
    fn word(&mut self) -> &'a [u8] {
        let start = self.i;
        self.i = word_end(self.s, start);
        &self.s[start..self.i]
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        loop {
            let b = self.peek(0)?;
            return Some(match STARTS[usize::from(b)] {
                Starts::Space => {
                    self.i += 1;
                    continue;
                }
                Starts::Word => {
                    let start = self.i;
                    self.i = word_end(self.s, start + 1);
                    let word = &self.s[start..self.i];
                    Token::Word(word, Kw::of(word))
                }
                Starts::Digit => {
                    let rest = self.s.get(self.i + 1..).unwrap_or_default();
                    let len = rest
                        .iter()
                        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'.'))
                        .unwrap_or(rest.len());
                    self.i += 1 + len;
                    Token::Number
                }
                Starts::Quote => {
                    self.quoted(b);
                    Token::Str
                }
                Starts::Backtick => Token::Quoted(self.quoted(b'`')),
                Starts::At => self.variable(),
                Starts::MaybeTrivia if self.skipped_trivia(b) => continue,
                Starts::MaybeTrivia | Starts::Punct => {
                    self.i += 1;
                    Token::Punct(b)
                }
            });
        }
    }
}

impl<'a> Lexer<'a> {
    /// At `@`: a system variable (`@@name`, `@@scope.name`) or a user variable.
    fn variable(&mut self) -> Token<'a> {
        if self.peek(1) == Some(b'@') {
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
            return Token::SysVar(name);
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keyword_is_recognised_in_any_case_and_nothing_else_is() {
        let order = |w: &[u8]| (w.len(), w.to_vec());
        assert!(
            KEYWORDS.windows(2).all(|w| order(w[0].0) < order(w[1].0)),
            "by length, sorted, none twice"
        );
        for (word, kw) in KEYWORDS {
            assert_eq!(Kw::of(word), kw);
            assert_eq!(Kw::of(&word.to_ascii_lowercase()), kw);
            let mut mixed = word.to_vec();
            mixed[0] = mixed[0].to_ascii_lowercase();
            assert_eq!(Kw::of(&mixed), kw);
            // One byte more or less, or one changed, is another word.
            assert_eq!(Kw::of(&word[..word.len() - 1]), Kw::Other, "{word:?}");
            assert_eq!(Kw::of(&[word, b"S"].concat()), Kw::Other, "{word:?}");
            let mut changed = word.to_vec();
            *changed.last_mut().unwrap() = b'9';
            assert_eq!(Kw::of(&changed), Kw::Other);
        }
        for other in [
            &b""[..],
            b"a",
            b"name",
            b"menus",
            b"WHERE",
            b"_x",
            b"\xc3\xa9t\xc3\xa9",
        ] {
            assert_eq!(Kw::of(other), Kw::Other, "{other:?}");
        }
        assert_eq!(Kw::of(&[b'A'; 40]), Kw::Other);
    }

    fn words(sql: &str) -> Vec<String> {
        tokens(sql.as_bytes())
            .filter_map(|t| match t {
                Token::Word(w, _) => Some(String::from_utf8_lossy(w).to_uppercase()),
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
    fn keywords_are_recognised_in_any_case_and_nothing_else_is() {
        let kws: Vec<_> = tokens(b"select Sql_Calc_Found_Rows x, get_lock(1) FROM selected")
            .filter_map(|t| match t {
                Token::Word(_, kw) => Some(kw),
                _ => None,
            })
            .collect();
        assert_eq!(
            kws,
            [
                Kw::Select,
                Kw::SqlCalcFoundRows,
                Kw::Other,
                Kw::GetLock,
                Kw::From,
                Kw::Other
            ]
        );
        for other in ["S", "SQL_CALC_FOUND_ROWS_", "SELECTS", "FRO", "ÉSELECT"] {
            assert_eq!(Kw::of(other.as_bytes()), Kw::Other, "{other}");
        }
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
        assert!(!with.iter().any(|t| t.is(Kw::GetLock)));
        assert!(without.iter().any(|t| t.is(Kw::GetLock)));
    }

    #[test]
    fn comment_markers_that_start_no_comment_are_punctuation() {
        let t: Vec<_> = tokens(b"a--b - -- c\n2.5e3/x*y */ # z\n$v@@x").collect();
        assert_eq!(
            t,
            [
                Token::Word(b"a", Kw::Other),
                Token::Punct(b'-'),
                Token::Punct(b'-'),
                Token::Word(b"b", Kw::Other),
                Token::Punct(b'-'),
                Token::Number,
                Token::Punct(b'/'),
                Token::Word(b"x", Kw::Other),
                Token::Punct(b'*'),
                Token::Word(b"y", Kw::Other),
                Token::Word(b"$v", Kw::Other),
                Token::SysVar(b"x"),
            ]
        );
        assert_eq!(tokens(b"x --").count(), 1);
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        for sql in ["'abc", "`abc", "/* abc", "@", "@@", "@'", "--", "/*!", "\\"] {
            let _ = tokens(sql.as_bytes()).count();
        }
    }
}

//! Tokens of bash: words (with their quotes and expansions, however many lines they span),
//! operators, redirections with their targets, newlines with the here-documents they start.
//!
//! The lexer does not interpret words; it only finds where each ends. A command substitution
//! `$( ... )` or process substitution `<( ... )` holds a whole command list, so its end is found
//! by running a nested [`Grammar`] over it (a `case` pattern's `)` does not close it).

use super::grammar::{Flow, Grammar};
use super::SplitError;

/// A token: its kind and its byte range in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Token {
    pub(super) kind: Kind,
    pub(super) start: usize,
    pub(super) end: usize,
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A word; `plain` when it has no quotes, escapes or expansions (so it may be a keyword).
    Word { plain: bool },
    /// An operator.
    Op(Op),
    /// A redirection with its target word (e.g. `2>&1`, `> out.tif`, `<<EOF`).
    Redirect,
    /// An arithmetic command `(( ... ))`.
    Arith,
    /// A newline; `body_end` is where the here-document bodies it introduced end.
    Newline { body_end: Option<usize> },
    /// The end of the text.
    Eof,
}

/// Control operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// `&&`
    And,
    /// `||`
    Or,
    /// `|` or `|&`
    Pipe,
    /// `;`
    Semi,
    /// `;;`, `;&` or `;;&`
    CaseEnd,
    /// `&`
    Amp,
    /// `(`
    LParen,
    /// `)`
    RParen,
}

/// A here-document whose body starts after the next newline.
#[derive(Debug)]
struct Heredoc {
    delimiter: String,
    strip_tabs: bool,
    line: usize,
}

/// The lexer: a position in the source and the here-documents waiting for their bodies.
#[derive(Debug)]
pub(super) struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    newlines: Vec<usize>,
    pending: Vec<Heredoc>,
    /// Whether the text ended right after a backslash (a line continuation with nothing after).
    pub(super) dangling: bool,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        let newlines = src.match_indices('\n').map(|(i, _)| i).collect();
        Lexer {
            src,
            b: src.as_bytes(),
            pos: 0,
            newlines,
            pending: Vec::new(),
            dangling: false,
        }
    }

    /// The 1-based line holding byte `pos`.
    pub(super) fn line_of(&self, pos: usize) -> usize {
        self.newlines.partition_point(|&n| n < pos) + 1
    }

    /// The source text of a token.
    pub(super) fn text(&self, token: &Token) -> &'a str {
        self.slice(token.start, token.end)
    }

    /// The source text between two token boundaries.
    pub(super) fn slice(&self, start: usize, end: usize) -> &'a str {
        &self.src[start..end]
    }

    fn peek(&self, ahead: usize) -> u8 {
        self.b.get(self.pos + ahead).copied().unwrap_or(0)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }

    /// Steps over a backslash and the character it escapes.
    fn skip_escape(&mut self) {
        self.pos = (self.pos + 2).min(self.b.len());
    }

    /// The next token.
    pub(super) fn next(&mut self) -> Result<Token, SplitError> {
        self.skip_blanks();
        let start = self.pos;
        let kind = match self.peek(0) {
            _ if self.at_end() => self.end()?,
            b'\n' => {
                self.pos += 1;
                let body_end = self.read_heredocs()?;
                Kind::Newline { body_end }
            }
            b'(' if self.peek(1) == b'(' && self.arith_command()? => Kind::Arith,
            b'&' if self.peek(1) == b'>' => self.redirect(start)?,
            b'(' | b')' | b';' | b'&' | b'|' => self.operator(),
            b'<' | b'>' if self.peek(1) != b'(' => self.redirect(start)?,
            _ => {
                let plain = self.word()?;
                let digits = self.src[start..self.pos]
                    .bytes()
                    .all(|c| c.is_ascii_digit());
                let io_number = plain && digits && matches!(self.peek(0), b'<' | b'>');
                if io_number && self.peek(1) != b'(' {
                    self.redirect(start)?
                } else {
                    Kind::Word { plain }
                }
            }
        };
        Ok(Token {
            kind,
            start,
            end: self.pos,
        })
    }

    /// At the end of the text: an error if a here-document is still waiting for its body.
    fn end(&mut self) -> Result<Kind, SplitError> {
        match self.pending.first() {
            Some(h) => Err(SplitError::UnterminatedHeredoc {
                delimiter: h.delimiter.clone(),
                line: h.line,
            }),
            None => Ok(Kind::Eof),
        }
    }

    /// Skips blanks, line continuations and comments (a `#` starting a word).
    fn skip_blanks(&mut self) {
        loop {
            match self.peek(0) {
                b' ' | b'\t' => self.pos += 1,
                b'\\' if self.peek(1) == b'\n' => {
                    self.pos += 2;
                    self.dangling = self.at_end();
                }
                b'#' => {
                    let rest = &self.src[self.pos..];
                    self.pos += rest.find('\n').unwrap_or(rest.len());
                }
                _ => return,
            }
        }
    }

    /// A control operator (longest match).
    fn operator(&mut self) -> Kind {
        let (op, len) = match (self.peek(0), self.peek(1), self.peek(2)) {
            (b'&', b'&', _) => (Op::And, 2),
            (b'|', b'|', _) => (Op::Or, 2),
            (b'|', b'&', _) => (Op::Pipe, 2),
            (b'|', _, _) => (Op::Pipe, 1),
            (b';', b';', b'&') => (Op::CaseEnd, 3),
            (b';', b';' | b'&', _) => (Op::CaseEnd, 2),
            (b';', _, _) => (Op::Semi, 1),
            (b'(', _, _) => (Op::LParen, 1),
            (b')', _, _) => (Op::RParen, 1),
            _ => (Op::Amp, 1),
        };
        self.pos += len;
        Kind::Op(op)
    }

    /// A redirection starting at `start` (after any io number), with its target word.
    fn redirect(&mut self, start: usize) -> Result<Kind, SplitError> {
        const OPERATORS: [&str; 12] = [
            "&>>", "&>", "<<<", "<<-", "<<", "<>", "<&", "<", ">>", ">&", ">|", ">",
        ];
        let rest = &self.src[self.pos..];
        let op = OPERATORS.iter().find(|o| rest.starts_with(**o)).copied();
        self.pos += op.map_or(1, str::len);
        self.skip_blanks();
        let target = self.pos;
        let no_target = match self.peek(0) {
            b'\n' | b';' | b'&' | b'|' | b'(' | b')' => true,
            // `> >(gzip)`: a process substitution is a fine target.
            b'<' | b'>' => self.peek(1) != b'(',
            _ => self.at_end(),
        };
        if no_target {
            let line = self.line_of(start);
            return Err(SplitError::MissingRedirectTarget { line });
        }
        self.word()?;
        if let Some(op @ ("<<" | "<<-")) = op {
            self.pending.push(Heredoc {
                delimiter: unquote(&self.src[target..self.pos]),
                strip_tabs: op == "<<-",
                line: self.line_of(start),
            });
        }
        Ok(Kind::Redirect)
    }

    /// After a newline: reads the bodies of pending here-documents; returns where they end.
    fn read_heredocs(&mut self) -> Result<Option<usize>, SplitError> {
        let mut body_end = None;
        for doc in std::mem::take(&mut self.pending) {
            loop {
                if self.at_end() {
                    return Err(SplitError::UnterminatedHeredoc {
                        delimiter: doc.delimiter,
                        line: doc.line,
                    });
                }
                let rest = &self.src[self.pos..];
                let len = rest.find('\n').unwrap_or(rest.len());
                let mut line = &rest[..len];
                if doc.strip_tabs {
                    line = line.trim_start_matches('\t');
                }
                body_end = Some(self.pos + len);
                self.pos = (self.pos + len + 1).min(self.b.len());
                if line == doc.delimiter {
                    break;
                }
            }
        }
        Ok(body_end)
    }

    /// Scans a word; returns whether it is plain (no quoting, escapes or expansions).
    fn word(&mut self) -> Result<bool, SplitError> {
        let start = self.pos;
        let mut plain = true;
        while !self.at_end() {
            match self.peek(0) {
                b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b')' => break,
                b'<' | b'>' if self.pos == start && self.peek(1) == b'(' => {
                    let line = self.line_of(self.pos);
                    self.pos += 2;
                    self.nested_list("<(", line)?;
                    plain = false;
                }
                b'<' | b'>' => break,
                b'(' if self.opens_group(start) => {
                    self.pos += 1;
                    self.paren_group()?;
                    plain = false;
                }
                b'(' => break,
                _ => {
                    if self.quoted_part()? {
                        plain = false;
                    } else {
                        self.pos += 1;
                    }
                }
            }
        }
        Ok(plain)
    }

    /// Whether a `(` at the current position continues the word begun at `start`: an array
    /// assignment `name=(...)` or `name+=(...)`, or an extended glob like `@(a|b)`.
    fn opens_group(&self, start: usize) -> bool {
        let before = &self.src[start..self.pos];
        if let Some(name) = before.strip_suffix('=') {
            let name = name.strip_suffix('+').unwrap_or(name);
            let mut chars = name.chars();
            return chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        }
        before.ends_with(['@', '!', '+', '*', '?'])
    }

    /// Scans a quoted or expanded part of a word at the current position, if there is one.
    fn quoted_part(&mut self) -> Result<bool, SplitError> {
        let line = self.line_of(self.pos);
        match (self.peek(0), self.peek(1)) {
            (b'\\', _) => {
                self.pos = (self.pos + 2).min(self.b.len());
                self.dangling = self.at_end();
            }
            (b'\'', _) => self.single_quoted(line)?,
            (b'"', _) => self.double_quoted(line)?,
            (b'`', _) => self.backquoted(line)?,
            (b'$', b'\'') => {
                self.pos += 1;
                self.ansi_quoted(line)?;
            }
            (b'$', b'"') => {
                self.pos += 1;
                self.double_quoted(line)?;
            }
            (b'$', b'(' | b'{') => self.expansion(line)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `$(...)`, `$((...))` or `${...}` at the current position.
    fn expansion(&mut self, line: usize) -> Result<(), SplitError> {
        if self.peek(1) == b'{' {
            self.pos += 2;
            return self.parameter(line);
        }
        self.pos += 1;
        if self.peek(1) == b'(' && self.arith_command()? {
            return Ok(());
        }
        self.pos += 1;
        self.nested_list("$(", line)
    }

    /// `'...'`: nothing is special inside.
    fn single_quoted(&mut self, line: usize) -> Result<(), SplitError> {
        match self.src[self.pos + 1..].find('\'') {
            Some(i) => {
                self.pos += i + 2;
                Ok(())
            }
            None => Err(SplitError::UnterminatedQuote { quote: '\'', line }),
        }
    }

    /// `$'...'`: backslash escapes, including `\'`.
    fn ansi_quoted(&mut self, line: usize) -> Result<(), SplitError> {
        self.pos += 1;
        while !self.at_end() {
            match self.peek(0) {
                b'\\' => self.skip_escape(),
                b'\'' => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => self.pos += 1,
            }
        }
        Err(SplitError::UnterminatedQuote { quote: '\'', line })
    }

    /// `"..."`: backslash escapes and `$`/backquote expansions.
    fn double_quoted(&mut self, line: usize) -> Result<(), SplitError> {
        self.pos += 1;
        while !self.at_end() {
            match (self.peek(0), self.peek(1)) {
                (b'"', _) => {
                    self.pos += 1;
                    return Ok(());
                }
                (b'\\', _) => self.skip_escape(),
                (b'`', _) => self.backquoted(self.line_of(self.pos))?,
                (b'$', b'(' | b'{') => self.expansion(self.line_of(self.pos))?,
                _ => self.pos += 1,
            }
        }
        Err(SplitError::UnterminatedQuote { quote: '"', line })
    }

    /// `` `...` ``: an old-style command substitution, ended by an unescaped backquote.
    fn backquoted(&mut self, line: usize) -> Result<(), SplitError> {
        self.pos += 1;
        while !self.at_end() {
            match self.peek(0) {
                b'\\' => self.skip_escape(),
                b'`' => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => self.pos += 1,
            }
        }
        Err(SplitError::UnterminatedQuote { quote: '`', line })
    }

    /// The rest of `${...}` (after the brace), which may nest quotes and expansions.
    fn parameter(&mut self, line: usize) -> Result<(), SplitError> {
        while !self.at_end() {
            if self.peek(0) == b'}' {
                self.pos += 1;
                return Ok(());
            }
            if !self.quoted_part()? {
                self.pos += 1;
            }
        }
        let construct = "${";
        Err(SplitError::Unclosed { construct, line })
    }

    /// The rest of a parenthesized word part (after its `(`), up to the matching `)`.
    fn paren_group(&mut self) -> Result<(), SplitError> {
        let line = self.line_of(self.pos);
        let mut depth = 1;
        while !self.at_end() {
            match self.peek(0) {
                b'(' => depth += 1,
                b')' if depth == 1 => {
                    self.pos += 1;
                    return Ok(());
                }
                b')' => depth -= 1,
                _ if self.quoted_part()? => continue,
                _ => {}
            }
            self.pos += 1;
        }
        let construct = "(";
        Err(SplitError::Unclosed { construct, line })
    }

    /// At `((`: scans an arithmetic expression up to the matching `))` and returns true; when
    /// the parentheses do not pair up that way (as in `((cd a); b)`), stays put, returns false.
    fn arith_command(&mut self) -> Result<bool, SplitError> {
        let (start, pending) = (self.pos, self.pending.len());
        self.pos += 2;
        let mut depth = 0;
        while !self.at_end() {
            match self.peek(0) {
                b'(' => depth += 1,
                b')' if depth > 0 => depth -= 1,
                b')' if self.peek(1) == b')' => {
                    self.pos += 2;
                    return Ok(true);
                }
                b')' => break,
                _ if self.quoted_part()? => continue,
                _ => {}
            }
            self.pos += 1;
        }
        self.pos = start;
        self.pending.truncate(pending);
        Ok(false)
    }

    /// A command list nested in a word (after `$(` or `<(`), up to its closing `)`.
    fn nested_list(&mut self, construct: &'static str, line: usize) -> Result<(), SplitError> {
        let mut grammar = Grammar::new(true);
        loop {
            let token = self.next()?;
            if token.kind == Kind::Eof {
                return Err(SplitError::Unclosed { construct, line });
            }
            let line = self.line_of(token.start);
            if grammar.feed(&token, self.text(&token), line)? == Flow::Closed {
                return Ok(());
            }
        }
    }
}

/// A here-document delimiter with its quoting removed (`'EOF'`, `"EOF"`, `\EOF` → `EOF`).
fn unquote(word: &str) -> String {
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {}
            '\\' => out.extend(chars.next()),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(Kind, &str)> {
        let mut lexer = Lexer::new(src);
        let mut out = Vec::new();
        loop {
            let t = lexer.next().unwrap();
            if t.kind == Kind::Eof {
                return out;
            }
            out.push((t.kind, lexer.text(&t)));
        }
    }

    const W: Kind = Kind::Word { plain: true };
    const Q: Kind = Kind::Word { plain: false };

    #[test]
    fn words_operators_and_redirections() {
        assert_eq!(
            kinds("a 'b c'>out 2>&1|& d;;&e&&f || g &>log # c"),
            vec![
                (W, "a"),
                (Q, "'b c'"),
                (Kind::Redirect, ">out"),
                (Kind::Redirect, "2>&1"),
                (Kind::Op(Op::Pipe), "|&"),
                (W, "d"),
                (Kind::Op(Op::CaseEnd), ";;&"),
                (W, "e"),
                (Kind::Op(Op::And), "&&"),
                (W, "f"),
                (Kind::Op(Op::Or), "||"),
                (W, "g"),
                (Kind::Redirect, "&>log"),
            ]
        );
    }

    #[test]
    fn words_spanning_lines() {
        let src = "x=\"a\nb\" $(echo\n) `c\n` ${x:-'}'} a=(1\n2) $((1+(2)))\n";
        assert_eq!(
            kinds(src),
            vec![
                (Q, "x=\"a\nb\""),
                (Q, "$(echo\n)"),
                (Q, "`c\n`"),
                (Q, "${x:-'}'}"),
                (Q, "a=(1\n2)"),
                (Q, "$((1+(2)))"),
                (Kind::Newline { body_end: None }, "\n"),
            ]
        );
    }

    #[test]
    fn heredoc_bodies_follow_the_newline() {
        let src = "cat <<EOF <<-'E2'; x\nbody\nEOF\n\tmore\n\tE2\nnext";
        let mut lexer = Lexer::new(src);
        let mut seen = Vec::new();
        loop {
            let t = lexer.next().unwrap();
            if t.kind == Kind::Eof {
                break;
            }
            seen.push(lexer.text(&t).to_owned());
            if let Kind::Newline { body_end } = t.kind {
                assert_eq!(body_end, Some(src.find("\tE2").unwrap() + 3));
            }
        }
        assert_eq!(
            seen,
            vec![
                "cat",
                "<<EOF",
                "<<-'E2'",
                ";",
                "x",
                "\nbody\nEOF\n\tmore\n\tE2\n",
                "next"
            ]
        );
    }

    #[test]
    fn unquoting_delimiters() {
        assert_eq!(unquote("'EOF'"), "EOF");
        assert_eq!(unquote("\"E\"OF"), "EOF");
        assert_eq!(unquote("\\EOF"), "EOF");
    }
}

//! Just enough of bash's grammar to know when a command is complete: which compound commands
//! are open, whether the next word is in command position (where `if`, `done`, `{` ... are
//! reserved words), and whether an operator still waits for its right-hand side.

use super::lex::{Kind, Op, Token};
use super::SplitError;

/// Whether a nested command list just ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Keep feeding tokens.
    Continue,
    /// The `)` closing a nested list (`$( ... )`) was read.
    Closed,
}

/// An open compound command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// `if`: in its condition (`Cond`), a `then` part or the `else` part.
    If(IfPart),
    /// `for`/`select`/`while`/`until`, up to `done`.
    Loop(LoopPart),
    /// `case ... esac`.
    Case(CasePart),
    /// `{ ... }`
    Brace,
    /// `( ... )`
    Subshell,
    /// `[[ ... ]]`
    Test,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IfPart {
    Cond,
    Then,
    Else,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoopPart {
    /// After `for`: the variable name (or `((`).
    Name,
    /// After `for NAME`: `in`, `do`, `;` or a newline.
    AfterName,
    /// The words after `in`, up to `;` or a newline.
    Words,
    /// A `while`/`until` condition, or waiting for `do`.
    Cond,
    /// Between `do` and `done`.
    Body,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CasePart {
    /// After `case`: the word.
    Subject,
    /// Waiting for `in`.
    In,
    /// Before a pattern, where `esac` ends the statement.
    PatternStart,
    /// Expecting a pattern word (after `(` or `|`).
    Pattern,
    /// After a pattern word: `|` or `)`.
    PatternEnd,
    /// The commands of a clause, up to `;;` or `esac`.
    Body,
}

/// Where a function definition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    None,
    /// After `function`: the name.
    Name,
    /// After `function NAME`: `()` or the body.
    AfterName,
    /// After `NAME (`: the `)`.
    Paren,
    /// After `NAME ()`: waiting for the body (newlines allowed).
    Body(usize),
}

/// Reserved words, recognized only in command position.
const RESERVED: [&str; 19] = [
    "if", "then", "elif", "else", "fi", "for", "select", "while", "until", "do", "done", "case",
    "esac", "{", "}", "[[", "function", "!", "time",
];

/// Reserved words that may also directly follow a compound command, as in `(cd a) fi`.
const CLOSERS: [&str; 8] = ["then", "elif", "else", "fi", "do", "done", "esac", "}"];

/// The grammar state of one command list (the script, or one `$( ... )`).
#[derive(Debug)]
pub(super) struct Grammar {
    nested: bool,
    stack: Vec<(Frame, usize)>,
    command_position: bool,
    first_word: bool,
    /// The previous token ended a compound command.
    after_compound: bool,
    function: Function,
    /// An operator (`&&`, `||`, `|`) waiting for its right-hand side, and its line.
    pending: Option<(&'static str, usize)>,
}

impl Grammar {
    /// A grammar for a whole script (`nested = false`) or a list ending with `)`.
    pub(super) fn new(nested: bool) -> Self {
        Grammar {
            nested,
            stack: Vec::new(),
            command_position: true,
            first_word: false,
            after_compound: false,
            function: Function::None,
            pending: None,
        }
    }

    /// Whether a newline here ends a complete command.
    pub(super) fn complete(&self) -> bool {
        self.stack.is_empty() && self.pending.is_none() && self.function == Function::None
    }

    /// At the end of the text: the error of whatever is still open, innermost first.
    pub(super) fn finish(&self) -> Result<(), SplitError> {
        if let Some(&(frame, line)) = self.stack.last() {
            let construct = match frame {
                Frame::If(_) => "if",
                Frame::Loop(_) => "loop",
                Frame::Case(_) => "case",
                Frame::Brace => "{",
                Frame::Subshell => "(",
                Frame::Test => "[[",
            };
            return Err(SplitError::Unclosed { construct, line });
        }
        if let Function::Body(line) = self.function {
            return Err(SplitError::MissingFunctionBody { line });
        }
        match self.pending {
            Some((after, line)) => Err(SplitError::MissingCommand { after, line }),
            None => Ok(()),
        }
    }

    /// Takes one token (`text` is its source, `line` its line).
    pub(super) fn feed(
        &mut self,
        token: &Token,
        text: &str,
        line: usize,
    ) -> Result<Flow, SplitError> {
        let first_word = std::mem::take(&mut self.first_word);
        let after_compound = std::mem::take(&mut self.after_compound);
        if self.special(token, text, line, first_word)? {
            return Ok(Flow::Continue);
        }
        match token.kind {
            Kind::Word { plain } => self.word(text, plain, line, after_compound)?,
            Kind::Op(op) => return self.operator(op, line),
            Kind::Newline { .. } => self.newline(),
            Kind::Arith => self.arith(),
            Kind::Redirect | Kind::Eof => {}
        }
        Ok(Flow::Continue)
    }

    fn top(&self) -> Option<Frame> {
        self.stack.last().map(|&(f, _)| f)
    }

    fn set_top(&mut self, frame: Frame) {
        if let Some(top) = self.stack.last_mut() {
            top.0 = frame;
        }
    }

    /// Tokens whose meaning depends on the context rather than on themselves: inside `[[ ]]`,
    /// `case` heads and patterns, `for` heads and function definitions. Returns whether the
    /// token was consumed.
    fn special(
        &mut self,
        token: &Token,
        text: &str,
        line: usize,
        first_word: bool,
    ) -> Result<bool, SplitError> {
        let word = matches!(token.kind, Kind::Word { plain: true }).then_some(text);
        match self.top() {
            Some(Frame::Test) => {
                if word == Some("]]") {
                    self.close();
                }
                Ok(true)
            }
            Some(Frame::Case(part)) if part != CasePart::Body => {
                self.case_head(part, token.kind, word, text, line)
            }
            Some(Frame::Loop(part @ (LoopPart::Name | LoopPart::AfterName | LoopPart::Words)))
                if self.for_head(part, token.kind, word) =>
            {
                Ok(true)
            }
            _ => self.function_head(token.kind, text, line, first_word),
        }
    }

    /// A token of a function definition's head (`function NAME`, `NAME ()`, the newlines
    /// before the body). Returns whether the token was consumed.
    fn function_head(
        &mut self,
        kind: Kind,
        text: &str,
        line: usize,
        first_word: bool,
    ) -> Result<bool, SplitError> {
        match (self.function, kind) {
            (Function::Name, Kind::Word { .. }) => self.function = Function::AfterName,
            (Function::AfterName, Kind::Op(Op::LParen)) => self.function = Function::Paren,
            (Function::None, Kind::Op(Op::LParen)) if first_word => self.function = Function::Paren,
            (Function::Paren, Kind::Op(Op::RParen)) => {
                self.function = Function::Body(line);
                self.command_position = true;
            }
            (Function::Paren, _) => return Err(unexpected(text, line)),
            (Function::Body(_), Kind::Newline { .. }) => {}
            (Function::AfterName, Kind::Newline { .. }) => self.function = Function::Body(line),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A token of a `case` head (`case WORD in`) or pattern (`(a|b)`).
    fn case_head(
        &mut self,
        part: CasePart,
        kind: Kind,
        word: Option<&str>,
        text: &str,
        line: usize,
    ) -> Result<bool, SplitError> {
        match (part, kind) {
            (CasePart::Subject, Kind::Word { .. }) => self.set_top(Frame::Case(CasePart::In)),
            (CasePart::In, Kind::Word { .. }) if word == Some("in") => {
                self.set_top(Frame::Case(CasePart::PatternStart));
            }
            (CasePart::PatternStart, Kind::Word { .. }) if word == Some("esac") => self.close(),
            (CasePart::PatternEnd, Kind::Op(Op::RParen)) => {
                self.set_top(Frame::Case(CasePart::Body));
                self.command_position = true;
            }
            (CasePart::PatternStart, Kind::Op(Op::LParen))
            | (CasePart::PatternEnd, Kind::Op(Op::Pipe)) => {
                self.set_top(Frame::Case(CasePart::Pattern));
            }
            (CasePart::PatternStart | CasePart::Pattern, Kind::Word { .. }) => {
                self.set_top(Frame::Case(CasePart::PatternEnd));
            }
            (CasePart::In | CasePart::PatternStart, Kind::Newline { .. }) => {}
            _ => return Err(unexpected(text, line)),
        }
        Ok(true)
    }

    /// A token of a `for` head; returns false when the token is not part of it.
    fn for_head(&mut self, part: LoopPart, kind: Kind, word: Option<&str>) -> bool {
        let next = match (part, kind) {
            (LoopPart::Name, Kind::Arith) => LoopPart::Cond,
            (LoopPart::Name, Kind::Word { .. }) => LoopPart::AfterName,
            (LoopPart::AfterName, Kind::Word { .. }) if word == Some("in") => LoopPart::Words,
            (LoopPart::AfterName, Kind::Word { .. }) if word == Some("do") => LoopPart::Body,
            (LoopPart::Words, Kind::Word { .. }) => LoopPart::Words,
            (LoopPart::AfterName | LoopPart::Words, Kind::Op(Op::Semi) | Kind::Newline { .. }) => {
                LoopPart::Cond
            }
            _ => return false,
        };
        self.set_top(Frame::Loop(next));
        self.command_position = true;
        true
    }

    /// A word outside the special contexts.
    fn word(
        &mut self,
        text: &str,
        plain: bool,
        line: usize,
        after_compound: bool,
    ) -> Result<(), SplitError> {
        let closer = after_compound && CLOSERS.contains(&text);
        if plain && (closer || self.command_position && RESERVED.contains(&text)) {
            return self.reserved(text, line);
        }
        if after_compound {
            // `(cd a) ls` is a syntax error; only operators, redirections and closers follow.
            return Err(unexpected(text, line));
        }
        if matches!(self.function, Function::Body(_)) {
            self.function = Function::None;
        }
        self.pending = None;
        self.first_word = self.command_position;
        self.command_position = false;
        Ok(())
    }

    /// An arithmetic command `(( ... ))`.
    fn arith(&mut self) {
        self.function = Function::None;
        self.pending = None;
        self.command_position = false;
        self.after_compound = true;
    }

    /// Ends the innermost compound command.
    fn close(&mut self) {
        self.stack.pop();
        self.command_position = false;
        self.after_compound = true;
    }

    /// A reserved word in command position.
    fn reserved(&mut self, word: &str, line: usize) -> Result<(), SplitError> {
        self.pending = None;
        self.function = Function::None;
        self.command_position = true;
        let top = self.top();
        match (word, top) {
            ("if", _) => self.stack.push((Frame::If(IfPart::Cond), line)),
            ("then", Some(Frame::If(IfPart::Cond))) => self.set_top(Frame::If(IfPart::Then)),
            ("elif", Some(Frame::If(IfPart::Then))) => self.set_top(Frame::If(IfPart::Cond)),
            ("else", Some(Frame::If(IfPart::Then))) => self.set_top(Frame::If(IfPart::Else)),
            ("while" | "until", _) => self.stack.push((Frame::Loop(LoopPart::Cond), line)),
            ("for" | "select", _) => self.stack.push((Frame::Loop(LoopPart::Name), line)),
            ("do", Some(Frame::Loop(LoopPart::Cond))) => self.set_top(Frame::Loop(LoopPart::Body)),
            ("case", _) => self.stack.push((Frame::Case(CasePart::Subject), line)),
            ("{", _) => self.stack.push((Frame::Brace, line)),
            ("[[", _) => self.stack.push((Frame::Test, line)),
            ("function", _) => self.function = Function::Name,
            ("!" | "time", _) => {}
            ("fi", Some(Frame::If(IfPart::Then | IfPart::Else)))
            | ("done", Some(Frame::Loop(LoopPart::Body)))
            | ("esac", Some(Frame::Case(CasePart::Body)))
            | ("}", Some(Frame::Brace)) => self.close(),
            _ => return Err(unexpected(word, line)),
        }
        Ok(())
    }

    /// A control operator outside the special contexts.
    fn operator(&mut self, op: Op, line: usize) -> Result<Flow, SplitError> {
        let top = self.top();
        self.function = Function::None;
        match (op, top) {
            (Op::And | Op::Or | Op::Pipe, _) if self.pending.is_some() => {
                return Err(unexpected(operator_text(op), line));
            }
            (Op::And | Op::Or | Op::Pipe, _) => {
                self.pending = Some((operator_text(op), line));
            }
            (Op::Semi | Op::Amp, _) => self.pending = None,
            (Op::CaseEnd, Some(Frame::Case(CasePart::Body))) => {
                self.set_top(Frame::Case(CasePart::PatternStart));
            }
            (Op::LParen, _) if self.command_position => self.stack.push((Frame::Subshell, line)),
            (Op::RParen, Some(Frame::Subshell)) => {
                self.close();
                return Ok(Flow::Continue);
            }
            (Op::RParen, None) if self.nested => return Ok(Flow::Closed),
            (Op::CaseEnd, _) => return Err(unexpected(";;", line)),
            (Op::LParen, _) => return Err(unexpected("(", line)),
            (Op::RParen, _) => return Err(unexpected(")", line)),
        }
        self.command_position = true;
        Ok(Flow::Continue)
    }

    /// A newline outside the special contexts.
    fn newline(&mut self) {
        self.command_position = true;
    }
}

/// How an operator is written (`|&` is reported as `|`).
fn operator_text(op: Op) -> &'static str {
    match op {
        Op::And => "&&",
        Op::Or => "||",
        Op::Pipe => "|",
        Op::Semi => ";",
        Op::CaseEnd => ";;",
        Op::Amp => "&",
        Op::LParen => "(",
        Op::RParen => ")",
    }
}

fn unexpected(token: &str, line: usize) -> SplitError {
    let token = match token {
        "\n" => "newline".to_owned(),
        t => t.to_owned(),
    };
    SplitError::Unexpected { token, line }
}

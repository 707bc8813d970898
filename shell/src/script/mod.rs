//! Splitting a bash script into its top-level steps.
//!
//! When shark runs a script, each top-level complete command is a *step*, memoized on its own:
//! the unit bash itself reads and executes at once. [`split`] finds the steps without executing
//! anything, so it must know where bash's commands end: newlines end a command unless a quote,
//! a `\` continuation, a here-document, an open compound command (`if ... fi`, `for ... done`,
//! `case ... esac`, `{ ... }`, `( ... )`, `[[ ... ]]`, a function definition) or a trailing
//! `&&`, `||` or `|` carries it on. Commands joined by `;` or `&` on one line are one step, as
//! bash reads them together.
//!
//! ```ignore
//! let steps = script::split("set -e\nfor t in a b; do\n  echo $t\ndone\n")?;
//! assert_eq!(steps[1], Step { text: "for t in a b; do\n  echo $t\ndone".into(), line: 2 });
//! ```
//!
//! A step's text runs from its first token to its last (here-document bodies included), so a
//! comment at the end of its last line is not part of it; comments inside a multi-line step
//! are. [`is_complete`] answers the interactive shell's question: may this input run now, or
//! does it need another line?
//!
//! Not handled (all rare in scripts): aliases that expand to reserved words or open quotes,
//! `((` meant as two nested subshells when the text also parses as arithmetic, backquoted
//! substitutions holding here-documents, and `extglob` patterns being enabled or not.

mod check;
mod grammar;
mod jobs;
mod lex;

use self::grammar::Grammar;
use self::lex::{Kind, Lexer};

/// One top-level complete command of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The command's source text, from its first token to its last.
    pub text: String,
    /// The 1-based line it starts on.
    pub line: usize,
}

/// Why a script cannot be split. Lines are 1-based.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SplitError {
    /// A quote (`'`, `"`, or a backquote) is never closed.
    #[error("line {line}: unterminated {quote} quote")]
    UnterminatedQuote {
        /// The quote character.
        quote: char,
        /// Where it opened.
        line: usize,
    },
    /// A here-document's delimiter line never comes.
    #[error("line {line}: here-document ended by `{delimiter}` is never closed")]
    UnterminatedHeredoc {
        /// The delimiter word, unquoted.
        delimiter: String,
        /// The line of its `<<`.
        line: usize,
    },
    /// A compound command or expansion is never closed.
    #[error("line {line}: `{construct}` is never closed")]
    Unclosed {
        /// What opened: `if`, `loop`, `case`, `{`, `(`, `[[`, `$(`, `${`, `<(`.
        construct: &'static str,
        /// Where it opened.
        line: usize,
    },
    /// A function definition has no body.
    #[error("line {line}: the function defined here has no body")]
    MissingFunctionBody {
        /// The line of the definition.
        line: usize,
    },
    /// The script ends right after `&&`, `||` or `|`.
    #[error("line {line}: `{after}` is not followed by a command")]
    MissingCommand {
        /// The operator.
        after: &'static str,
        /// Its line.
        line: usize,
    },
    /// A redirection operator has no target.
    #[error("line {line}: a redirection has no target")]
    MissingRedirectTarget {
        /// Its line.
        line: usize,
    },
    /// A token that cannot appear where it does, as in `fi` without `if`.
    #[error("line {line}: syntax error near unexpected token `{token}`")]
    Unexpected {
        /// The token (`newline` for a line end).
        token: String,
        /// Its line.
        line: usize,
    },
}

impl SplitError {
    /// Whether more text could complete the script (rather than it being wrong already).
    pub fn is_incomplete(&self) -> bool {
        !matches!(
            self,
            SplitError::MissingRedirectTarget { .. } | SplitError::Unexpected { .. }
        )
    }
}

/// Splits a script into its top-level steps. A shebang, blank lines and comment lines produce
/// no step.
///
/// # Errors
///
/// An unterminated quote, here-document or compound command (naming the line where it
/// started), or a syntax error that makes the split meaningless.
pub fn split(text: &str) -> Result<Vec<Step>, SplitError> {
    let mut lexer = Lexer::new(text);
    let (spans, error) = scan(&mut lexer);
    match error {
        Some((e, _)) => Err(e),
        None => Ok(spans.into_iter().map(|s| step(&lexer, s)).collect()),
    }
}

/// A step of a script as a byte range of its text, with the line it starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Where it starts.
    pub start: usize,
    /// Where it ends (exclusive).
    pub end: usize,
    /// The 1-based line of `start`.
    pub line: usize,
    /// Bash parses it; the last step may not (a syntax error), and then runs to the end of
    /// the text.
    pub parses: bool,
}

/// The steps of a script given as bytes (not necessarily UTF-8). It never fails: from where
/// the text cannot be split (a syntax error, or a construct the splitter does not know), the
/// rest is one step, which bash then runs or rejects as it would.
pub fn spans(text: &[u8]) -> Vec<Span> {
    jobs::merged(text, check::checked(text, unchecked_spans(text)))
}

/// Where the first complete command of `text` ends, as the splitter alone finds it.
pub fn first_command(text: &[u8]) -> Option<usize> {
    let spans = unchecked_spans(text);
    spans.first().filter(|s| s.start == 0).map(|s| s.end)
}

/// [`spans`] as the splitter alone finds them.
fn unchecked_spans(text: &[u8]) -> Vec<Span> {
    // Bytes outside ASCII are word characters to bash: any ASCII letter stands in for them.
    let ascii: String = text
        .iter()
        .map(|&b| if b.is_ascii() { b as char } else { 'a' })
        .collect();
    let mut lexer = Lexer::new(&ascii);
    let (mut spans, error) = scan(&mut lexer);
    if let Some((_, from)) = error {
        let rest = ascii[from..].trim_end_matches(['\n', ' ', '\t']).len() + from;
        let start = from + (ascii[from..rest].len() - ascii[from..rest].trim_start().len());
        if start < rest {
            spans.push(Span {
                start,
                end: rest,
                line: lexer.line_of(start),
                parses: true,
            });
        }
    }
    spans
}

/// Whether `text` is ready to run as it is: false while a quote, a `\` continuation, a
/// here-document, a compound command or a trailing `&&`/`||`/`|` is still open. Text with a
/// syntax error is complete (running it reports the error).
pub fn is_complete(text: &str) -> bool {
    let mut lexer = Lexer::new(text);
    match scan(&mut lexer) {
        (_, None) => !lexer.dangling,
        (_, Some((e, _))) => !e.is_incomplete(),
    }
}

/// Runs the lexer and the top-level grammar over the whole text, collecting steps; on an
/// error, the steps before it, the error and where the step it is in starts.
fn scan(lexer: &mut Lexer<'_>) -> (Vec<Span>, Option<(SplitError, usize)>) {
    let mut grammar = Grammar::new(false);
    let mut steps = Vec::new();
    // The byte range of the step being read.
    let mut span: Option<(usize, usize)> = None;
    let mut last_end = 0;
    loop {
        let token = match lexer.next() {
            Ok(token) => token,
            Err(e) => return (steps, Some((e, span.map_or(last_end, |s| s.0)))),
        };
        let line = lexer.line_of(token.start);
        let fed = match token.kind {
            Kind::Eof => {
                if span.is_some() {
                    if let Err(e) = grammar.finish() {
                        return (steps, Some((e, span.map_or(last_end, |s| s.0))));
                    }
                }
                steps.extend(span.map(|s| to_span(lexer, s)));
                return (steps, None);
            }
            Kind::Newline { body_end } => {
                if let (Some((_, end)), Some(body_end)) = (&mut span, body_end) {
                    *end = body_end.max(*end);
                }
                grammar.feed(&token, "\n", line).map(|_| {
                    if grammar.complete() {
                        if let Some(s) = span.take() {
                            last_end = s.1;
                            steps.push(to_span(lexer, s));
                        }
                    }
                })
            }
            _ => {
                let (start, _) = span.unwrap_or((token.start, token.end));
                span = Some((start, token.end));
                grammar.feed(&token, lexer.text(&token), line).map(|_| ())
            }
        };
        if let Err(e) = fed {
            return (steps, Some((e, span.map_or(last_end, |s| s.0))));
        }
    }
}

fn to_span(lexer: &Lexer<'_>, (start, end): (usize, usize)) -> Span {
    Span {
        start,
        end,
        line: lexer.line_of(start),
        parses: true,
    }
}

fn step(lexer: &Lexer<'_>, span: Span) -> Step {
    Step {
        text: lexer.slice(span.start, span.end).to_owned(),
        line: span.line,
    }
}

#[cfg(test)]
mod tests;

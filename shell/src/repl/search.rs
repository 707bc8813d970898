//! Ctrl-R: incremental search backwards through the history, as bash does it. Typing narrows
//! the search, Ctrl-R again finds an older match, Backspace widens it; Enter runs the match
//! at once, Esc (or an arrow or another editing key) takes it into the line to edit, Ctrl-G or
//! Ctrl-C gives up. The search line replaces the prompt while it lasts.

use std::io::{self, Write};

/// What the search ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Enter: run this line.
    Run(String),
    /// Take this line into the editor.
    Edit(String),
    /// Nothing.
    Cancel,
}

/// The state of a search over `entries` (oldest first).
#[derive(Debug)]
pub(crate) struct Search<'a> {
    entries: &'a [String],
    term: String,
    /// The index of the current match.
    at: Option<usize>,
}

/// A key, as the search understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    /// A character to add to the term.
    Char(char),
    /// Ctrl-R.
    Older,
    /// Backspace.
    Back,
    /// Enter.
    Enter,
    /// Ctrl-G, Ctrl-C.
    Abort,
    /// Esc, arrows and other editing keys.
    Edit,
}

impl<'a> Search<'a> {
    pub(crate) fn new(entries: &'a [String]) -> Search<'a> {
        Search {
            entries,
            term: String::new(),
            at: None,
        }
    }

    /// The newest entry at or before `before` (exclusive) that holds the term.
    fn find(&self, before: usize) -> Option<usize> {
        (0..before.min(self.entries.len()))
            .rev()
            .find(|&i| self.entries[i].contains(&self.term))
    }

    /// Takes one key; `Some` when the search is over.
    pub(crate) fn key(&mut self, key: Key) -> Option<Outcome> {
        let current = || self.at.map(|i| self.entries[i].clone());
        match key {
            Key::Char(c) => {
                self.term.push(c);
                // The current match may still hold; otherwise look further back.
                let from = self.at.map_or(self.entries.len(), |i| i + 1);
                if let Some(found) = self.find(from) {
                    self.at = Some(found);
                }
            }
            Key::Older => {
                if let Some(found) = self.find(self.at.unwrap_or(self.entries.len())) {
                    self.at = Some(found);
                }
            }
            Key::Back => {
                self.term.pop();
                self.at = self.find(self.entries.len());
            }
            Key::Enter => return Some(current().map_or(Outcome::Cancel, Outcome::Run)),
            Key::Edit => return Some(current().map_or(Outcome::Cancel, Outcome::Edit)),
            Key::Abort => return Some(Outcome::Cancel),
        }
        None
    }

    /// The search line.
    pub(crate) fn line(&self) -> String {
        let found = self.at.map_or("", |i| self.entries[i].as_str());
        let failing = match self.at.is_none() && !self.term.is_empty() {
            true => "failing ",
            false => "",
        };
        // Only the first line of a multi-line match fits the search line.
        let first = found.lines().next().unwrap_or_default();
        format!("({failing}reverse-search: {}) {first}", self.term)
    }
}

/// Runs a search on the terminal: keys through crossterm (which may hold some typed before
/// the search began), the search line on stdout.
pub(crate) fn run(entries: &[String]) -> io::Result<Outcome> {
    crossterm::terminal::enable_raw_mode()?;
    let result = keys(entries);
    crossterm::terminal::disable_raw_mode()?;
    let mut out = io::stdout().lock();
    write!(out, "\r\x1b[K")?;
    out.flush()?;
    result
}

fn keys(entries: &[String]) -> io::Result<Outcome> {
    use crossterm::event::{Event, KeyCode, KeyEventKind, KeyModifiers};
    let mut search = Search::new(entries);
    let mut out = io::stdout().lock();
    loop {
        write!(out, "\r\x1b[K{}", search.line())?;
        out.flush()?;
        let Event::Key(key) = crossterm::event::read()? else {
            continue;
        };
        if key.kind == KeyEventKind::Release {
            continue;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let key = match key.code {
            KeyCode::Char('r') if ctrl => Key::Older,
            KeyCode::Char('g' | 'c') if ctrl => Key::Abort,
            KeyCode::Char(_) if ctrl => Key::Edit,
            KeyCode::Char(c) => Key::Char(c),
            KeyCode::Backspace => Key::Back,
            KeyCode::Enter => Key::Enter,
            _ => Key::Edit,
        };
        if let Some(outcome) = search.key(key) {
            return Ok(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<String> {
        ["make all", "echo one", "make test", "ls"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn typing_narrows_and_ctrl_r_goes_further_back() {
        let e = entries();
        let mut s = Search::new(&e);
        for c in "make".chars() {
            assert_eq!(s.key(Key::Char(c)), None);
        }
        assert_eq!(s.line(), "(reverse-search: make) make test");
        s.key(Key::Older);
        assert_eq!(s.line(), "(reverse-search: make) make all");
        assert_eq!(s.key(Key::Enter), Some(Outcome::Run("make all".into())));
    }

    #[test]
    fn no_match_fails_and_backspace_widens() {
        let e = entries();
        let mut s = Search::new(&e);
        s.key(Key::Char('z'));
        assert_eq!(s.line(), "(failing reverse-search: z) ");
        s.key(Key::Back);
        s.key(Key::Char('e'));
        assert_eq!(s.line(), "(reverse-search: e) make test");
        assert_eq!(s.key(Key::Edit), Some(Outcome::Edit("make test".into())));
        assert_eq!(Search::new(&e).key(Key::Abort), Some(Outcome::Cancel));
    }
}

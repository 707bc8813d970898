//! The interactive shell's history: its file ([`ShellHistory`]) and history expansion, as
//! bash does it on an interactive line before running it: `!!`, `!N`,
//! `!-N`, `!string`, `!?string?`, with word designators (`:N`, `:N-M`, `:^`, `:$`, `:*`, and
//! the shorthands `!$`, `!^`, `!*`), and `^old^new` at the start of the line.
//!
//! The expansion happens in shark, before the line is keyed and recorded (bash records the
//! expanded line in its history too); the bash that runs the line has history expansion off.
//! Nothing is expanded inside single quotes, after a backslash, or where `!` is followed by a
//! blank, `=`, `(` or the end of the line.

use reedline::{FileBackedHistory, History, HistoryItem, HistoryItemId, HistorySessionId};
use reedline::{Result as ReedlineResult, SearchQuery};

/// The id of the line just entered, until it is written.
const PENDING: HistoryItemId = HistoryItemId::new(i64::MAX);

/// The history file (one entry a line), where the line just entered waits, and can be
/// replaced by its expansion, until it is written ([`History::sync`]).
pub(crate) struct ShellHistory {
    file: FileBackedHistory,
    pending: Option<String>,
}

impl ShellHistory {
    pub(crate) fn new(file: FileBackedHistory) -> ShellHistory {
        ShellHistory {
            file,
            pending: None,
        }
    }
}

impl History for ShellHistory {
    fn save(&mut self, h: HistoryItem) -> ReedlineResult<HistoryItem> {
        self.pending = Some(h.command_line.clone());
        Ok(HistoryItem {
            id: Some(PENDING),
            ..h
        })
    }

    fn load(&self, id: HistoryItemId) -> ReedlineResult<HistoryItem> {
        match (&self.pending, id == PENDING) {
            (Some(line), true) => Ok(HistoryItem::from_command_line(line.clone())),
            _ => self.file.load(id),
        }
    }

    fn count(&self, query: SearchQuery) -> ReedlineResult<i64> {
        self.file.count(query)
    }

    fn search(&self, query: SearchQuery) -> ReedlineResult<Vec<HistoryItem>> {
        self.file.search(query)
    }

    fn update(
        &mut self,
        id: HistoryItemId,
        updater: &dyn Fn(HistoryItem) -> HistoryItem,
    ) -> ReedlineResult<()> {
        match self.pending.take() {
            Some(line) if id == PENDING => {
                self.pending = Some(updater(HistoryItem::from_command_line(line)).command_line);
                Ok(())
            }
            pending => {
                self.pending = pending;
                self.file.update(id, updater)
            }
        }
    }

    fn clear(&mut self) -> ReedlineResult<()> {
        self.pending = None;
        self.file.clear()
    }

    fn delete(&mut self, h: HistoryItemId) -> ReedlineResult<()> {
        match h == PENDING {
            true => {
                self.pending = None;
                Ok(())
            }
            false => self.file.delete(h),
        }
    }

    fn sync(&mut self) -> std::io::Result<()> {
        if let Some(line) = self.pending.take() {
            let _ = self.file.save(HistoryItem::from_command_line(line));
        }
        self.file.sync()
    }

    fn session(&self) -> Option<HistorySessionId> {
        self.file.session()
    }
}

/// Expands the history references of the line just entered (waiting in `history`), puts the
/// expansion in its place and writes it, as bash does; prints the expanded line on stderr, or
/// bash's complaint. `None` when the line is not to run.
pub(crate) fn expand_entered(history: &mut dyn History, text: &str) -> Option<String> {
    let expanded = if text.contains('!') || text.starts_with('^') {
        let query = SearchQuery::everything(reedline::SearchDirection::Forward, None);
        let items = history.search(query).unwrap_or_default();
        let entries: Vec<String> = items.into_iter().map(|i| i.command_line).collect();
        match expand(text, &entries) {
            Ok(None) => text.to_owned(),
            Ok(Some(expanded)) => {
                eprintln!("{expanded}");
                let line = expanded.clone();
                let _ = history.update(PENDING, &move |mut item| {
                    item.command_line = line.clone();
                    item
                });
                expanded
            }
            Err(Failed(message)) => {
                eprintln!("bash: {message}");
                let _ = history.sync();
                return None;
            }
        }
    } else {
        text.to_owned()
    };
    // Written before the line runs, so it is kept even if shark is killed meanwhile.
    let _ = history.sync();
    Some(expanded)
}

/// Why a line cannot be expanded, in bash's words (`!foo: event not found`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failed(pub(crate) String);

/// `line` with its history references expanded against `entries` (oldest first), or `None`
/// when it has none.
pub(crate) fn expand(line: &str, entries: &[String]) -> Result<Option<String>, Failed> {
    if let Some(rest) = line.strip_prefix('^') {
        return quick_substitution(rest, entries).map(Some);
    }
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let (mut i, mut changed) = (0, false);
    let (mut single, mut double) = (false, false);
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if !single => {
                // A backslash protects the next character (it stays for bash to see).
                out.push(c);
                if let Some(&next) = chars.get(i + 1) {
                    out.push(next);
                }
                i += 2;
                continue;
            }
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '!' if !single && expands(chars.get(i + 1).copied(), double) => {
                let (text, used) = reference(&chars[i + 1..], entries)?;
                out.push_str(&text);
                i += 1 + used;
                changed = true;
                continue;
            }
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    Ok(changed.then_some(out))
}

/// Whether a `!` followed by `next` starts a history reference.
fn expands(next: Option<char>, in_double_quotes: bool) -> bool {
    match next {
        None => false,
        Some(c) => !(c.is_whitespace() || c == '=' || c == '(' || (in_double_quotes && c == '"')),
    }
}

/// The reference after a `!` (event, then word designators): its expansion and how many
/// characters it took.
fn reference(chars: &[char], entries: &[String]) -> Result<(String, usize), Failed> {
    let (event, mut used, shorthand) = event(chars, entries)?;
    let words = split_words(&event);
    let mut selection = match shorthand {
        Some(d) => select(&words, d, &event)?,
        None => event.clone(),
    };
    if shorthand.is_none() && chars.get(used) == Some(&':') {
        if let Some((designator, len)) = designator(&chars[used + 1..]) {
            selection = select(&words, designator, &event)?;
            used += 1 + len;
        }
    }
    Ok((selection, used))
}

/// The event a reference names, the characters it took, and a shorthand word designator
/// (`$`, `^`, `*` right after the `!`).
fn event(
    chars: &[char],
    entries: &[String],
) -> Result<(String, usize, Option<Designator>), Failed> {
    let last = || {
        entries
            .last()
            .cloned()
            .ok_or_else(|| Failed("!!: event not found".into()))
    };
    match chars[0] {
        '!' => Ok((last()?, 1, None)),
        '$' => Ok((last()?, 1, Some(Designator::Last))),
        '^' => Ok((last()?, 1, Some(Designator::Range(1, Some(1))))),
        '*' => Ok((last()?, 1, Some(Designator::Range(1, None)))),
        '-' | '0'..='9' => {
            let len = chars[1..].iter().take_while(|c| c.is_ascii_digit()).count() + 1;
            let text: String = chars[..len].iter().collect();
            let n: i64 = text
                .parse()
                .map_err(|_| Failed(format!("!{text}: event not found")))?;
            let index = if n < 0 {
                entries.len() as i64 + n
            } else {
                n - 1
            };
            let found = usize::try_from(index).ok().and_then(|i| entries.get(i));
            let found = found.ok_or_else(|| Failed(format!("!{text}: event not found")))?;
            Ok((found.clone(), len, None))
        }
        '?' => {
            let end = chars[1..].iter().position(|&c| c == '?' || c == '\n');
            let len = end.map_or(chars.len(), |e| e + 1);
            let needle: String = chars[1..len].iter().collect();
            let used = if end.is_some() { len + 1 } else { len };
            let found = entries.iter().rev().find(|e| e.contains(&needle));
            let found = found.ok_or_else(|| Failed(format!("!?{needle}: event not found")))?;
            Ok((found.clone(), used.min(chars.len()), None))
        }
        _ => {
            let len = chars
                .iter()
                .take_while(|c| !c.is_whitespace() && !matches!(c, ':' | ';' | '&' | '|'))
                .count();
            let prefix: String = chars[..len].iter().collect();
            let found = entries.iter().rev().find(|e| e.starts_with(&prefix));
            let found = found.ok_or_else(|| Failed(format!("!{prefix}: event not found")))?;
            Ok((found.clone(), len, None))
        }
    }
}

/// A word designator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Designator {
    /// Words `from` to `to` (to the last when `None`).
    Range(usize, Option<usize>),
    /// The last word.
    Last,
}

/// The designator after a `:`, and how many characters it took.
fn designator(chars: &[char]) -> Option<(Designator, usize)> {
    let number = |from: usize| -> Option<(usize, usize)> {
        let len = chars[from..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let n: String = chars[from..from + len].iter().collect();
        n.parse().ok().map(|n| (n, len))
    };
    match chars.first()? {
        '$' => Some((Designator::Last, 1)),
        '^' => Some((Designator::Range(1, Some(1)), 1)),
        '*' => Some((Designator::Range(1, None), 1)),
        c if c.is_ascii_digit() => {
            let (from, len) = number(0)?;
            match chars.get(len) {
                Some('-') => match chars.get(len + 1) {
                    Some('$') => Some((Designator::Range(from, None), len + 2)),
                    _ => match number(len + 1) {
                        Some((to, l2)) => Some((Designator::Range(from, Some(to)), len + 1 + l2)),
                        None => Some((Designator::Range(from, None), len + 1)),
                    },
                },
                Some('*') => Some((Designator::Range(from, None), len + 1)),
                _ => Some((Designator::Range(from, Some(from)), len)),
            }
        }
        _ => None,
    }
}

fn select(words: &[String], d: Designator, event: &str) -> Result<String, Failed> {
    let bad = || Failed(format!("{event}: bad word specifier"));
    match d {
        Designator::Last => words.last().cloned().ok_or_else(bad),
        Designator::Range(from, to) => {
            let to = to.unwrap_or(words.len().saturating_sub(1));
            if from > to || to >= words.len() {
                // `!*` of a one-word command is empty, as in bash.
                return if from == 1 && to == 0 {
                    Ok(String::new())
                } else {
                    Err(bad())
                };
            }
            Ok(words[from..=to].join(" "))
        }
    }
}

/// `^old^new^`: the last command with the first `old` replaced by `new`.
fn quick_substitution(rest: &str, entries: &[String]) -> Result<String, Failed> {
    let mut parts = rest.splitn(3, '^');
    let old = parts.next().unwrap_or_default();
    let new = parts.next().unwrap_or_default();
    let last = entries
        .last()
        .ok_or_else(|| Failed("^: event not found".into()))?;
    if old.is_empty() || !last.contains(old) {
        return Err(Failed(format!("{old}: substitution failed")));
    }
    let mut out = last.replacen(old, new, 1);
    out.push_str(parts.next().unwrap_or_default());
    Ok(out)
}

/// A command split into words as history does it: at blanks, quotes kept together.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', _) => {
                word.push(c);
                word.extend(chars.next());
            }
            ('\'' | '"', None) => {
                quote = Some(c);
                word.push(c);
            }
            (q, Some(open)) if q == open => {
                quote = None;
                word.push(c);
            }
            (c, None) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist() -> Vec<String> {
        [
            "ls -l /tmp",
            "echo 'a b' c",
            "grep -r needle src",
            "make all",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn x(line: &str) -> Option<String> {
        expand(line, &hist()).unwrap()
    }

    #[test]
    fn events() {
        assert_eq!(x("!!").unwrap(), "make all");
        assert_eq!(x("sudo !!").unwrap(), "sudo make all");
        assert_eq!(x("!1").unwrap(), "ls -l /tmp");
        assert_eq!(x("!-2").unwrap(), "grep -r needle src");
        assert_eq!(x("!gr").unwrap(), "grep -r needle src");
        assert_eq!(x("!?needle?").unwrap(), "grep -r needle src");
        assert_eq!(
            expand("!nothing", &hist()),
            Err(Failed("!nothing: event not found".into()))
        );
    }

    #[test]
    fn words() {
        assert_eq!(x("cat !$").unwrap(), "cat all");
        assert_eq!(x("echo !^").unwrap(), "echo all");
        assert_eq!(x("vi !-3:$").unwrap(), "vi c");
        assert_eq!(x("echo !-3:1").unwrap(), "echo 'a b'");
        assert_eq!(x("echo !3:1-2").unwrap(), "echo -r needle");
        assert_eq!(x("echo !3:*").unwrap(), "echo -r needle src");
        assert_eq!(x("echo !*").unwrap(), "echo all");
    }

    #[test]
    fn what_is_not_expanded() {
        for line in [
            "echo hi",
            "echo '!!'",
            "echo \\!!",
            "echo a! b",
            "[ ! -f x ]",
            "x!=y",
            "echo \"hi!\"",
        ] {
            assert_eq!(x(line), None, "{line}");
        }
        assert_eq!(x("echo \"last: !!\"").unwrap(), "echo \"last: make all\"");
    }

    #[test]
    fn quick_substitution_replaces_the_first() {
        assert_eq!(x("^all^install").unwrap(), "make install");
        assert!(expand("^zzz^y", &hist()).is_err());
    }
}

//! Tab completion: command names in command position (programs on `PATH`, bash builtins and
//! keywords, the session's functions and aliases, shark's prefixes), paths elsewhere, relative
//! to the session's working directory.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use reedline::{Completer, CompletionResult, Span, Suggestion};

use crate::state::ShellState;

/// Bash's builtins and reserved words, and shark's own words.
const BUILTINS: &[&str] = &[
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "case",
    "cd",
    "command",
    "compgen",
    "complete",
    "continue",
    "declare",
    "dirs",
    "disown",
    "do",
    "done",
    "echo",
    "elif",
    "else",
    "enable",
    "esac",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "fi",
    "for",
    "function",
    "getopts",
    "hash",
    "help",
    "history",
    "if",
    "in",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "select",
    "set",
    "shift",
    "shopt",
    "source",
    "test",
    "then",
    "time",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "until",
    "wait",
    "while",
    "fresh:",
    "net:",
    "host:",
];

/// What completion needs to know of the session, refreshed after each line.
#[derive(Debug, Default, Clone)]
pub(crate) struct Context {
    cwd: PathBuf,
    home: Option<PathBuf>,
    path: Vec<PathBuf>,
    names: Vec<String>,
    /// Recent runs (id, command), newest first, for completing run ids.
    pub(crate) runs: Vec<(String, String)>,
}

impl Context {
    pub(crate) fn of(state: &ShellState) -> Context {
        let var = |name: &str| {
            state
                .env
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let path = var("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        Context {
            cwd: state.cwd.clone(),
            home: var("HOME").map(PathBuf::from),
            path,
            names: functions_and_aliases(state),
            runs: Vec::new(),
        }
    }
}

/// The names of the session's functions and aliases.
fn functions_and_aliases(state: &ShellState) -> Vec<String> {
    let functions = state
        .functions
        .keys()
        .map(|f| String::from_utf8_lossy(f).into_owned());
    functions.chain(state.alias_names()).collect()
}

/// The completer reedline calls; it reads the session's context through a shared handle.
pub(crate) struct ShellCompleter {
    context: Arc<Mutex<Context>>,
}

impl ShellCompleter {
    pub(crate) fn new(context: Arc<Mutex<Context>>) -> Self {
        ShellCompleter { context }
    }
}

impl Completer for ShellCompleter {
    fn complete(&mut self, line: &str, pos: usize) -> CompletionResult {
        let ctx = match self.context.lock() {
            Ok(ctx) => ctx.clone(),
            Err(_) => return CompletionResult::fresh(Vec::new()),
        };
        CompletionResult::fresh(suggest(&ctx, line, pos))
    }
}

/// Suggestions for the word that ends at `pos`. With none, the word itself: Tab then leaves
/// the line as it is, as bash does, rather than opening an empty menu.
pub(crate) fn suggest(ctx: &Context, line: &str, pos: usize) -> Vec<Suggestion> {
    let before = &line[..pos.min(line.len())];
    let start = word_start(before);
    let word = &before[start..];
    let span = Span::new(start, pos);
    let command = current_command(&before[..start]);
    let words: Vec<(String, bool)> = if command_position(&before[..start]) && !word.contains('/') {
        commands(ctx, word).into_iter().map(|c| (c, true)).collect()
    } else if let Some(ids) = run_id_position(&command).filter(|_| !word.contains('/')) {
        run_ids(ctx, word, ids)
    } else if DIRECTORY_COMMANDS.contains(&command.first().map_or("", String::as_str)) {
        paths(ctx, word)
            .into_iter()
            .filter(|(v, _)| v.ends_with('/'))
            .collect()
    } else {
        paths(ctx, word)
    };
    let mut suggestions: Vec<Suggestion> = words
        .into_iter()
        .map(|(value, space)| Suggestion {
            value,
            span,
            append_whitespace: space,
            ..Suggestion::default()
        })
        .collect();
    if suggestions.is_empty() {
        suggestions.push(Suggestion {
            value: word.to_owned(),
            span,
            ..Suggestion::default()
        });
    }
    suggestions
}

/// Commands whose arguments are directories.
const DIRECTORY_COMMANDS: &[&str] = &["cd", "pushd", "rmdir"];

/// The words of the command the cursor is in, before the word being completed.
fn current_command(prefix: &str) -> Vec<String> {
    let start = prefix
        .rfind(['|', ';', '&', '(', '{', '`'])
        .map_or(0, |i| i + 1);
    prefix[start..]
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// After `shark show`, `why`, `replay` (and `restore ... --run`): run ids are completed;
/// `Some(true)` when only ids fit there.
fn run_id_position(command: &[String]) -> Option<bool> {
    let words: Vec<&str> = command.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["shark", "show" | "why"] => Some(true),
        ["shark", "replay"] => Some(false),
        [.., "--run"] if words.first() == Some(&"shark") => Some(true),
        _ => None,
    }
}

/// Recent run ids starting with `word` (with their commands as descriptions), then paths
/// unless only ids fit.
fn run_ids(ctx: &Context, word: &str, only: bool) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = ctx
        .runs
        .iter()
        .filter(|(id, _)| id.starts_with(word))
        .map(|(id, _)| (id.clone(), true))
        .collect();
    if !only {
        out.extend(paths(ctx, word));
    }
    out
}

/// Where the word being completed starts: after the last unescaped blank or operator.
fn word_start(before: &str) -> usize {
    let bytes = before.as_bytes();
    let mut i = bytes.len();
    while i > 0 {
        let c = bytes[i - 1];
        let escaped = i >= 2 && bytes[i - 2] == b'\\';
        if !escaped && (c.is_ascii_whitespace() || b"|;&()<>".contains(&c)) {
            break;
        }
        i -= 1;
    }
    i
}

/// Whether a word after `prefix` names a command.
fn command_position(prefix: &str) -> bool {
    let t = prefix.trim_end();
    if t.is_empty() || t.ends_with(['|', ';', '&', '(', '{', '`']) || t.ends_with("$(") {
        return true;
    }
    let last = t.rsplit(char::is_whitespace).next().unwrap_or("");
    matches!(
        last,
        "fresh:"
            | "net:"
            | "host:"
            | "then"
            | "do"
            | "else"
            | "elif"
            | "if"
            | "while"
            | "until"
            | "time"
            | "!"
            | "sudo"
            | "exec"
            | "command"
            | "builtin"
            | "nohup"
            | "env"
    )
}

fn commands(ctx: &Context, word: &str) -> Vec<String> {
    let mut found: BTreeSet<String> = BTreeSet::new();
    let mut add = |name: &str| {
        if name.starts_with(word) {
            found.insert(name.to_owned());
        }
    };
    BUILTINS.iter().for_each(|b| add(b));
    ctx.names.iter().for_each(|n| add(n));
    for dir in &ctx.path {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with(word) {
                continue;
            }
            let executable = e
                .path()
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            if executable {
                add(name);
            }
        }
    }
    found.into_iter().collect()
}

/// Paths starting with `word` (which may hold `~/` and `\ `), directories with a trailing
/// `/` and no space after them.
fn paths(ctx: &Context, word: &str) -> Vec<(String, bool)> {
    let (dir_part, file_part) = match word.rfind('/') {
        Some(i) => (&word[..=i], &word[i + 1..]),
        None => ("", word),
    };
    let dir = expand(ctx, &unescape(dir_part));
    let file_prefix = unescape(file_part);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, bool)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            if !name.starts_with(&file_prefix)
                || (name.starts_with('.') && !file_prefix.starts_with('.'))
            {
                return None;
            }
            let is_dir = e.path().is_dir();
            let mut value = format!("{dir_part}{}", escape(&name));
            if is_dir {
                value.push('/');
            }
            Some((value, !is_dir))
        })
        .collect();
    out.sort();
    out
}

/// The directory a completed word's directory part names.
fn expand(ctx: &Context, dir: &str) -> PathBuf {
    let dir = match (dir.strip_prefix('~'), &ctx.home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            format!("{}{rest}", home.display())
        }
        _ => dir.to_owned(),
    };
    if dir.is_empty() {
        ctx.cwd.clone()
    } else {
        ctx.cwd.join(Path::new(&dir))
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// Backslash-escapes the characters bash would split or expand.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_whitespace() || "\\'\"`$&|;<>()*?[]{}!#~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(s: Vec<Suggestion>) -> Vec<String> {
        s.into_iter().map(|s| s.value).collect()
    }

    #[test]
    fn paths_relative_to_the_session_cwd() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data dir")).unwrap();
        std::fs::write(dir.path().join("data dir/a.tif"), "").unwrap();
        std::fs::write(dir.path().join("dem.tif"), "").unwrap();
        let ctx = Context {
            cwd: dir.path().to_path_buf(),
            ..Context::default()
        };
        assert_eq!(
            values(suggest(&ctx, "cat d", 5)),
            ["data\\ dir/", "dem.tif"]
        );
        assert_eq!(
            values(suggest(&ctx, "ls data\\ dir/", 13)),
            ["data\\ dir/a.tif"]
        );
        let s = suggest(&ctx, "cat de", 6);
        assert_eq!(
            (s[0].span.start, s[0].span.end, s[0].append_whitespace),
            (4, 6, true)
        );
    }

    #[test]
    fn commands_in_command_position() {
        let state = ShellState {
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            functions: [(b"greet".to_vec(), b"greet () \n{ \n    echo hi\n}".to_vec())].into(),
            aliases: b"alias ll='ls -l'".to_vec(),
            cwd: "/".into(),
            ..ShellState::default()
        };
        let ctx = Context::of(&state);
        assert!(values(suggest(&ctx, "gre", 3)).contains(&"greet".to_string()));
        assert!(values(suggest(&ctx, "echo x | l", 10)).contains(&"ll".to_string()));
        assert!(values(suggest(&ctx, "fresh: ec", 9)).contains(&"echo".to_string()));
        assert!(values(suggest(&ctx, "ba", 2)).contains(&"bash".to_string()));
    }
}

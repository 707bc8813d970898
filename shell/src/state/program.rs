//! The program a step runs: bash reads it as the script itself (same name, so `$0`,
//! `$BASH_SOURCE` and the `NAME: line N:` of error messages are the script's), with the step's
//! text at the step's own line of the script, so that `$LINENO`, `BASH_LINENO` and bash's own
//! messages (syntax errors included) name the lines bash would name.
//!
//! - Line 1 recreates the state: it changes to the working directory, then evaluates one
//!   quoted script of `declare -p`, `declare -f`, `alias -p`, `trap -p`, `shopt -p` and
//!   `set +o` lines, the directory stack and the umask.
//! - Functions the script defined by a step of their own are defined again from their own
//!   text at their own lines ([`Origin`]), so that line numbers inside them are right too.
//! - The line before the step turns `set -x` and `set -v` back on and sets `$?` and `$_` (a
//!   function that removes itself, in an `&&` list so that `set -e` and ERR traps let it be;
//!   `PIPESTATUS`, when the step reads it, by a pipeline of subshells), all in a group whose
//!   stderr, and so whose trace, goes nowhere.
//! - The step's text, then [`dump::postlude`] on the next line (none after a step bash
//!   cannot parse: it ends the script with bash's own message, at the script's own lines).

use std::collections::BTreeMap;

use super::{ansi_quote, dump, ShellState};

/// One step to run.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// Its text, as in the script.
    pub text: &'a [u8],
    /// The 1-based line of the script it starts on.
    pub line: usize,
    /// Whether it is the script's last: the EXIT trap fires at its end.
    pub last: bool,
    /// `$0`, when bash is given another name for the program (an absolute script path).
    pub dollar0: Option<&'a [u8]>,
    /// Bash cannot parse it (it holds a syntax error, and runs to the script's end): nothing
    /// follows it.
    pub unparsed: bool,
}

/// Where the script defined a function: the first line and the text of the step that did,
/// when that step was exactly the function's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Its first line.
    pub line: usize,
    /// The definition as the script wrote it.
    pub text: Vec<u8>,
}

/// Variables bash sets at startup when they are not in the environment: a state without them
/// had them unset, so the program unsets them.
const PREDEFINED: &[&str] = &[
    "IFS",
    "OPTERR",
    "OPTIND",
    "PS4",
    "PATH",
    "SHELL",
    "TERM",
    "PS1",
    "PS2",
    "MAILCHECK",
    "HISTFILE",
    "HISTSIZE",
    "HISTFILESIZE",
];

/// Options `shopt -p` lists that cannot be set.
const READ_ONLY_SHOPTS: &[&[u8]] = &[b"login_shell", b"restricted_shell"];

/// Where a program runs.
#[derive(Debug, Clone, Copy)]
pub struct Setting<'a> {
    /// Bash starts elsewhere than the state's working directory (where the program is found)
    /// and changes to it first.
    pub cd: bool,
    /// Where the dump goes ([`super::DUMP_DIR`] in the sandbox).
    pub dump_dir: &'a str,
    /// Where standard input (a regular file) is when the step starts.
    pub stdin_at: Option<u64>,
    /// Files to source first, from where bash starts (the libraries of functions the script
    /// defined in files it sourced, made again under the names bash knew them by).
    pub libraries: &'a [Vec<u8>],
    /// A history file to load before the step (a line of the interactive shell that looks
    /// at the history): the `history` builtin then lists it, ending with the line itself, which
    /// the interactive shell records before running it.
    pub history: Option<&'a [u8]>,
}

/// The setting of a step in the sandbox.
pub const SANDBOX: Setting<'static> = Setting {
    cd: true,
    dump_dir: super::DUMP_DIR,
    stdin_at: None,
    libraries: &[],
    history: None,
};

/// The program for `step` in `state`.
pub fn generate(
    state: &ShellState,
    step: &Step<'_>,
    origins: &BTreeMap<Vec<u8>, Origin>,
    setting: Setting<'_>,
) -> Vec<u8> {
    let line = step.line.max(1);
    let mut lines: Vec<Vec<u8>> = vec![Vec::new(); line];
    lines[0] = prelude(state, step, setting);
    for origin in origins.values() {
        place(&mut lines, origin, line);
    }
    let ret = restore_status(state, step.text);
    let slot = if line == 1 { 0 } else { line - 2 };
    join(&mut lines[slot], &ret);
    if line == 1 {
        lines[0].extend_from_slice(b"; ");
    }
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        out.extend_from_slice(l);
        if i + 1 < line {
            out.push(b'\n');
        }
    }
    out.extend_from_slice(step.text);
    if !step.unparsed {
        out.push(b'\n');
        out.extend_from_slice(
            dump::postlude(step.last, setting.dump_dir, setting.stdin_at).as_bytes(),
        );
    }
    out
}

/// The group that turns tracing back on and sets `$?`, `$_` (and `PIPESTATUS` if the step
/// reads it).
fn restore_status(state: &ShellState, text: &[u8]) -> Vec<u8> {
    let mut ret = b"{ ".to_vec();
    for (flag, cmd) in [
        (b'x', &b"builtin set -x; "[..]),
        (b'v', b"builtin set -v; "),
    ] {
        if state.flags.contains(&flag) {
            ret.extend_from_slice(cmd);
        }
    }
    let last = ansi_quote(&state.lastarg);
    let uses_pipestatus = text.windows(10).any(|w| w == b"PIPESTATUS");
    if uses_pipestatus && state.pipestatus.len() > 1 {
        // A pipeline leaves `$_` as it was: set it first.
        ret.extend_from_slice(b"builtin unset -f __shark_ret; : ");
        ret.extend_from_slice(&last);
        for (i, status) in state.pipestatus.iter().enumerate() {
            let sep = if i == 0 { "; " } else { " | " };
            ret.extend_from_slice(format!("{sep}(exit {status})").as_bytes());
        }
    } else {
        ret.extend_from_slice(format!("__shark_ret {} ", state.status).as_bytes());
        ret.extend_from_slice(&last);
        ret.extend_from_slice(b" && : ");
        ret.extend_from_slice(&last);
    }
    ret.extend_from_slice(b"; } 2>/dev/null");
    ret
}

/// A program for bash outside the sandbox (`host:` lines of the interactive shell): the
/// state, then `text`; nothing is dumped.
pub fn host(state: &ShellState, text: &[u8]) -> Vec<u8> {
    let step = Step {
        text,
        line: 1,
        last: false,
        dollar0: None,
        unparsed: true,
    };
    let setting = Setting {
        cd: false,
        dump_dir: "",
        stdin_at: None,
        libraries: &[],
        history: None,
    };
    generate(state, &step, &BTreeMap::new(), setting)
}

/// Appends `cmd` to a line, after `; ` when the line holds something already.
fn join(line: &mut Vec<u8>, cmd: &[u8]) {
    if !line.is_empty() {
        line.extend_from_slice(b" ; ");
    }
    line.extend_from_slice(cmd);
}

/// Puts a function's own definition at its lines, if they are free and before the step's.
fn place(lines: &mut [Vec<u8>], origin: &Origin, step_line: usize) {
    let parts: Vec<&[u8]> = origin.text.split(|&b| b == b'\n').collect();
    let first = origin.line.max(1) - 1;
    let end = first + parts.len();
    // Line 1 holds the prelude; the line before the step gets the group that sets `$?`
    // appended, which a here-document's delimiter line cannot take.
    let slot = step_line.saturating_sub(2);
    let heredoc = origin.text.windows(2).any(|w| w == b"<<");
    if first == 0 || end >= step_line || (heredoc && end - 1 == slot) {
        return;
    }
    if lines[first..end].iter().any(|l| !l.is_empty()) {
        return;
    }
    for (i, part) in parts.into_iter().enumerate() {
        lines[first + i] = part.to_vec();
    }
}

/// Line 1: back to the working directory, then the state in one quoted script.
fn prelude(state: &ShellState, step: &Step<'_>, setting: Setting<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    for library in setting.libraries {
        // No search of PATH: the library is where bash starts.
        out.extend_from_slice(b"{ PATH= builtin source -- ");
        out.extend_from_slice(&ansi_quote(library));
        out.extend_from_slice(b"; } 2>/dev/null; ");
    }
    if setting.cd {
        out.extend_from_slice(b"builtin cd -L -- ");
        out.extend_from_slice(&ansi_quote(state.cwd.as_os_str().as_encoded_bytes()));
        out.extend_from_slice(b" 2>/dev/null; ");
    }
    if let Some(name) = step.dollar0 {
        out.extend_from_slice(b"BASH_ARGV0=");
        out.extend_from_slice(&ansi_quote(name));
        out.extend_from_slice(b"; ");
    }
    out.extend_from_slice(b"builtin eval -- ");
    out.extend_from_slice(&ansi_quote(&restore(state)));
    if let Some(history) = setting.history {
        out.extend_from_slice(b"; builtin history -r ");
        out.extend_from_slice(&ansi_quote(history));
    }
    out
}

/// The script that recreates the state (evaluated on line 1).
fn restore(state: &ShellState) -> Vec<u8> {
    let mut r: Vec<u8> =
        b"__shark_ret() { builtin unset -f __shark_ret; return \"$1\"; }\n".to_vec();
    r.extend_from_slice(b"builtin unset -v OLDPWD");
    if state.dumped {
        for name in PREDEFINED {
            let declared =
                state.vars.contains_key(name.as_bytes()) || state.env_var(name).is_some();
            if !declared {
                r.push(b' ');
                r.extend_from_slice(name.as_bytes());
            }
        }
    }
    r.push(b'\n');
    if !state.dumped {
        if let Some(old) = state.env_var("OLDPWD") {
            r.extend_from_slice(b"builtin export OLDPWD=");
            r.extend_from_slice(&ansi_quote(old.as_encoded_bytes()));
            r.push(b'\n');
        }
    }
    for text in state.vars.values().chain(state.functions.values()) {
        r.extend_from_slice(text);
        r.push(b'\n');
    }
    for line in state.exported_functions.split(|&b| b == b'\n') {
        if let Some(name) = line.strip_prefix(b"declare -fx ") {
            r.extend_from_slice(b"builtin export -f -- ");
            r.extend_from_slice(name);
            r.push(b'\n');
        }
    }
    for part in [&state.aliases, &b"\n".to_vec()] {
        r.extend_from_slice(part);
    }
    for dir in state.dirstack.iter().rev() {
        r.extend_from_slice(b"builtin pushd -n -- ");
        r.extend_from_slice(&ansi_quote(dir));
        r.extend_from_slice(b" >/dev/null\n");
    }
    // Copies of stdout and stderr first, while those are still the step's own; then files;
    // stdout and stderr last.
    let mut fds: Vec<&(Vec<u8>, Vec<u8>)> = state.fds.iter().collect();
    fds.sort_by_key(|(fd, what)| {
        let n: u32 = std::str::from_utf8(fd)
            .ok()
            .and_then(|f| f.parse().ok())
            .unwrap_or(0);
        (n <= 2, !what.starts_with(b">&"), n)
    });
    for (fd, what) in fds {
        r.extend_from_slice(&reopen(fd, what));
    }
    if !state.umask.is_empty() {
        r.extend_from_slice(b"builtin umask ");
        r.extend_from_slice(&state.umask);
        r.push(b'\n');
    }
    r.extend_from_slice(&state.traps);
    r.push(b'\n');
    r.extend_from_slice(&options(&state.options));
    r
}

/// Opens a file again as the shell had it open (at the same offset, for reading).
fn reopen(fd: &[u8], what: &[u8]) -> Vec<u8> {
    let fd = String::from_utf8_lossy(fd);
    if !fd.bytes().all(|b| b.is_ascii_digit()) {
        return Vec::new();
    }
    if what == b">&1" || what == b">&2" {
        let to = what[2] as char;
        return format!("exec {fd}>&{to}\n").into_bytes();
    }
    let mut parts = what.splitn(3, |&b| b == b' ');
    let (Some(mode), Some(offset), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
        return Vec::new();
    };
    let op: &[u8] = match mode {
        b"r" => b"<",
        b"rw" => b"<>",
        _ => b">>",
    };
    // `exec` itself: after `builtin`, the redirections would be the builtin's, temporary.
    let mut out = format!("exec {fd}").into_bytes();
    out.extend_from_slice(op);
    out.extend_from_slice(&ansi_quote(path));
    let offset = std::str::from_utf8(offset).unwrap_or("0");
    if op != b">>" && offset != "0" {
        // Reading moves a file's offset on: read what had been read (bytes, in the C locale).
        out.extend_from_slice(
            format!(
                "\nLC_ALL=C builtin read -r -N {offset} -u {fd} __shark_x; builtin unset -v __shark_x"
            )
            .as_bytes(),
        );
    }
    out.push(b'\n');
    out
}

/// The option lines, but xtrace and verbose (turned on apart) and options that cannot be set.
fn options(options: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in options.split(|&b| b == b'\n') {
        let name = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
        if name == b"xtrace" || name == b"verbose" || READ_ONLY_SHOPTS.contains(&name) {
            continue;
        }
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

//! What a step can see of the shell state, which is what its key depends on.
//!
//! A step's key holds the whole exported environment, the shell options, aliases, traps and
//! umask (few, and rarely changed), and of the shell variables and functions only those its
//! text names: every identifier in the text (in commands, strings, arithmetic, here-document
//! bodies alike) is a name it may use; a function it names brings in the names in its body,
//! and a variable it names brings in the names in its value (arithmetic evaluates names held
//! in values; a nameref names its target), until nothing new comes in. A step that uses
//! `eval`, `source`, indirect expansion (`${!x}`), namerefs or lists variables or functions
//! (`declare -p`, `set`, `compgen`...) keys on the whole state. `$?`, `$_`, the positional
//! parameters, the directory stack and the step's line are keyed only when the text uses
//! them.
//!
//! The key is a list of named entries (the exported variables under their own names, the rest
//! under names no variable can have), so that `shark why` can name what changed, and so that
//! the step can be run again from its key alone (`shark replay`).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use super::program::{Origin, Step};
use super::ShellState;

/// Variables every step sees implicitly (word splitting, globbing, traces).
const ALWAYS: &[&str] = &["IFS", "GLOBIGNORE", "PS4", "BASH_XTRACEFD"];

/// Words that make a step key on the whole state wherever they are.
const WHOLE: &[&str] = &["eval", "source", "compgen"];

/// Text that makes a step key on the whole state: indirect expansion, namerefs, listings of
/// variables or functions.
const DYNAMIC: &[&str] = &[
    "${!",
    "declare -n",
    "local -n",
    "typeset -n",
    "declare -p",
    "typeset -p",
    "declare -f",
    "declare -F",
    "typeset -f",
    "typeset -F",
    "export -p",
    "readonly -p",
];

/// Builtins that list every variable (or every exported or readonly one) when given nothing.
const LISTINGS: &[&[u8]] = &[b"set", b"declare", b"typeset", b"export", b"readonly"];

fn is_boundary(b: u8) -> bool {
    b" \t\n;&|({`".contains(&b)
}

fn ends_command(rest: &[u8]) -> bool {
    rest.iter()
        .take_while(|b| !b"\n;&|)`".contains(b))
        .all(|b| *b == b' ' || *b == b'\t')
}

/// Whether `text` uses the state in ways its names do not show: `.` (source), indirect
/// expansion, namerefs, listings.
fn dynamic(text: &[u8]) -> bool {
    let has = |n: &[u8]| text.windows(n.len()).any(|w| w == n);
    if DYNAMIC.iter().any(|d| has(d.as_bytes())) {
        return true;
    }
    let at_command = |i: usize| i == 0 || is_boundary(text[i - 1]);
    // `.` as a command word.
    let dot = text
        .windows(2)
        .enumerate()
        .any(|(i, w)| w[0] == b'.' && (w[1] == b' ' || w[1] == b'\t') && at_command(i));
    dot || LISTINGS.iter().any(|word| {
        text.windows(word.len())
            .enumerate()
            .any(|(i, w)| w == *word && at_command(i) && ends_command(&text[i + word.len()..]))
    })
}

/// What a step reaches.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reach {
    /// It may see anything: eval, source, indirect expansion, listings.
    pub whole: bool,
    /// The shell variables it names, directly or through functions and values.
    pub vars: BTreeSet<Vec<u8>>,
    /// The functions it names, directly or through other functions.
    pub functions: BTreeSet<Vec<u8>>,
    /// It uses `$?` (or `exit`/`return` without a status).
    pub status: bool,
    /// It uses `$_`.
    pub lastarg: bool,
    /// It uses the positional parameters.
    pub args: bool,
    /// It uses `cd`, `pushd`, `popd`, `dirs` or `~` (OLDPWD, CDPATH, the directory stack).
    pub dirs: bool,
    /// It uses line numbers (`$LINENO`, `BASH_LINENO`, `caller`).
    pub line: bool,
}

/// The identifiers in `text`: maximal runs of letters, digits and `_` not starting with a
/// digit.
pub fn identifiers(text: &[u8]) -> BTreeSet<&[u8]> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < text.len() {
        if word(text[i]) {
            let start = i;
            while i < text.len() && word(text[i]) {
                i += 1;
            }
            if !text[start].is_ascii_digit() {
                out.insert(&text[start..i]);
            }
        } else {
            i += 1;
        }
    }
    out
}

impl Reach {
    /// What `step` reaches in `state`.
    pub fn of(state: &ShellState, text: &[u8]) -> Reach {
        let mut reach = Reach::default();
        let words = identifiers(text);
        let has = |w: &str| words.contains(w.as_bytes());
        let contains = |n: &[u8]| text.windows(n.len()).any(|w| w == n);
        reach.whole = WHOLE.iter().any(|w| has(w)) || dynamic(text);
        reach.status = contains(b"$?") || contains(b"${?") || has("exit") || has("return");
        reach.lastarg = contains(b"$_") || contains(b"${_");
        reach.args = has("shift")
            || has("getopts")
            || has("for")
            || text.windows(2).any(|w| {
                (w[0] == b'$' || w[0] == b'{') && (w[1].is_ascii_digit() || b"@*#".contains(&w[1]))
            });
        reach.dirs = ["cd", "pushd", "popd", "dirs"].iter().any(|w| has(w)) || contains(b"~");
        let mut pending: Vec<Vec<u8>> = words.iter().map(|w| w.to_vec()).collect();
        pending.extend(ALWAYS.iter().map(|w| w.as_bytes().to_vec()));
        if reach.dirs {
            pending.extend([b"OLDPWD".to_vec(), b"CDPATH".to_vec()]);
        }
        if has("getopts") {
            pending.extend([b"OPTIND".to_vec(), b"OPTARG".to_vec(), b"OPTERR".to_vec()]);
        }
        // Traps may run during any step; aliases expand in it.
        pending.extend(identifiers(&state.traps).iter().map(|w| w.to_vec()));
        pending.extend(identifiers(&state.aliases).iter().map(|w| w.to_vec()));
        reach.close(state, pending);
        reach.line = reach.line || has("LINENO") || has("BASH_LINENO") || has("caller");
        reach
    }

    /// Follows names through function bodies and variable values until nothing is new.
    fn close(&mut self, state: &ShellState, mut pending: Vec<Vec<u8>>) {
        let mut seen: BTreeSet<Vec<u8>> = BTreeSet::new();
        while let Some(name) = pending.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(body) = state.functions.get(&name) {
                self.functions.insert(name.clone());
                let inner = identifiers(body);
                self.whole |= WHOLE.iter().any(|w| inner.contains(w.as_bytes())) || dynamic(body);
                self.line |= inner.contains(&b"LINENO"[..]) || inner.contains(&b"caller"[..]);
                pending.extend(inner.iter().map(|w| w.to_vec()));
            }
            if let Some(decl) = state.vars.get(&name) {
                self.vars.insert(name.clone());
                pending.extend(identifiers(decl).iter().map(|w| w.to_vec()));
            }
        }
    }
}

/// The entries a step's key is made of: the exported environment under its own names, then
/// the step itself and the state it reaches under names no variable can have (`%command`,
/// `$name` for a shell variable, `name()` for a function...).
pub fn key_entries(
    state: &ShellState,
    step: &Step<'_>,
    origins: &BTreeMap<Vec<u8>, Origin>,
) -> Vec<(OsString, OsString)> {
    let reach = Reach::of(state, step.text);
    let mut out: Vec<(OsString, OsString)> = state.env.clone();
    let mut put = |name: &[u8], value: &[u8]| {
        out.push((
            OsString::from_vec(name.to_vec()),
            OsString::from_vec(value.to_vec()),
        ))
    };
    put(b"%command", step.text);
    if reach.line || reach.whole {
        put(b"%line", step.line.to_string().as_bytes());
    }
    // The EXIT trap fires at the end of the last step only.
    if step.last && state.has_trap("EXIT") {
        put(b"%last", b"yes");
    }
    let exported: BTreeSet<&[u8]> = state.env.iter().map(|(k, _)| k.as_bytes()).collect();
    for (name, decl) in &state.vars {
        if (reach.whole || reach.vars.contains(name)) && !exported.contains(name.as_slice()) {
            let mut key = b"$".to_vec();
            key.extend_from_slice(name);
            put(&key, decl);
        }
    }
    for (name, body) in &state.functions {
        if reach.whole || reach.functions.contains(name) {
            let mut key = name.clone();
            key.extend_from_slice(b"()");
            let mut value = body.clone();
            if let Some(origin) = origins.get(name).filter(|_| reach.line || reach.whole) {
                value.extend_from_slice(format!("\n#line {}", origin.line).as_bytes());
            }
            put(&key, &value);
        }
    }
    put(b"%options", &state.options);
    put(b"%flags", &flags(&state.flags));
    put(b"%aliases", &state.aliases);
    put(b"%traps", &state.traps);
    put(b"%umask", &state.umask);
    if !state.fds.is_empty() {
        let fds: Vec<u8> = state
            .fds
            .iter()
            .flat_map(|(fd, what)| [fd.as_slice(), b" ", what, b"\n"].concat())
            .collect();
        put(b"%fds", &fds);
    }
    if !state.exported_functions.is_empty() {
        put(b"%exported-functions", &state.exported_functions);
    }
    if reach.status || reach.whole {
        put(b"%status", state.status.to_string().as_bytes());
    }
    if reach.lastarg || reach.whole {
        put(b"%lastarg", &state.lastarg);
    }
    if reach.args || reach.whole {
        let mut all = Vec::new();
        for a in &state.args {
            all.extend_from_slice(a.as_bytes());
            all.push(0);
        }
        put(b"%args", &all);
    }
    if reach.dirs || reach.whole {
        put(b"%dirs", &state.dirstack.join(&0));
    }
    out
}

/// The flags of `$-` that change what a step does (`x`, `v`; the others are in the options).
fn flags(all: &[u8]) -> Vec<u8> {
    all.iter().copied().filter(|b| b"xv".contains(b)).collect()
}

/// Describes a key entry's name for `shark why`: `variable NAME`, `function NAME`...
pub fn describe(name: &str) -> String {
    if let Some(var) = name.strip_prefix('$') {
        return format!("variable {var}");
    }
    if let Some(f) = name.strip_suffix("()") {
        return format!("function {f}");
    }
    match name {
        "%command" => "the command".into(),
        "%line" => "its line in the script".into(),
        "%last" => "whether it is the script's last command".into(),
        "%options" => "the shell options".into(),
        "%flags" => "set -x or set -v".into(),
        "%aliases" => "the aliases".into(),
        "%traps" => "the traps".into(),
        "%umask" => "the umask".into(),
        "%exported-functions" => "the exported functions".into(),
        "%status" => "$? (the status of the command before)".into(),
        "%lastarg" => "$_".into(),
        "%args" => "the positional parameters".into(),
        "%dirs" => "the directory stack".into(),
        "%fds" => "the files the shell has open".into(),
        other => format!("variable {other}"),
    }
}

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

/// Builtins that take variable names as arguments: a name they are given through an expansion
/// is one the text does not show.
const NAME_TAKERS: &[&[u8]] = &[
    b"read",
    b"unset",
    b"export",
    b"declare",
    b"typeset",
    b"local",
    b"readonly",
    b"mapfile",
    b"readarray",
];

/// Whether a builtin of [`NAME_TAKERS`] (or `printf -v`) is given a name through an expansion
/// (`read -r "$var"`, `printf -v "$name"`); the words after redirections do not count.
fn dynamic_names(text: &[u8]) -> bool {
    let words = shell_words(text);
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let takes = NAME_TAKERS.contains(&w);
        let printf = w == b"printf";
        if takes || printf {
            let mut j = i + 1;
            while j < words.len() && !is_separator(words[j]) {
                let arg = words[j];
                if arg.starts_with(b"<") || arg.starts_with(b">") {
                    j += 2;
                    continue;
                }
                let expanded = arg.starts_with(b"$") || arg.starts_with(b"\"$");
                if expanded && (takes || words[j - 1] == b"-v") {
                    return true;
                }
                j += 1;
            }
            i = j;
        }
        i += 1;
    }
    false
}

/// `text` cut at blanks, with `;`, `|`, `&`, newlines and parentheses as words of their own
/// (a rough cut: quotes are not followed, which only makes a step key on more).
fn shell_words(text: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &b) in text.iter().enumerate() {
        let sep = b";|&\n()".contains(&b);
        if b == b' ' || b == b'\t' || sep {
            if let Some(s) = start.take() {
                out.push(&text[s..i]);
            }
            if sep {
                out.push(&text[i..=i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
}

fn is_separator(word: &[u8]) -> bool {
    word.len() == 1 && b";|&\n()".contains(&word[0])
}

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
    if DYNAMIC.iter().any(|d| has(d.as_bytes())) || dynamic_names(text) {
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
    /// Every name it may use or set, whether the state has it or not.
    pub names: BTreeSet<Vec<u8>>,
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
            || has("set")
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
        while let Some(name) = pending.pop() {
            if !self.names.insert(name.clone()) {
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
    // An absolute script name is given to bash relative to where it starts, and `$0` set
    // back: the name bash is given (in the argv) does not tell `/a/s.sh` from `a/s.sh`.
    if let Some(dollar0) = step.dollar0 {
        put(b"%dollar0", dollar0);
    }
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

/// The state after a reused step: the recorded state after it where the step could have
/// changed something (what it reaches, and what every step sets: `$?`, options, traps...),
/// and `current` for the rest, which the step could not see and so did not change (the
/// recording was made where the rest may have been otherwise).
pub fn merge_reused(current: &ShellState, recorded: ShellState, text: &[u8]) -> ShellState {
    let reach = Reach::of(current, text);
    // A new shell's variables are bash's own defaults, from an environment the key holds.
    if reach.whole || !current.dumped {
        return recorded;
    }
    let mut next = recorded;
    let keep = |name: &Vec<u8>| !reach.names.contains(name);
    // Variables and functions it does not name are as they are now.
    next.vars
        .retain(|name, _| !keep(name) || current.vars.contains_key(name));
    for (name, decl) in &current.vars {
        if keep(name) {
            next.vars.insert(name.clone(), decl.clone());
        }
    }
    next.functions
        .retain(|name, _| !keep(name) || current.functions.contains_key(name));
    for (name, body) in &current.functions {
        if keep(name) {
            next.functions.insert(name.clone(), body.clone());
            match current.function_lines.get(name) {
                Some(at) => next.function_lines.insert(name.clone(), at.clone()),
                None => next.function_lines.remove(name),
            };
        }
    }
    if !reach.args {
        next.args = current.args.clone();
    }
    if !reach.dirs {
        next.dirstack = current.dirstack.clone();
    }
    next
}

/// A step rebuilt from its key ([`key_entries`]): the state it reaches and the step, for
/// `shark replay`; `None` when the entries are not a step's.
pub fn from_key(entries: &[(OsString, OsString)]) -> Option<(ShellState, KeyedStep)> {
    let mut state = ShellState {
        dumped: true,
        ..ShellState::default()
    };
    let mut step = KeyedStep::default();
    let mut is_step = false;
    let split0 = |v: &[u8]| -> Vec<Vec<u8>> {
        v.split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    };
    for (name, value) in entries {
        let (n, v) = (name.as_bytes(), value.as_bytes());
        match n {
            b"%command" => {
                is_step = true;
                step.text = v.to_vec();
            }
            b"%line" => step.line = std::str::from_utf8(v).ok()?.parse().ok()?,
            b"%dollar0" => step.dollar0 = Some(v.to_vec()),
            b"%last" => step.last = true,
            b"%options" => state.options = v.to_vec(),
            b"%flags" => state.flags = v.to_vec(),
            b"%aliases" => state.aliases = v.to_vec(),
            b"%traps" => state.traps = v.to_vec(),
            b"%umask" => state.umask = v.to_vec(),
            b"%exported-functions" => state.exported_functions = v.to_vec(),
            b"%status" => state.status = std::str::from_utf8(v).ok()?.parse().ok()?,
            b"%lastarg" => state.lastarg = v.to_vec(),
            b"%args" => state.args = split0(v).into_iter().map(OsString::from_vec).collect(),
            b"%dirs" => state.dirstack = split0(v),
            b"%fds" => {
                for line in v.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    let mut parts = line.splitn(2, |&b| b == b' ');
                    let (fd, what) = (parts.next()?, parts.next()?);
                    state.fds.push((fd.to_vec(), what.to_vec()));
                }
            }
            _ if n.starts_with(b"$") => {
                state.vars.insert(n[1..].to_vec(), v.to_vec());
            }
            _ if n.ends_with(b"()") => {
                let body = match v.windows(7).rposition(|w| w == b"\n#line ") {
                    Some(at) => &v[..at],
                    None => v,
                };
                state
                    .functions
                    .insert(n[..n.len() - 2].to_vec(), body.to_vec());
            }
            _ if n.starts_with(b"%") => {}
            _ => state.env.push((name.clone(), value.clone())),
        }
    }
    step.line = step.line.max(1);
    is_step.then_some((state, step))
}

/// A step as its key holds it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeyedStep {
    /// Its text.
    pub text: Vec<u8>,
    /// Its line (1 when its line was not keyed).
    pub line: usize,
    /// It was the script's last and its EXIT trap fired at its end.
    pub last: bool,
    /// `$0`, when the script's name was absolute (see [`key_entries`]).
    pub dollar0: Option<Vec<u8>>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ShellState {
        let var = |n: &str, v: &str| (n.as_bytes().to_vec(), v.as_bytes().to_vec());
        ShellState {
            vars: [
                var("x", "declare -- x=\"1\""),
                var("y", "declare -- y=\"2\""),
                var("expr", "declare -- expr=\"y+1\""),
                var("IFS", "declare -- IFS=$' \\t\\n'"),
            ]
            .into(),
            functions: [
                var("f", "f () \n{ \n    echo \"$x\"\n}"),
                var("g", "g () \n{ \n    f\n}"),
                var("h", "h () \n{ \n    eval \"$1\"\n}"),
            ]
            .into(),
            ..ShellState::default()
        }
    }

    fn reach(text: &str) -> Reach {
        Reach::of(&state(), text.as_bytes())
    }

    fn names(set: &BTreeSet<Vec<u8>>) -> Vec<String> {
        set.iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect()
    }

    #[test]
    fn names_in_the_text_and_through_functions_and_values() {
        let r = reach("echo \"$y\" > out");
        assert_eq!(names(&r.vars), ["IFS", "y"]);
        assert!(r.functions.is_empty() && !r.whole);
        let r = reach("g | sort");
        assert_eq!(names(&r.functions), ["f", "g"]);
        assert_eq!(names(&r.vars), ["IFS", "x"]);
        // Arithmetic reads names held in values.
        let r = reach("echo $((expr))");
        assert_eq!(names(&r.vars), ["IFS", "expr", "y"]);
    }

    #[test]
    fn dynamic_uses_reach_everything() {
        for text in [
            "eval \"$cmd\"",
            "source lib.sh",
            ". ./lib.sh",
            "echo ${!name}",
            "local -n ref=$1",
            "declare -p",
            "set",
            "x=1; set\n",
            "compgen -v",
            "h 'echo hi'",
        ] {
            assert!(reach(text).whole, "{text}");
        }
        for text in [
            "set -e",
            "declare -A m",
            "echo a.b",
            "cd ..",
            "x=$(date +%s)",
        ] {
            assert!(!reach(text).whole, "{text}");
        }
    }

    #[test]
    fn status_arguments_and_lines_only_when_used() {
        let r = reach("echo hi");
        assert!(!r.status && !r.args && !r.line && !r.lastarg && !r.dirs);
        assert!(reach("echo $?").status);
        assert!(reach("exit").status);
        assert!(reach("echo \"$1\"").args);
        assert!(reach("for a; do echo $a; done").args);
        assert!(reach("shift").args);
        assert!(reach("echo $LINENO").line);
        assert!(reach("cd -").dirs);
        assert!(reach("echo $_").lastarg);
    }

    #[test]
    fn a_reused_step_changes_only_what_it_names() {
        let var = |v: &str| v.as_bytes().to_vec();
        let mut current = state();
        current.dumped = true;
        current
            .vars
            .insert(var("counter"), var("declare -- counter=\"2\""));
        // Recorded where counter was 1 and x was 1; the step set y and created z.
        let mut recorded = state();
        recorded.dumped = true;
        recorded
            .vars
            .insert(var("counter"), var("declare -- counter=\"1\""));
        recorded.vars.insert(var("y"), var("declare -- y=\"9\""));
        recorded.vars.insert(var("z"), var("declare -- z=\"new\""));
        recorded.status = 4;
        let next = merge_reused(&current, recorded, b"y=9; z=new; false");
        assert_eq!(next.vars[&var("counter")], var("declare -- counter=\"2\""));
        assert_eq!(next.vars[&var("y")], var("declare -- y=\"9\""));
        assert_eq!(next.vars[&var("z")], var("declare -- z=\"new\""));
        assert_eq!(next.status, 4);
        // What it unsets is gone.
        let mut recorded = current.clone();
        recorded.vars.remove(&var("x"));
        let next = merge_reused(&current, recorded, b"unset x");
        assert!(!next.vars.contains_key(&var("x")));
    }

    #[test]
    fn the_key_names_what_it_holds_and_rebuilds_the_step() {
        let mut state = state();
        state.env = vec![("PATH".into(), "/bin".into())];
        state.status = 3;
        let step = Step {
            text: b"f; echo $?",
            line: 7,
            last: false,
            dollar0: None,
            unparsed: false,
        };
        let entries = key_entries(&state, &step, &BTreeMap::new());
        let names: Vec<String> = entries
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        for expected in ["PATH", "%command", "$x", "$IFS", "f()", "%status"] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        assert!(!names
            .iter()
            .any(|n| n == "$y" || n == "g()" || n == "%line"));
        let (rebuilt, keyed) = from_key(&entries).unwrap();
        assert_eq!(keyed.text, b"f; echo $?");
        assert_eq!(rebuilt.status, 3);
        assert_eq!(rebuilt.functions[&b"f"[..]], state.functions[&b"f"[..]]);
        assert_eq!(describe("$x"), "variable x");
        assert_eq!(describe("f()"), "function f");
    }
}

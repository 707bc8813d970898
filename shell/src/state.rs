//! Shell state carried from one line to the next, as bash carries it within one process.
//!
//! Each line runs in a fresh bash inside the sandbox. Before the line, bash evaluates the
//! state left by the previous line (variables, functions, aliases, shell options, the working
//! directory); when bash exits, however it exits, an EXIT trap writes the new state to
//! [`STATE_NAME`] and the environment to [`ENV_NAME`] in the directory named by [`DUMP_VAR`]
//! (`/tmp` by default; the executor names the sandbox's private `/dev/shm`, a tmpfs of the
//! run's own, so concurrent shells never share it and the files are no changes to the user's
//! filesystem). The executor reads both back from the sandbox's report: they are not outputs,
//! but they are recorded with the run, so a reused line changes the state exactly as running
//! it did.
//!
//! The state text is passed in the `__SHARK_STATE` environment variable, which makes it part
//! of the environment digest, and so of the weak key: the same line in a different state is a
//! different command.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// The file the EXIT trap writes the shell state to (a bash script).
pub const STATE_NAME: &str = ".shark-state";
/// The file the EXIT trap writes the exported environment to (NUL-separated `NAME=value`).
pub const ENV_NAME: &str = ".shark-env";
/// The scratch file the EXIT trap lists variable names into, beside the dump files.
pub const NAMES_NAME: &str = ".shark-names";
/// The variable naming the directory of the two dump files (default `/tmp`); the executor
/// sets it outside the weak key, and the wrapper unsets it before the line runs.
pub const DUMP_VAR: &str = "__SHARK_DUMP";
/// The variable that carries the state into the next line.
pub const STATE_VAR: &str = "__SHARK_STATE";

/// Variables bash owns or that change on their own; they are never carried.
const NOT_CARRIED: &str = "BASH*|EUID|UID|PPID|SHELLOPTS|BASHOPTS|GROUPS|FUNCNAME|RANDOM|SRANDOM\
|SECONDS|LINENO|HISTCMD|EPOCHREALTIME|EPOCHSECONDS|PIPESTATUS|_|DIRSTACK|PWD|OLDPWD|SHLVL\
|COMP_WORDBREAKS|COLUMNS|LINES|__SHARK_*|__shark_*";

/// The state of the shell between lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellState {
    /// The environment the next line starts with (exported variables).
    pub env: Vec<(OsString, OsString)>,
    /// A bash script that recreates unexported variables, functions, aliases and options.
    pub script: String,
    /// The working directory.
    pub cwd: PathBuf,
    /// Whether the line that left this state ended the shell (`exit`, or a failure under
    /// `set -e`) instead of running to its end.
    pub exited: bool,
}

impl ShellState {
    /// The state of a new shell: this process's environment and working directory.
    pub fn from_process() -> std::io::Result<ShellState> {
        let env = std::env::vars_os()
            .filter(|(k, _)| !k.as_bytes().starts_with(b"__SHARK_"))
            .collect();
        Ok(ShellState {
            env,
            script: String::new(),
            cwd: std::env::current_dir()?,
            exited: false,
        })
    }

    /// The environment a line runs with: the exported variables plus the state script.
    pub fn line_env(&self) -> Vec<(OsString, OsString)> {
        let mut env = self.env.clone();
        env.push((STATE_VAR.into(), self.script.clone().into()));
        env
    }

    /// Reads the state a line left behind from the two files its EXIT trap wrote.
    pub fn from_dump(state: &[u8], env: &[u8]) -> Option<ShellState> {
        let script = String::from_utf8(state.to_vec()).ok()?;
        let cwd = script
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("#cwd "))
            .map(|c| PathBuf::from(unescape_cwd(c)))?;
        let exited = !script.lines().any(|l| l == "#end");
        Some(ShellState {
            env: parse_env(env),
            script,
            cwd,
            exited,
        })
    }
}

fn parse_env(bytes: &[u8]) -> Vec<(OsString, OsString)> {
    bytes
        .split(|&b| b == 0)
        .filter_map(|entry| {
            let eq = entry.iter().position(|&b| b == b'=')?;
            let (k, v) = (&entry[..eq], &entry[eq + 1..]);
            (!k.is_empty() && !k.starts_with(b"__SHARK_")).then(|| {
                (
                    OsStr::from_bytes(k).to_owned(),
                    OsString::from_vec(v.to_vec()),
                )
            })
        })
        .collect()
}

/// The cwd line is written with `\n` and `\\` escaped so the state stays one line per item.
fn unescape_cwd(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            (c, false) => out.push(c),
        }
    }
    out
}

/// The bash program that runs `line` in the carried state and dumps the state at exit.
///
/// `$0` and the positional parameters are set by the caller through bash's own arguments.
pub fn wrap(line: &str) -> String {
    format!(
        r#"builtin eval "${{{STATE_VAR}}}" 2>/dev/null
builtin unset {STATE_VAR}
# Defined after the state, so that a dump function an older shark left in it never runs.
__shark_dump() {{
  local __shark_s=$? __shark_v
  local -a __shark_n=() __shark_e=() __shark_all=()
  # One listing of every variable name, through a file since a command substitution would
  # fork; the expansions by initial letter are the fallback (and cost a scan of all variables
  # each).
  if builtin compgen -v > "$__shark_d/{NAMES_NAME}" 2>/dev/null; then
    builtin mapfile -t __shark_all < "$__shark_d/{NAMES_NAME}"
  else
    __shark_all=({ALL_NAMES})
  fi
  for __shark_v in "${{__shark_all[@]}}"; do
    case $__shark_v in
      {NOT_CARRIED}) ;;
      *) __shark_n+=("$__shark_v"); [[ ${{!__shark_v@a}} == *x* ]] && __shark_e+=("$__shark_v") ;;
    esac
  done
  {{
    (( ${{#__shark_n[@]}} )) && builtin declare -p "${{__shark_n[@]}}"
    builtin declare -f
    builtin alias -p
    builtin shopt -p
    builtin set +o
    __shark_v=${{PWD//\\/\\\\}}
    builtin printf '#cwd %s\n' "${{__shark_v//$'\n'/\\n}}"
    if [[ -v __shark_end ]]; then
      builtin printf 'builtin set --'
      (( ${{#__shark_args[@]}} )) && builtin printf ' %q' "${{__shark_args[@]}}"
      builtin printf '\n#end\n'
    fi
  }} > "$__shark_d/{STATE_NAME}" 2>/dev/null
  {{
    for __shark_v in "${{__shark_e[@]}}"; do
      builtin printf '%s=%s\0' "$__shark_v" "${{!__shark_v}}"
    done
  }} > "$__shark_d/{ENV_NAME}" 2>/dev/null
  return $__shark_s
}}
__shark_d=${{{DUMP_VAR}:-/tmp}}
builtin unset {DUMP_VAR}
builtin trap __shark_dump EXIT
builtin eval -- {quoted}
__shark_s=$?
__shark_args=("$@")
__shark_end=1
builtin exit $__shark_s
"#,
        quoted = single_quote(line),
    )
}

/// Whether `program` (bash's `-c` argument) is a line [`wrap`]ped by some version of shark.
pub fn is_wrapped(program: &str) -> bool {
    program.contains("__shark_dump() {") && program.contains("builtin trap __shark_dump EXIT")
}

/// Every variable name, by initial character, expanded inside bash without a subshell.
const ALL_NAMES: &str = "${!A@} ${!B@} ${!C@} ${!D@} ${!E@} ${!F@} ${!G@} ${!H@} ${!I@} ${!J@} \
${!K@} ${!L@} ${!M@} ${!N@} ${!O@} ${!P@} ${!Q@} ${!R@} ${!S@} ${!T@} ${!U@} ${!V@} ${!W@} \
${!X@} ${!Y@} ${!Z@} ${!a@} ${!b@} ${!c@} ${!d@} ${!e@} ${!f@} ${!g@} ${!h@} ${!i@} ${!j@} \
${!k@} ${!l@} ${!m@} ${!n@} ${!o@} ${!p@} ${!q@} ${!r@} ${!s@} ${!t@} ${!u@} ${!v@} ${!w@} \
${!x@} ${!y@} ${!z@} ${!_@}";

/// Quotes `s` as one bash word.
pub fn single_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs `line` in real bash (outside any sandbox) the way the executor does, in `state`,
    /// and returns the state it leaves; the dump files go to a scratch directory.
    fn step(state: &ShellState, line: &str, dir: &std::path::Path) -> (ShellState, String) {
        let program = wrap(line);
        let out = Command::new("/bin/bash")
            .args(["-c", &program, "shark"])
            .env_clear()
            .envs(state.line_env())
            .env(DUMP_VAR, dir)
            .current_dir(&state.cwd)
            .output()
            .unwrap();
        let next = ShellState::from_dump(
            &std::fs::read(dir.join(STATE_NAME)).unwrap(),
            &std::fs::read(dir.join(ENV_NAME)).unwrap(),
        )
        .unwrap();
        (next, String::from_utf8(out.stdout).unwrap())
    }

    #[test]
    fn variables_functions_aliases_options_and_cwd_carry() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub dir")).unwrap();
        let s0 = ShellState {
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            script: String::new(),
            cwd: dir.path().to_path_buf(),
            exited: false,
        };
        let (s1, _) = step(
            &s0,
            "x='a b'; export Y=1; f() { echo \"f:$1\"; }; shopt -s extglob; cd 'sub dir'",
            dir.path(),
        );
        assert_eq!(s1.cwd, dir.path().join("sub dir"));
        assert!(s1.env.contains(&("Y".into(), "1".into())));
        let (s2, out) = step(
            &s1,
            "echo \"$x\" $Y; f z; shopt -q extglob && echo on; pwd",
            dir.path(),
        );
        assert_eq!(
            out,
            format!("a b 1\nf:z\non\n{}\n", dir.path().join("sub dir").display())
        );
        let (s3, _) = step(&s2, "unset Y; alias ll='ls -l'", dir.path());
        assert!(!s3.env.iter().any(|(k, _)| k == "Y"));
        let (_, out) = step(&s3, "alias ll; echo ${Y-unset}", dir.path());
        assert_eq!(out, "alias ll='ls -l'\nunset\n");
    }

    #[test]
    fn the_fallback_listing_of_names_carries_the_same_state() {
        // Without `compgen` (a bash built without programmable completion) the names come
        // from one expansion per initial letter; the state must not differ.
        let dir = tempfile::tempdir().unwrap();
        let s0 = ShellState {
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            script: String::new(),
            cwd: dir.path().to_path_buf(),
            exited: false,
        };
        let line = "x='a b'; _u=1; export Zed=2; declare -a arr=(1 2); declare -A m=([k]=v)";
        let (with, _) = step(&s0, line, dir.path());
        assert!(
            dir.path().join(NAMES_NAME).exists(),
            "compgen listed the names"
        );
        let (without, _) = step(&s0, &format!("{line}; enable -n compgen"), dir.path());
        // The same lines, perhaps in another order (compgen sorts `_` before lowercase).
        let lines = |s: &ShellState| {
            let mut l: Vec<String> = s.script.lines().map(str::to_owned).collect();
            l.sort();
            l
        };
        assert_eq!(with.env, without.env);
        assert_eq!(lines(&with), lines(&without));
        for name in ["x=", "_u=", "arr=", "m="] {
            assert!(
                with.script.contains(name),
                "{name} missing from {}",
                with.script
            );
        }
        assert!(with.env.contains(&("Zed".into(), "2".into())));
    }

    #[test]
    fn wrapped_lines_are_recognised() {
        assert!(is_wrapped(&wrap("ls")));
        assert!(!is_wrapped("ls; __shark_dump"));
    }

    #[test]
    fn exit_status_survives_the_dump() {
        let dir = tempfile::tempdir().unwrap();
        for (line, code) in [("false", 1), ("exit 7", 7)] {
            let st = Command::new("/bin/bash")
                .args(["-c", &wrap(line)])
                .env(DUMP_VAR, dir.path())
                .status()
                .unwrap();
            assert_eq!(st.code(), Some(code), "{line}");
        }
        assert!(
            dir.path().join(STATE_NAME).exists(),
            "the dump runs on exit too"
        );
    }

    #[test]
    fn cwd_with_newline_and_backslash_round_trips() {
        assert_eq!(unescape_cwd(r"/a\nb\\c"), "/a\nb\\c");
    }
}

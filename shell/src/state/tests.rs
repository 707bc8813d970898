//! The programs run in real bash (outside any sandbox), step after step, as the session runs
//! them: the state each leaves is read back and carried to the next.

use std::collections::BTreeMap;
use std::process::Command;

use super::program::{self, Origin, Setting, Step};
use super::*;

/// A scratch folder where programs are written, run and dump.
struct Bash {
    dir: tempfile::TempDir,
    origins: BTreeMap<Vec<u8>, Origin>,
}

/// What one step printed and left.
struct Ran {
    out: String,
    err: String,
    code: Option<i32>,
    state: Option<ShellState>,
}

impl Bash {
    fn new() -> Bash {
        Bash {
            dir: tempfile::tempdir().unwrap(),
            origins: BTreeMap::new(),
        }
    }

    fn first_state(&self) -> ShellState {
        let work = self.dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        ShellState {
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            cwd: work,
            ..ShellState::default()
        }
    }

    /// Runs `text` at `line` of a script named `s.sh`, in `state`.
    fn step(&self, state: &ShellState, text: impl AsRef<[u8]>, line: usize) -> Ran {
        let step = Step {
            text: text.as_ref(),
            line,
            last: false,
            dollar0: None,
            unparsed: false,
        };
        let dump_dir = self.dir.path().join("shm");
        let _ = std::fs::remove_dir_all(&dump_dir);
        std::fs::create_dir_all(&dump_dir).unwrap();
        let setting = Setting {
            cd: true,
            dump_dir: dump_dir.to_str().unwrap(),
            stdin_at: None,
            libraries: &[],
            history: None,
        };
        let prog = self.dir.path().join("prog");
        std::fs::create_dir_all(&prog).unwrap();
        let text = program::generate(state, &step, &self.origins, setting);
        std::fs::write(prog.join("s.sh"), text).unwrap();
        // Default dispositions, whatever the test runner inherited: under nohup, bash's `trap`
        // would show an ignored SIGHUP.
        let mut bash = Command::new("/usr/bin/env");
        bash.args(["--default-signal=HUP,INT,QUIT,TERM", "/bin/bash"]);
        let out = bash
            .arg("s.sh")
            .args(&state.args)
            .env_clear()
            .envs(state.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&prog)
            .output()
            .unwrap();
        let state = std::fs::read(dump_dir.join(DUMP_NAME))
            .ok()
            .map(|d| dump::parse(&d).expect("a complete dump"));
        Ran {
            out: String::from_utf8(out.stdout).unwrap(),
            err: String::from_utf8(out.stderr).unwrap(),
            code: out.status.code(),
            state,
        }
    }

    /// Runs the lines of `script` one step each and returns what they printed.
    fn script(&self, script: &[&str]) -> (String, String, ShellState) {
        let (mut out, mut err) = (String::new(), String::new());
        let mut state = self.first_state();
        for (i, line) in script.iter().enumerate() {
            let ran = self.step(&state, line, i + 1);
            out.push_str(&ran.out);
            err.push_str(&ran.err);
            state = ran.state.expect("the step left a state");
        }
        (out, err, state)
    }
}

#[test]
fn variables_functions_aliases_options_and_cwd_carry() {
    let bash = Bash::new();
    std::fs::create_dir_all(bash.first_state().cwd.join("sub dir")).unwrap();
    let (out, err, state) = bash.script(&[
        "x='a b'; export Y=1; f() { echo \"f:$1\"; }; shopt -s extglob expand_aliases; cd 'sub dir'",
        "alias ll='echo ll:'; declare -A m; declare -ri n=7; umask 027",
        "m[k]=v; echo \"$x\" $Y ${m[k]} $n; f z; ll arg; shopt -q extglob && echo on; umask",
        "pwd; cd ..; cd - >/dev/null; echo \"${PWD##*/}\"",
        "n=8",
    ]);
    let sub = bash.first_state().cwd.join("sub dir");
    assert_eq!(
        out,
        format!(
            "a b 1 v 7\nf:z\nll: arg\non\n0027\n{}\nsub dir\n",
            sub.display()
        )
    );
    assert_eq!(err, "s.sh: line 5: n: readonly variable\n");
    assert_eq!(state.cwd, sub);
    assert!(state.env.contains(&("Y".into(), "1".into())));
    assert_eq!(state.status, 1);
}

#[test]
fn status_lastarg_and_pipestatus_carry() {
    let bash = Bash::new();
    let (out, _, _) = bash.script(&[
        "false",
        "echo \"status $?\"",
        "true | false | true",
        "echo \"${PIPESTATUS[*]}\"; declare -F | grep -c shark",
        "echo last-word",
        "echo \"$_\"",
        "set -- a 'b c'; shift",
        "echo \"$# $1\"",
    ]);
    assert_eq!(out, "status 1\n0 1 0\n0\nlast-word\nlast-word\n1 b c\n");
}

#[test]
fn line_numbers_are_the_scripts_own() {
    let mut bash = Bash::new();
    let state = bash.first_state();
    let def = "f() {\n  echo \"f at $LINENO\"\n  missing_command\n}";
    let ran = bash.step(&state, def, 4);
    let state = ran.state.unwrap();
    bash.origins.insert(
        b"f".to_vec(),
        Origin {
            line: 4,
            text: def.as_bytes().to_vec(),
        },
    );
    let ran = bash.step(&state, "echo \"at $LINENO\"\nf", 10);
    assert_eq!(ran.out, "at 10\nf at 5\n");
    assert_eq!(
        ran.err,
        "s.sh: line 6: missing_command: command not found\n"
    );
    let ran = bash.step(&state, "if true; then\n  fi fi", 20);
    assert_eq!(ran.code, Some(2));
    assert!(
        ran.err
            .starts_with("s.sh: line 21: syntax error near unexpected token `fi'"),
        "{}",
        ran.err
    );
}

#[test]
fn nothing_of_the_machinery_shows() {
    let bash = Bash::new();
    let (out, err, _) = bash.script(&[
        "x=1; f() { :; }; trap 'echo bye' EXIT",
        "declare -p >v; declare -f >f; set >s; compgen -v >n; env >e; trap -p",
        "grep -ci shark v f s n e",
        "set -x",
        "for i in 1; do echo traced; done",
    ]);
    assert_eq!(
        out,
        "trap -- 'echo bye' EXIT\nv:0\nf:0\ns:0\nn:0\ne:0\ntraced\n"
    );
    assert_eq!(err, "+ for i in 1\n+ echo traced\n");
}

#[test]
fn an_exit_leaves_no_state_and_runs_the_exit_trap() {
    let bash = Bash::new();
    let (_, _, state) = bash.script(&["trap 'echo \"trap $?\"' EXIT"]);
    let ran = bash.step(&state, "echo before; exit 3", 2);
    assert_eq!(ran.out, "before\ntrap 3\n");
    assert_eq!(ran.code, Some(3));
    assert!(ran.state.is_none());
    // Under set -e, a failure ends the shell the same way.
    let (_, _, state) = bash.script(&["set -e"]);
    let ran = bash.step(&state, "false", 2);
    assert_eq!((ran.code, ran.state.is_none()), (Some(1), true));
}

#[test]
fn bytes_that_are_not_utf8_round_trip() {
    let bash = Bash::new();
    let ran = bash.step(&bash.first_state(), b"v='caf\xe9' # \xff", 1);
    let state = ran.state.unwrap();
    assert_eq!(state.vars[&b"v"[..]], b"declare -- v=$'caf\\351'");
    let ran = bash.step(&state, "printf '%s' \"$v\" | od -An -tx1", 2);
    assert_eq!(ran.out.trim(), "63 61 66 e9");
}

#[test]
fn blobs_round_trip_and_older_formats_are_refused() {
    let dump = b"c\0\0/w\0s\0\x003\0z\0\0\0";
    let state = decode_blob(&encode_blob(dump)).unwrap();
    assert_eq!(
        (state.cwd.as_path(), state.status),
        (std::path::Path::new("/w"), 3)
    );
    assert!(decode_blob(b"shark-shell-state-v1\n\0\0\0\0\0\0\0\0").is_none());
    assert!(dump::parse(b"c\0\0/w\0").is_none(), "a dump cut short");
}

#[test]
fn trap_listings_are_read_whole() {
    let text = b"trap -- 'echo '\\''a\nb'\\''' EXIT\ntrap -- '' SIGINT\n";
    let entries = trap_entries(text);
    let names: Vec<&str> = entries.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(names, ["EXIT", "SIGINT"]);
    assert_eq!(entries[0].1, &b"trap -- 'echo '\\''a\nb'\\''' EXIT"[..]);
}

#[test]
fn open_files_carry_with_their_offsets() {
    let bash = Bash::new();
    let work = bash.first_state().cwd;
    std::fs::write(work.join("in.txt"), "one\ntwo\nthree\n").unwrap();
    let (out, err, state) = bash.script(&[
        "exec 3< in.txt 4> log.txt",
        "read -r -u 3 a; echo \"a=$a\"; echo first >&4",
        "read -r -u 3 b; echo \"b=$b\"; echo second >&4",
        "exec 3<&- 4>&-; cat log.txt",
    ]);
    assert_eq!(err, "");
    assert_eq!(out, "a=one\nb=two\nfirst\nsecond\n");
    assert!(
        !state.fds.iter().any(|(fd, _)| fd == b"3" || fd == b"4"),
        "{:?}",
        state.fds
    );
}

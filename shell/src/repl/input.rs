//! What an entered line asks for: a shark builtin, a command outside the sandbox, or a bash
//! line for the session, with the escape-hatch prefixes taken off.
//!
//! The prefixes end in a colon so that they never clash with a program's name: `fresh:` runs
//! the line even if a recorded run could be reused, `net:` allows network access (such a run is
//! never reused), `host:` runs the line outside the sandbox, unrecorded. `fresh:` and `net:`
//! combine (`fresh: net: curl ...`).

use std::os::unix::ffi::OsStringExt;
use std::process::Command;

use crate::session::BASH;
use crate::state::{program, ShellState};

/// The text of the `help` builtin.
pub(crate) const HELP: &str = "\
shark: every command line runs in a sandbox, is recorded, and is reused when nothing it read
has changed (the prompt says `reused, saved TIME`). Lines have bash semantics; cd, variables,
functions, aliases and options carry from line to line.

  fresh: LINE   run LINE even if a recorded run could be reused
  net: LINE     run LINE with network access (recorded, never reused)
  host: LINE    run LINE outside the sandbox, unrecorded, in the session's directory and
                environment (for ssh, sudo, anything that must touch the real system);
                its cd and variables do not carry to the next line
  help          this text (help NAME: bash's help for a builtin)
  exit [N]      leave with status N (Ctrl-D: the last line's status)

Keys: Tab completes commands and paths, Up/Down and Ctrl-R search the history, Ctrl-C clears
the line or interrupts the running command. Programs that read the terminal (vim, less, a
REPL) run normally and are recorded, but never reused.

Startup: a login shell (shark -l) first runs $XDG_CONFIG_HOME/shark/profile, an interactive
shell runs $XDG_CONFIG_HOME/shark/sharkrc (default ~/.config/shark/...), each as a line.
Then: shark log, shark show RUN, shark lineage FILE, shark why (see man shark).
";

/// What to do with one entered line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Blank or only a comment.
    Nothing,
    /// The `help` builtin.
    Help,
    /// Run outside the sandbox.
    Host(String),
    /// Run (or reuse) in the session.
    Line {
        /// The bash text, prefixes removed.
        text: String,
        /// `fresh:`.
        fresh: bool,
        /// `net:`.
        network: bool,
    },
}

/// Classifies an entered line.
pub(crate) fn classify(text: &str) -> Action {
    let mut rest = text.trim_start();
    let (mut fresh, mut network) = (false, false);
    loop {
        if let Some(r) = strip_word(rest, "fresh:") {
            fresh = true;
            rest = r;
        } else if let Some(r) = strip_word(rest, "net:") {
            network = true;
            rest = r;
        } else if let Some(r) = strip_word(rest, "host:") {
            return match r.trim() {
                "" => Action::Nothing,
                _ => Action::Host(r.trim_end().to_owned()),
            };
        } else {
            break;
        }
    }
    let body = rest.trim_end();
    if body.is_empty() || body.starts_with('#') {
        return Action::Nothing;
    }
    if body == "help" {
        return Action::Help;
    }
    Action::Line {
        text: body.to_owned(),
        fresh,
        network,
    }
}

/// `text` after the prefix `word` and the blanks that follow it.
fn strip_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(word)?;
    match rest.chars().next() {
        None => Some(rest),
        Some(c) if c.is_whitespace() => Some(rest.trim_start()),
        Some(_) => None,
    }
}

/// Runs `command` with bash outside the sandbox, in the session's directory, environment,
/// functions, aliases and options; returns its status. Nothing is recorded.
pub(crate) fn run_host(command: &str, state: &ShellState) -> i32 {
    let program = program::host(state, command.as_bytes());
    let status = Command::new(BASH)
        .arg("-c")
        .arg(std::ffi::OsString::from_vec(program))
        .arg("bash")
        .env_clear()
        .envs(state.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&state.cwd)
        .status();
    match status {
        Ok(s) => s.code().unwrap_or_else(|| {
            128 + std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0)
        }),
        Err(e) => {
            eprintln!("shark: host: cannot run {BASH}: {e}");
            127
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, fresh: bool, network: bool) -> Action {
        Action::Line {
            text: text.into(),
            fresh,
            network,
        }
    }

    #[test]
    fn prefixes_are_taken_off_and_combine() {
        assert_eq!(classify("echo hi"), line("echo hi", false, false));
        assert_eq!(
            classify("  fresh: make all "),
            line("make all", true, false)
        );
        assert_eq!(classify("net: curl x"), line("curl x", false, true));
        assert_eq!(classify("fresh: net: curl x"), line("curl x", true, true));
        assert_eq!(classify("host: sudo ls"), Action::Host("sudo ls".into()));
        assert_eq!(classify("fresh:x"), line("fresh:x", false, false));
    }

    #[test]
    fn blank_comment_and_help() {
        assert_eq!(classify("   "), Action::Nothing);
        assert_eq!(classify("# note"), Action::Nothing);
        assert_eq!(classify("host:"), Action::Nothing);
        assert_eq!(classify(" help "), Action::Help);
        assert_eq!(classify("help cd"), line("help cd", false, false));
    }

    #[test]
    fn host_runs_in_the_session_state() {
        let dir = tempfile::tempdir().unwrap();
        let state = ShellState {
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            functions: [(b"f".to_vec(), b"f() { echo \"f:$1\" > out; }".to_vec())].into(),
            vars: [(b"x".to_vec(), b"x=7".to_vec())].into(),
            cwd: dir.path().to_path_buf(),
            ..ShellState::default()
        };
        assert_eq!(run_host("f $x; exit 3", &state), 3);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out")).unwrap(),
            "f:7\n"
        );
    }
}

//! Shell state carried from one step to the next, as bash carries it within one process.
//!
//! Each step (a top-level command of a script, a line of the interactive shell) runs in a fresh
//! bash inside the sandbox, started on a generated program ([`program`]): the program recreates
//! the state the previous step left (variables with their attributes, functions, aliases,
//! options, traps, umask, working directory, directory stack, `$?`, `$_`, positional
//! parameters), runs the step's text at its own line of the script, and then writes the state
//! it leaves ([`dump`]) into the sandbox's private `/dev/shm`, where the executor reads it back
//! from the sandbox's report. The state is recorded with the run, so a reused step changes the
//! state exactly as running it did. A step that ends the shell (`exit`, a failure under
//! `set -e`) leaves no state: the script ends there, its EXIT trap having run in that step.
//!
//! What a step's key depends on is the part of the state it can reach ([`reach`]).

pub mod dump;
pub mod program;
pub mod reach;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The file the step's program writes the state to, in the sandbox's private `/dev/shm`.
pub const DUMP_NAME: &str = ".shark-state";
/// The scratch file the dump lists variable names into, beside the dump.
pub const NAMES_NAME: &str = ".shark-names";
/// Where the dump goes inside the sandbox.
pub const DUMP_DIR: &str = "/dev/shm";

/// The state of the shell between steps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShellState {
    /// The environment the next step starts with (exported variables).
    pub env: Vec<(OsString, OsString)>,
    /// The working directory (`$PWD`).
    pub cwd: PathBuf,
    /// Whether the state below was dumped by a step; the state of a new shell knows only its
    /// environment, working directory and positional parameters.
    pub dumped: bool,
    /// Shell variables (exported ones too) by name: bash's `declare -p` of each.
    pub vars: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Functions by name: bash's `declare -f` of each.
    pub functions: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Where each function was defined: line and file (bash's name for it).
    pub function_lines: BTreeMap<Vec<u8>, (usize, Vec<u8>)>,
    /// `declare -Fx`: the exported functions.
    pub exported_functions: Vec<u8>,
    /// `alias -p`.
    pub aliases: Vec<u8>,
    /// `shopt -p` and `set +o`.
    pub options: Vec<u8>,
    /// `trap -p`.
    pub traps: Vec<u8>,
    /// `$-` at the end of the step (`x` and `v` are restored apart from the other options).
    pub flags: Vec<u8>,
    /// `umask` (octal digits), when dumped.
    pub umask: Vec<u8>,
    /// The directory stack below the working directory (`${DIRSTACK[@]:1}`).
    pub dirstack: Vec<Vec<u8>>,
    /// `$?`.
    pub status: i32,
    /// `PIPESTATUS`.
    pub pipestatus: Vec<i32>,
    /// `$_`.
    pub lastarg: Vec<u8>,
    /// The positional parameters.
    pub args: Vec<OsString>,
    /// Files the shell has open beyond its standard streams, or in place of stdout and
    /// stderr (`exec 3< f`, `exec > log 2>&1`): descriptor, then `MODE OFFSET PATH` (mode `r`,
    /// `w`, `a` or `rw`) or `>&1`.
    pub fds: Vec<(Vec<u8>, Vec<u8>)>,
    /// How many bytes of standard input (a regular file) the step that left this state read.
    pub stdin_read: u64,
}

impl ShellState {
    /// Whether `other` is this state but for what every command changes: `$?`,
    /// `PIPESTATUS`, `$_` and how much of stdin the last step read.
    pub fn same_but_status(&self, other: &ShellState) -> bool {
        let other = ShellState {
            status: self.status,
            pipestatus: self.pipestatus.clone(),
            lastarg: self.lastarg.clone(),
            stdin_read: self.stdin_read,
            ..other.clone()
        };
        *self == other
    }

    /// The state of a new shell: this process's environment and working directory.
    pub fn from_process() -> std::io::Result<ShellState> {
        let env = std::env::vars_os()
            .filter(|(k, _)| !k.as_bytes().starts_with(b"__SHARK_"))
            .collect();
        Ok(ShellState {
            env,
            cwd: std::env::current_dir()?,
            ..ShellState::default()
        })
    }

    /// An exported variable.
    pub fn env_var(&self, name: &str) -> Option<&OsStr> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_os_str())
    }

    /// The names of the aliases.
    pub fn alias_names(&self) -> Vec<String> {
        self.aliases
            .split(|&b| b == b'\n')
            .filter_map(|l| l.strip_prefix(b"alias "))
            .filter_map(|l| l.split(|&b| b == b'=').next())
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect()
    }

    /// Whether `trap -p` lists a trap on `signal` (`EXIT`, `DEBUG`, `SIGINT`...).
    pub fn has_trap(&self, signal: &str) -> bool {
        self.trap(signal).is_some()
    }

    /// The `trap -p` entry of `signal`, if it is trapped.
    pub fn trap(&self, signal: &str) -> Option<&[u8]> {
        trap_entries(&self.traps)
            .into_iter()
            .find(|(s, _)| s == signal)
            .map(|(_, text)| text)
    }
}

/// The entries of `trap -p` output, `trap -- 'COMMAND' SIGNAL` (the command single-quoted,
/// perhaps over several lines), with their signal names.
pub fn trap_entries(text: &[u8]) -> Vec<(String, &[u8])> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = find(rest, b"trap -- '") {
        let body = &rest[start + 9..];
        // The command ends at a quote not followed by `\''` (bash writes `'` as `'\''`).
        let mut i = 0;
        let end = loop {
            match body.get(i) {
                None => return out,
                Some(b'\'') if body[i + 1..].starts_with(b"\\''") => i += 4,
                Some(b'\'') => break i,
                Some(_) => i += 1,
            }
        };
        let after = &body[end + 1..];
        let sig_len = after
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(after.len());
        let signal = String::from_utf8_lossy(after[..sig_len].trim_ascii()).into_owned();
        let total = start + 9 + end + 1 + sig_len;
        out.push((signal, &rest[start..total]));
        rest = &rest[total..];
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The blob format of a recorded shell state: a header, then the dump as the step wrote it.
const STATE_MAGIC: &[u8] = b"shark-shell-state-v2\n";

/// The blob recording `dump`, the bytes a step's program wrote.
pub fn encode_blob(dump: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(STATE_MAGIC.len() + dump.len());
    out.extend_from_slice(STATE_MAGIC);
    out.extend_from_slice(dump);
    out
}

/// The dump a recorded blob holds, as the step wrote it; `None` for a blob of another format.
pub fn blob_dump(blob: &[u8]) -> Option<&[u8]> {
    blob.strip_prefix(STATE_MAGIC)
}

/// The state a recorded blob holds; `None` for a blob of another format or a damaged dump.
pub fn decode_blob(blob: &[u8]) -> Option<ShellState> {
    dump::parse(blob.strip_prefix(STATE_MAGIC)?)
}

/// Quotes `s` as one bash word (`'...'`), for text that is valid UTF-8.
pub fn single_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Quotes bytes as one bash word on one line: `$'...'` with every control, quote, backslash
/// and non-ASCII byte escaped.
pub fn ansi_quote(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 3);
    out.extend_from_slice(b"$'");
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\'' => out.extend_from_slice(b"\\'"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'\'');
    out
}

#[cfg(test)]
mod tests;

//! `shark -c LINE` and `shark run PROG ARGS...`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::cli::RunArgs;
use crate::error::CliError;
use crate::exec::{Executor, Request};
use crate::home::Home;

/// The shell that interprets a command line inside the sandbox.
const BASH: &str = "/bin/bash";

/// `shark -c LINE [$0 [ARGS...]]`: bash runs the line inside the sandbox.
pub(crate) fn line(
    home: &Home,
    line: OsString,
    args: Vec<OsString>,
    fresh: bool,
    net: bool,
    reuse_net: bool,
) -> Result<i32, CliError> {
    let text = line.to_string_lossy().into_owned();
    let mut argv: Vec<OsString> = vec![BASH.into(), "-c".into(), line];
    argv.extend(args);
    let mut req = Request::here(text, argv)
        .map_err(|e| CliError::failed("cannot read the current directory", e))?;
    req.fresh = fresh;
    req.network = net;
    req.reuse_network = reuse_net;
    execute(home, &req)
}

/// `shark run PROG ARGS...`.
pub(crate) fn argv(home: &Home, args: RunArgs) -> Result<i32, CliError> {
    let prog = &args.argv[0];
    if find_program(prog).is_none() {
        eprintln!("shark: {}: command not found", prog.to_string_lossy());
        return Ok(127);
    }
    let mut req = Request::here(shell_words(&args.argv), args.argv)
        .map_err(|e| CliError::failed("cannot read the current directory", e))?;
    req.fresh = args.fresh;
    req.network = args.net;
    req.reuse_network = args.reuse_net;
    execute(home, &req)
}

fn execute(home: &Home, req: &Request) -> Result<i32, CliError> {
    let mut exec = Executor::open(home)?;
    Ok(exec.execute(req)?.code())
}

/// Where `prog` would be found on `$PATH` (or itself, if it names a path).
fn find_program(prog: &OsString) -> Option<PathBuf> {
    if prog.as_bytes().contains(&b'/') {
        return Some(PathBuf::from(prog)).filter(|p| p.exists());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(prog))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Quotes argv as a shell would need to read it back, for display.
pub(crate) fn shell_words(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| {
            let s = a.to_string_lossy();
            let plain = !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
            if plain {
                s.into_owned()
            } else {
                format!("'{}'", s.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

//! The seam through which this crate runs `zfs` and `btrfs`: the real tools in production, a
//! scripted fake in unit tests (the real tools are exercised by the end-to-end tests).

use std::ffi::OsString;
use std::process::{Command, Stdio};

use crate::ZfsError;

/// Runs a command-line tool and returns its standard output.
pub trait Tools: std::fmt::Debug {
    /// Runs `program` with `args`; a non-zero exit is [`ZfsError::Command`].
    fn run(&self, program: &str, args: &[OsString]) -> Result<String, ZfsError>;
}

/// The tools installed on this machine, found on `PATH` (then `/sbin`, `/usr/sbin`).
#[derive(Debug, Default, Clone, Copy)]
pub struct System;

impl Tools for System {
    fn run(&self, program: &str, args: &[OsString]) -> Result<String, ZfsError> {
        let exe = locate(program);
        let out = Command::new(&exe)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| ZfsError::Spawn {
                program: program.to_owned(),
                source,
            })?;
        if !out.status.success() {
            return Err(ZfsError::Command {
                program: program.to_owned(),
                args: args
                    .iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" "),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// `program` on `PATH`, else in the system directories unprivileged `PATH`s often lack.
fn locate(program: &str) -> OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]);
    for dir in dirs {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return candidate.into_os_string();
        }
    }
    program.into()
}

/// Arguments as `OsString`s.
pub(crate) fn args<I, S>(items: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    items.into_iter().map(Into::into).collect()
}

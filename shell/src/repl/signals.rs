//! Signals while the interactive shell runs a command.
//!
//! The sandboxed command stays in shark's process group, the terminal's foreground group, so
//! the terminal's Ctrl-C (SIGINT) and Ctrl-\ (SIGQUIT) reach it and shark alike. shark installs
//! handlers rather than ignoring them: a handled signal goes back to its default in any program
//! shark starts (`host:` lines), where an ignored one would stay ignored. Ctrl-Z (SIGTSTP) would
//! stop the command with no job control to resume it, so shark continues its process group at
//! once: Ctrl-Z does nothing, as in a shell without job control.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGQUIT, SIGTSTP};

use crate::error::CliError;

/// Installs the handlers; the flag turns true on each SIGINT.
pub(crate) fn install() -> Result<Arc<AtomicBool>, CliError> {
    let fail = |e| CliError::failed("cannot install signal handlers", e);
    let interrupted = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGINT, interrupted.clone()).map_err(fail)?;
    signal_hook::flag::register(SIGQUIT, Arc::new(AtomicBool::new(false))).map_err(fail)?;
    let mut stops = signal_hook::iterator::Signals::new([SIGTSTP]).map_err(fail)?;
    std::thread::spawn(move || {
        for _ in stops.forever() {
            let _ = nix::sys::signal::killpg(nix::unistd::getpgrp(), nix::sys::signal::SIGCONT);
        }
    });
    Ok(interrupted)
}

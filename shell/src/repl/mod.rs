//! The interactive shell: `shark` with no arguments on a terminal.

use crate::error::CliError;
use crate::home::Home;

/// Runs the interactive shell; `login` when started as a login shell.
pub(crate) fn run(_home: &Home, _login: bool) -> Result<i32, CliError> {
    Err(CliError::usage(
        "the interactive shell is not built yet",
        Some("run a script (shark SCRIPT), a line (shark -c LINE) or a subcommand".into()),
    ))
}

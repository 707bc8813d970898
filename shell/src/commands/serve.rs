//! `shark serve`: the read-only web view (the `shark-web` crate), over this shark home and a
//! folder.

use crate::cli::ServeArgs;
use crate::error::CliError;
use crate::home::Home;

/// `shark serve [--port N] [--bind ADDR] [--dir DIR]`.
pub(crate) fn run(_home: &Home, _args: &ServeArgs) -> Result<i32, CliError> {
    Err(CliError::usage("not yet", None))
}

//! `shark replay RUN|PATH`: re-execute a recorded computation and compare its outputs.

use crate::cli::ReplayArgs;
use crate::error::CliError;
use crate::home::Home;

pub(crate) fn run(_home: &Home, _args: &ReplayArgs) -> Result<i32, CliError> {
    Err(CliError::usage("shark replay is not built yet", None))
}

//! `shark store stats|verify`.

use crate::cli::StoreCommand;
use crate::error::CliError;
use crate::home::Home;

pub(crate) fn run(_home: &Home, _cmd: StoreCommand) -> Result<i32, CliError> {
    Err(CliError::usage("shark store is not available yet", None))
}

//! `shark md DOC.md`: run a Shark markdown document.

use crate::cli::MdArgs;
use crate::error::CliError;
use crate::home::Home;

pub(crate) fn run(_home: &Home, _args: &MdArgs) -> Result<i32, CliError> {
    Err(CliError::usage("shark md is not built yet", None))
}

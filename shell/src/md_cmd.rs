//! `shark md DOC.md`: run a Shark markdown document, or (`--dot`) draw its dataflow graph.
//! The work is done in [`crate::md`].

use crate::cli::MdArgs;
use crate::error::CliError;
use crate::home::Home;

pub(crate) fn run(home: &Home, args: &MdArgs) -> Result<i32, CliError> {
    if args.dot {
        crate::md::dot(home, &args.doc)
    } else {
        crate::md::run(home, args)
    }
}

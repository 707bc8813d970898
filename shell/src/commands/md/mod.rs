//! `shark md DOC.md`: running a Shark markdown document, or (`--dot`) drawing its dataflow graph.
//!
//! [`run`] parses the document ([`crate::markdown`]), refuses what shark cannot do before
//! anything runs (`shark-build` blocks, missing frontmatter `inputs`), then runs the blocks in
//! order in one [`Session`](crate::session::Session) whose working directory is the document's
//! directory, with the frontmatter's variables exported:
//!
//! - each `shark-run` command is one session line, memoized like a script step;
//! - each `shark-import` line becomes a copy (`cp`) or a download (`curl`, network on) line, so
//!   the imported file is an output of a recorded run ([`lines`]);
//! - each `shark-publish` path becomes a copy line into the output directory.
//!
//! The processed document (each block followed by a `shark-output` block with its run ids and
//! output) is written next to the source, never over it. What ran is also kept in a small
//! record in the shark home ([`record`]), keyed by the document's path, from which [`dot`]
//! draws which block's outputs feed which block.

mod dot;
mod lines;
mod record;
mod run;
mod view;

use std::path::{Path, PathBuf};

use crate::error::CliError;
use crate::markdown::{self, Document};

pub(crate) use dot::dot;
pub(crate) use run::run;
pub(crate) use view::ShellDocuments;

/// A document read from disk and parsed.
#[derive(Debug)]
struct Loaded {
    /// The document's canonical path.
    path: PathBuf,
    /// Its directory: where the session starts and relative paths are resolved.
    dir: PathBuf,
    /// Its text.
    text: String,
    /// Its parsed form.
    doc: Document,
}

impl Loaded {
    /// Reads and parses the document at `path`.
    fn read(path: &Path) -> Result<Loaded, CliError> {
        let shown = path.display();
        let bytes = std::fs::read(path).map_err(|e| {
            CliError::usage(
                format!("cannot read document {shown}: {}", crate::error::chain(&e)),
                None,
            )
        })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            CliError::usage(format!("{shown} is not a text document (not UTF-8)"), None)
        })?;
        let doc = markdown::parse(&text).map_err(|e| {
            CliError::usage(
                format!("{shown}: {e}"),
                Some("fix the document's markdown".into()),
            )
        })?;
        let path = path
            .canonicalize()
            .map_err(|e| CliError::usage(format!("cannot resolve {shown}: {e}"), None))?;
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        Ok(Loaded {
            path,
            dir,
            text,
            doc,
        })
    }

    /// The document's file name, for messages.
    fn name(&self) -> String {
        self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }
}

/// `shark md DOC.md`, or `shark md --dot DOC.md`.
pub(crate) fn command(
    home: &crate::home::Home,
    args: &crate::cli::MdArgs,
) -> Result<i32, CliError> {
    if args.dot {
        dot(home, &args.doc)
    } else {
        run(home, args)
    }
}

/// `shark template DOC --output-dir DIR`.
pub(crate) fn template(_args: &crate::cli::TemplateArgs) -> Result<i32, CliError> {
    Err(CliError::usage("not yet", None))
}

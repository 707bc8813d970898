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
mod parallel;
mod prepare;
mod record;
mod run;
mod view;

use std::path::{Path, PathBuf};

use crate::error::CliError;
use crate::markdown::{self, BlockKind, Document};

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
    /// Reads and parses the document at `path`, its `%{NAME}` variables filled in.
    fn read(path: &Path) -> Result<Loaded, CliError> {
        Loaded::read_with(path, &[])
    }

    /// Reads and parses the document at `path` with `env` (`-e KEY=VALUE`) overriding its
    /// frontmatter variables and `export` lines, then fills in its `%{NAME}` variables.
    fn read_with(path: &Path, env: &[(String, String)]) -> Result<Loaded, CliError> {
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
        let malformed = |e: markdown::MarkdownError| {
            CliError::usage(
                format!("{shown}: {e}"),
                Some("fix the document's markdown".into()),
            )
        };
        let (mut frontmatter, consumed) = markdown::split_frontmatter(&text).map_err(malformed)?;
        for (key, value) in env {
            if let Some((_, v)) = frontmatter.variables.iter_mut().find(|(k, _)| k == key) {
                v.clone_from(value);
            }
        }
        let body = markdown::template::substitute(&text[consumed..], &frontmatter.variables);
        let mut doc =
            markdown::parse(&format!("{}{body}", &text[..consumed])).map_err(malformed)?;
        doc.frontmatter.variables = frontmatter.variables;
        override_exports(&mut doc, env);
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

/// Rewrites each `export KEY=...` command of the document's run blocks whose KEY `env`
/// overrides into `export KEY=VALUE`.
fn override_exports(doc: &mut markdown::Document, env: &[(String, String)]) {
    for segment in &mut doc.segments {
        let markdown::Segment::Block(block) = segment else {
            continue;
        };
        let BlockKind::Run { commands } = &mut block.kind else {
            continue;
        };
        for command in commands {
            let Some((key, _)) = export_assignment(&command.text) else {
                continue;
            };
            if let Some((_, value)) = env.iter().rev().find(|(k, _)| k == key) {
                let value = crate::commands::run::shell_words(&[value.into()]);
                command.text = format!("export {key}={value}");
            }
        }
    }
}

/// `export KEY=VALUE` (one assignment) as `(KEY, VALUE)`.
pub(super) fn export_assignment(text: &str) -> Option<(&str, &str)> {
    let rest = text.trim().strip_prefix("export")?;
    let rest = rest.strip_prefix([' ', '\t'])?.trim_start();
    let (key, value) = rest.split_once('=')?;
    let valid = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some((key, value))
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

/// `shark template DOC --output-dir DIR`: one document per combination of the frontmatter
/// variables' values, each with those values filled in (see [`markdown::template`]).
pub(crate) fn template(args: &crate::cli::TemplateArgs) -> Result<i32, CliError> {
    let shown = args.doc.display();
    let text = std::fs::read_to_string(&args.doc).map_err(|e| {
        CliError::usage(
            format!("cannot read document {shown}: {}", crate::error::chain(&e)),
            None,
        )
    })?;
    let (fm, consumed) = markdown::split_frontmatter(&text)
        .map_err(|e| CliError::usage(format!("{shown}: {e}"), None))?;
    let stem = args
        .doc
        .file_stem()
        .map_or("doc".into(), |s| s.to_string_lossy().into_owned());
    let out = &args.output_dir;
    std::fs::create_dir_all(out)
        .map_err(|e| CliError::failed(format!("cannot create {}", out.display()), e))?;
    let combinations = markdown::template::combinations(&fm.lists);
    for combination in &combinations {
        let body = markdown::template::substitute(&text[consumed..], combination);
        let doc = format!(
            "{}{body}",
            markdown::template::frontmatter(&fm, combination)
        );
        let path = out.join(markdown::template::file_name(&stem, combination));
        std::fs::write(&path, doc)
            .map_err(|e| CliError::failed(format!("cannot write {}", path.display()), e))?;
        println!("{}", path.display());
    }
    eprintln!(
        "shark: wrote {} documents into {}",
        combinations.len(),
        out.display()
    );
    Ok(0)
}

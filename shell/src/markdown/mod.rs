//! Shark markdown documents: a pipeline written as a markdown file.
//!
//! The format is the reference Shark's: optional YAML frontmatter between `---` lines at the very
//! top, then ordinary markdown in which fenced code blocks whose info string starts with one of
//! these words are steps of the pipeline:
//!
//! - `shark-run` (or `shark-run:IMAGE`): shell commands, one per line, an optional leading `$ `,
//!   `\` at the end of a line continuing the command, `#` comment lines;
//! - `shark-import`: `SOURCE DEST` lines, where SOURCE is a local path or an http(s) URL;
//! - `shark-publish` (or `shark-publish:DIR`): one path per line to copy out of the workspace;
//! - `shark-build:NAME`: a container image build, which shark does not support; it is parsed so
//!   the executor can report it by its line.
//!
//! Every other code block, and all the prose, is kept verbatim: [`parse`] splits the document
//! into [`Segment`]s whose source texts concatenate back to the input byte for byte, and
//! [`render()`] re-emits it with each block's results in a `shark-output` block after it.
//!
//! ```ignore
//! let doc = markdown::parse("Make a file:\n\n```shark-run\n$ echo hi > hi.txt\n```\n")?;
//! let block = doc.blocks().next().unwrap();
//! assert_eq!(block.line, 3);
//! ```
//!
//! Fences follow CommonMark: up to three spaces of indentation, three or more backticks or
//! tildes, closed by a fence of the same character at least as long. An unterminated ordinary
//! fence runs to the end of the document as CommonMark says; an unterminated shark fence is an
//! error, because silently dropping the rest of a pipeline would be worse.

mod blocks;
mod fence;
mod frontmatter;
mod render;
pub mod template;

pub use self::frontmatter::{Frontmatter, FrontmatterError};
pub use self::render::{render, BlockResult, CommandResult, MAX_OUTPUT_BYTES};

/// A parsed Shark markdown document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The frontmatter (empty when the document has none).
    pub frontmatter: Frontmatter,
    /// The document in order; the frontmatter's source text is the first [`Segment::Text`].
    pub segments: Vec<Segment>,
}

impl Document {
    /// The shark blocks in document order; [`BlockResult::block_index`] indexes this sequence.
    pub fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Block(b) => Some(b),
            Segment::Text(_) => None,
        })
    }
}

/// A piece of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Markdown that is not a shark block, verbatim (line endings included).
    Text(String),
    /// A shark block.
    Block(Block),
}

/// A fenced code block whose info string names a shark block kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// What the block asks for, with its parsed content.
    pub kind: BlockKind,
    /// The whole info string, trimmed (e.g. `shark-run:gdal-env`).
    pub info: String,
    /// For `shark-run:X` and `shark-build:X`, the `X` (the reference system's container
    /// environment; everything after the first colon, which may itself hold colons).
    pub image: Option<String>,
    /// 1-based line of the opening fence.
    pub line: usize,
    /// The lines between the fences, with the fence's indentation removed and `\n` endings.
    pub body: String,
    /// The block's source text from the opening fence through the closing fence's line ending.
    pub source: String,
}

/// The kind of a shark block and what its body says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockKind {
    /// `shark-run`: commands to run in order.
    Run {
        /// The commands, continuations joined, comments and blank lines dropped.
        commands: Vec<Command>,
    },
    /// `shark-import`: files or URLs to bring into the workspace.
    Import {
        /// One per `SOURCE DEST` line.
        imports: Vec<Import>,
    },
    /// `shark-publish`: results to copy out.
    Publish {
        /// The paths, one per line.
        paths: Vec<String>,
        /// The directory given as `shark-publish:DIR`, if any (the default is `_shark`).
        dir: Option<String>,
    },
    /// `shark-build`: a container build, which shark does not support.
    Build,
}

impl BlockKind {
    /// The info-string word that introduces this kind, e.g. `shark-run`.
    pub fn name(&self) -> &'static str {
        match self {
            BlockKind::Run { .. } => "shark-run",
            BlockKind::Import { .. } => "shark-import",
            BlockKind::Publish { .. } => "shark-publish",
            BlockKind::Build => "shark-build",
        }
    }
}

/// One command of a `shark-run` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The command line, without the `$ ` prompt, continuation lines joined.
    pub text: String,
    /// 1-based document line where the command starts.
    pub line: usize,
}

/// One line of a `shark-import` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// Where the data comes from.
    pub source: ImportSource,
    /// Where it goes, as written.
    pub dest: String,
    /// 1-based document line.
    pub line: usize,
}

/// The source of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportSource {
    /// An `http://` or `https://` URL, fetched with the network on.
    Url(String),
    /// A local path (a `file://` URL is given as its path).
    Path(String),
}

/// Why a document cannot be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MarkdownError {
    /// The frontmatter is malformed.
    #[error(transparent)]
    Frontmatter(#[from] FrontmatterError),
    /// A shark block's fence is never closed.
    #[error("line {line}: the `{info}` block is never closed (expected a closing fence)")]
    UnterminatedFence {
        /// Line of the opening fence.
        line: usize,
        /// The block's info string.
        info: String,
    },
    /// A `shark-import` line is not `SOURCE DEST`.
    #[error("line {line}: an import is `SOURCE DEST`, this line has {fields} field(s)")]
    ImportFields {
        /// The offending line.
        line: usize,
        /// How many whitespace-separated fields it has.
        fields: usize,
    },
    /// A `shark-import` source is a URL of a scheme shark cannot fetch.
    #[error("line {line}: cannot import from a `{scheme}:` URL (use http, https or a path)")]
    ImportScheme {
        /// The offending line.
        line: usize,
        /// The URL's scheme.
        scheme: String,
    },
}

/// Parses a Shark markdown document.
///
/// # Errors
///
/// Malformed frontmatter, an unterminated shark fence, or a malformed import line; each error
/// names its 1-based line.
pub fn parse(text: &str) -> Result<Document, MarkdownError> {
    let (frontmatter, consumed) = frontmatter::split(text)?;
    let mut segments = Vec::new();
    if consumed > 0 {
        segments.push(Segment::Text(text[..consumed].to_owned()));
    }
    let first_line = text[..consumed].matches('\n').count() + 1;
    fence::segments(&text[consumed..], first_line, &mut segments)?;
    Ok(Document {
        frontmatter,
        segments,
    })
}

/// The frontmatter at the top of `text` and how many bytes it spans (0 without one).
pub fn split_frontmatter(text: &str) -> Result<(Frontmatter, usize), MarkdownError> {
    Ok(frontmatter::split(text)?)
}

/// Iterates over `text`'s lines with their endings, numbered from `first`.
fn numbered_lines(text: &str, first: usize) -> impl Iterator<Item = (usize, &str)> {
    text.split_inclusive('\n')
        .enumerate()
        .map(move |(i, l)| (first + i, l))
}

/// A line without its `\n` or `\r\n` ending.
fn strip_eol(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

#[cfg(test)]
mod tests;

//! Writing the processed document: the source with each block's results after it.
//!
//! A block's results go in a fenced block with the info string `shark-output`, right after the
//! block's closing fence. Per command it holds a header line and the command's stdout:
//!
//! ```text
//! # run 41 ran exit 0
//! GDAL 3.6.2, released 2023/01/02
//! # run 42 reused 17 exit 0
//! ```
//!
//! `shark-output` is not a shark block kind, so processing a processed document runs the same
//! blocks again and leaves the earlier outputs as prose.

use super::{Block, Document, Segment};

/// How much of one command's stdout goes into the document; the rest is cut with a note.
pub const MAX_OUTPUT_BYTES: usize = 16 * 1024;

/// What happened when the executor processed one shark block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockResult {
    /// Which block: an index into [`Document::blocks`].
    pub block_index: usize,
    /// One entry per command (or import, or published path) in order.
    pub commands: Vec<CommandResult>,
}

/// What happened to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    /// The run's id in the lineage database.
    pub run_id: i64,
    /// When the command was not run but reused, the run it was reused from.
    pub reused_from: Option<i64>,
    /// The exit status.
    pub exit_code: i32,
    /// The captured standard output (lossily decoded).
    pub stdout: String,
}

/// Re-emits `doc` with each block's results after it. With no results, the output is the
/// parsed text byte for byte.
pub fn render(doc: &Document, results: &[BlockResult]) -> String {
    let mut out = String::new();
    let mut index = 0;
    for segment in &doc.segments {
        match segment {
            Segment::Text(text) => out.push_str(text),
            Segment::Block(block) => {
                out.push_str(&block.source);
                for result in results.iter().filter(|r| r.block_index == index) {
                    push_output(&mut out, block, result);
                }
                index += 1;
            }
        }
    }
    out
}

/// Appends the `shark-output` block of one block's result.
fn push_output(out: &mut String, block: &Block, result: &BlockResult) {
    if result.commands.is_empty() {
        return;
    }
    let opening = block.source.split_inclusive('\n').next().unwrap_or("");
    let eol = if opening.ends_with("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    if !out.ends_with('\n') {
        out.push_str(eol);
    }
    let mut content = String::new();
    for command in &result.commands {
        push_command(&mut content, command, eol);
    }
    // The fence must be longer than any backtick run inside, or the output could close it.
    let fence = "`".repeat(longest_backtick_run(&content).max(2) + 1);
    for piece in [&fence, "shark-output", eol, &content, &fence, eol] {
        out.push_str(piece);
    }
}

/// Appends one command's header line and (possibly truncated) stdout.
fn push_command(content: &mut String, command: &CommandResult, eol: &str) {
    let how = match command.reused_from {
        Some(original) => format!("reused {original}"),
        None => "ran".to_owned(),
    };
    let header = format!("# run {} {how} exit {}", command.run_id, command.exit_code);
    content.push_str(&header);
    content.push_str(eol);
    let (shown, omitted) = truncate(&command.stdout);
    content.push_str(shown);
    if !shown.is_empty() && !shown.ends_with('\n') {
        content.push_str(eol);
    }
    if omitted > 0 {
        content.push_str(&format!("# [output truncated: {omitted} more bytes]{eol}"));
    }
}

/// The first [`MAX_OUTPUT_BYTES`] of `text`, cut after a line where possible, and how many
/// bytes were left out.
fn truncate(text: &str) -> (&str, usize) {
    if text.len() <= MAX_OUTPUT_BYTES {
        return (text, 0);
    }
    let mut end = MAX_OUTPUT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if let Some(newline) = text[..end].rfind('\n') {
        end = newline + 1;
    }
    (&text[..end], text.len() - end)
}

/// The length of the longest run of backticks in `text`.
fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_cuts_after_a_line_and_counts_the_rest() {
        let line = "x".repeat(99) + "\n";
        let text = line.repeat(MAX_OUTPUT_BYTES / 100 + 5);
        let (shown, omitted) = truncate(&text);
        assert_eq!(shown.len(), MAX_OUTPUT_BYTES / 100 * 100);
        assert_eq!(shown.len() + omitted, text.len());
        assert_eq!(truncate("short"), ("short", 0));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let text = "é".repeat(MAX_OUTPUT_BYTES);
        let (shown, omitted) = truncate(&text);
        assert_eq!(shown.len(), MAX_OUTPUT_BYTES);
        assert_eq!(omitted, text.len() - MAX_OUTPUT_BYTES);
        let odd = format!("a{text}");
        assert_eq!(truncate(&odd).0.len(), MAX_OUTPUT_BYTES - 1);
    }

    #[test]
    fn backtick_runs() {
        assert_eq!(longest_backtick_run("no ticks"), 0);
        assert_eq!(longest_backtick_run("a ``` b ` c ````"), 4);
    }
}

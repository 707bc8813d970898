//! Finding fenced code blocks (CommonMark rules) and cutting the body into segments.

use super::{blocks, numbered_lines, strip_eol, Block, MarkdownError, Segment};

/// An opening code fence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fence {
    /// Spaces before the fence (at most 3); removed from the content lines too.
    indent: usize,
    /// `` ` `` or `~`.
    ch: u8,
    /// How many fence characters (at least 3).
    len: usize,
    /// The info string, trimmed.
    info: String,
}

impl Fence {
    /// Parses `line` (without its ending) as an opening fence.
    pub(super) fn open(line: &str) -> Option<Fence> {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent > 3 {
            return None;
        }
        let rest = &line[indent..];
        let ch = *rest.as_bytes().first()?;
        if ch != b'`' && ch != b'~' {
            return None;
        }
        let len = rest.len() - rest.trim_start_matches(ch as char).len();
        let info = rest[len..].trim();
        // A backtick fence's info string cannot hold a backtick (it would be inline code).
        if len < 3 || (ch == b'`' && info.contains('`')) {
            return None;
        }
        Some(Fence {
            indent,
            ch,
            len,
            info: info.to_owned(),
        })
    }

    /// Whether `line` (without its ending) closes this fence.
    fn closed_by(&self, line: &str) -> bool {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent > 3 {
            return false;
        }
        let rest = &line[indent..];
        let run = rest.len() - rest.trim_start_matches(self.ch as char).len();
        run >= self.len && rest[run..].trim_matches([' ', '\t']).is_empty()
    }

    /// A content line with up to `indent` leading spaces removed, as CommonMark does.
    fn dedent<'a>(&self, line: &'a str) -> &'a str {
        let spaces = line.len() - line.trim_start_matches(' ').len();
        &line[spaces.min(self.indent)..]
    }
}

/// A fenced block found in the text: its fence, source and content lines.
struct Fenced<'a> {
    fence: Fence,
    line: usize,
    source: String,
    content: Vec<(usize, &'a str)>,
    closed: bool,
}

/// Appends the segments of `text` (whose first line is document line `first`) to `out`.
pub(super) fn segments(
    text: &str,
    first: usize,
    out: &mut Vec<Segment>,
) -> Result<(), MarkdownError> {
    let mut lines = numbered_lines(text, first).peekable();
    let mut prose = String::new();
    while let Some((n, line)) = lines.next() {
        let Some(fence) = Fence::open(strip_eol(line)) else {
            prose.push_str(line);
            continue;
        };
        let fenced = read_fenced(fence, n, line, &mut lines);
        match blocks::kind_of(&fenced.fence.info) {
            None => prose.push_str(&fenced.source),
            Some(_) if !fenced.closed => {
                return Err(MarkdownError::UnterminatedFence {
                    line: n,
                    info: fenced.fence.info,
                })
            }
            Some(word) => {
                if !prose.is_empty() {
                    out.push(Segment::Text(std::mem::take(&mut prose)));
                }
                out.push(Segment::Block(to_block(word, fenced)?));
            }
        }
    }
    if !prose.is_empty() {
        out.push(Segment::Text(prose));
    }
    Ok(())
}

/// Reads the lines of a fenced block up to and including its closing fence (or the end).
fn read_fenced<'a>(
    fence: Fence,
    line: usize,
    opening: &str,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
) -> Fenced<'a> {
    let mut fenced = Fenced {
        fence,
        line,
        source: opening.to_owned(),
        content: Vec::new(),
        closed: false,
    };
    for (n, l) in lines {
        fenced.source.push_str(l);
        if fenced.fence.closed_by(strip_eol(l)) {
            fenced.closed = true;
            break;
        }
        fenced.content.push((n, fenced.fence.dedent(strip_eol(l))));
    }
    fenced
}

/// Builds the [`Block`] of a closed shark fence whose info string starts with `word`.
fn to_block(word: &str, fenced: Fenced<'_>) -> Result<Block, MarkdownError> {
    let mut body = String::new();
    for (_, l) in &fenced.content {
        body.push_str(l);
        body.push('\n');
    }
    let info = fenced.fence.info;
    let suffix = info
        .split_whitespace()
        .next()
        .and_then(|w| w.strip_prefix(word))
        .and_then(|s| s.strip_prefix(':'))
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let (kind, image) = blocks::parse_body(word, suffix, &fenced.content)?;
    Ok(Block {
        kind,
        info,
        image,
        line: fenced.line,
        body,
        source: fenced.source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_fences() {
        let f = Fence::open("  ````shark-run:img  x ").unwrap();
        assert_eq!(
            f,
            Fence {
                indent: 2,
                ch: b'`',
                len: 4,
                info: "shark-run:img  x".into()
            }
        );
        assert_eq!(Fence::open("~~~").unwrap().info, "");
        assert_eq!(
            Fence::open("    ```"),
            None,
            "four spaces is an indented code block"
        );
        assert_eq!(Fence::open("``"), None);
        assert_eq!(Fence::open("``` a`b"), None);
        assert_eq!(Fence::open("~~~ a`b").unwrap().info, "a`b");
        assert_eq!(Fence::open("text ```"), None);
    }

    #[test]
    fn closing_fences() {
        let f = Fence::open("````").unwrap();
        assert!(f.closed_by("````"));
        assert!(f.closed_by("   ``````  \t"));
        assert!(!f.closed_by("```"), "shorter than the opening");
        assert!(!f.closed_by("~~~~"), "other character");
        assert!(!f.closed_by("```` x"), "closing fences have no info string");
        assert!(!f.closed_by("    ````"), "indented four spaces");
    }

    #[test]
    fn dedent_removes_at_most_the_fence_indent() {
        let f = Fence::open("  ```").unwrap();
        assert_eq!(f.dedent("    x"), "  x");
        assert_eq!(f.dedent(" x"), "x");
    }
}

//! Bash's own parser as a check on the split: `bash -n` reads and parses but executes nothing.
//! A step that bash cannot parse alone was cut too early by the splitter (or holds a syntax
//! error): it is merged with the next until bash agrees or the script ends, so that a
//! construct the splitter misreads costs memoization granularity, never correctness.
//!
//! One-line steps without here-documents go through one `bash -n`, each wrapped in a function
//! definition of its own; a step that spans lines or holds a here-document is checked alone
//! (such a step cut too early could swallow the wrappers after it, a quote or a here-document
//! running on into the next step, and still parse), the checks running side by side.

use std::io::Write;
use std::process::{Command, Stdio};

use super::Span;

/// `spans` with every step bash cannot parse on its own merged with the steps after it; a
/// last step bash still cannot parse is marked so, and runs to the end of the text (for bash
/// to report its error at the script's own lines).
pub fn checked(text: &[u8], mut spans: Vec<Span>) -> Vec<Span> {
    while let Some(bad) = first_unparsed(text, &spans) {
        if bad + 1 >= spans.len() {
            spans[bad].parses = false;
            spans[bad].end = text.len();
            break;
        }
        spans[bad].end = spans[bad + 1].end;
        spans.remove(bad + 1);
    }
    spans
}

/// The first step bash does not parse, if any (`None` too when bash cannot be run).
fn first_unparsed(text: &[u8], spans: &[Span]) -> Option<usize> {
    let alone = |s: &Span| {
        let body = &text[s.start..s.end];
        body.contains(&b'\n') || body.windows(2).any(|w| w == b"<<")
    };
    let (single, multi): (Vec<usize>, Vec<usize>) =
        (0..spans.len()).partition(|&i| !alone(&spans[i]));
    let batch = std::thread::scope(|scope| {
        let checks: Vec<_> = multi
            .iter()
            .map(|&i| {
                let body = &text[spans[i].start..spans[i].end];
                scope.spawn(move || (i, parses(body)))
            })
            .collect();
        let batch = batch_unparsed(text, spans, &single);
        let bad = checks
            .into_iter()
            .filter_map(|c| c.join().ok())
            .filter(|(_, ok)| !ok)
            .map(|(i, _)| i)
            .min();
        (batch, bad)
    });
    match batch {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether bash parses `body` on its own (true when bash cannot be run).
fn parses(body: &[u8]) -> bool {
    bash_n(body.to_vec()).is_none_or(|(ok, _)| ok)
}

/// The first of the steps `which` that bash does not parse, checked together.
fn batch_unparsed(text: &[u8], spans: &[Span], which: &[usize]) -> Option<usize> {
    if which.is_empty() {
        return None;
    }
    let mut program = Vec::new();
    // The last line of each step's wrapper.
    let mut ends = Vec::with_capacity(which.len());
    let mut line = 0;
    for &i in which {
        let body = &text[spans[i].start..spans[i].end];
        program.extend_from_slice(format!("__shark_step_{i}() {{\n").as_bytes());
        program.extend_from_slice(body);
        program.extend_from_slice(b"\n}\n");
        line += 3;
        ends.push(line);
    }
    let (ok, stderr) = bash_n(program)?;
    if ok {
        return None;
    }
    let at = error_line(&stderr)?;
    Some(which[ends.partition_point(|&end| end < at).min(which.len() - 1)])
}

/// Runs `bash -n` on `program`: whether it parsed without a word on stderr, and the words.
fn bash_n(program: Vec<u8>) -> Option<(bool, Vec<u8>)> {
    let mut child = Command::new(crate::session::BASH)
        .args(["--norc", "--noprofile", "-O", "extglob", "-n"])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let mut input = child.stdin.take()?;
    // A writer thread: bash may report an error before it has read everything.
    let writer = std::thread::spawn(move || input.write_all(&program));
    let out = child.wait_with_output().ok()?;
    let _ = writer.join();
    Some((out.status.success() && out.stderr.is_empty(), out.stderr))
}

/// The line of bash's first complaint (`bash: line N: ...`, or a here-document warning
/// `... at line N delimited by end-of-file`).
fn error_line(stderr: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(stderr);
    let first = text.lines().next()?;
    let at = first.find("line ")? + 5;
    let digits: String = first[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(text: &str, part: &str) -> Span {
        let start = text.find(part).unwrap();
        Span {
            start,
            end: start + part.len(),
            line: text[..start].matches('\n').count() + 1,
            parses: true,
        }
    }

    #[test]
    fn steps_cut_too_early_are_merged() {
        let text = "echo a\ncat <<'X'\nnot a step\nX\necho b\n";
        let wrong = vec![
            span(text, "echo a"),
            span(text, "cat <<'X'"),
            span(text, "not a step\nX"),
            span(text, "echo b"),
        ];
        let fixed = checked(text.as_bytes(), wrong);
        assert_eq!(
            fixed,
            vec![
                span(text, "echo a"),
                span(text, "cat <<'X'\nnot a step\nX"),
                span(text, "echo b")
            ]
        );
    }

    #[test]
    fn a_syntax_error_stays_for_bash_to_report() {
        let text = "echo a\nfi\necho b\n";
        let spans = vec![span(text, "echo a"), span(text, "fi"), span(text, "echo b")];
        let fixed = checked(text.as_bytes(), spans);
        let broken = Span {
            parses: false,
            ..span(text, "fi\necho b\n")
        };
        assert_eq!(fixed, vec![span(text, "echo a"), broken]);
    }

    #[test]
    fn nothing_is_executed() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let text = format!("}}; touch {}; {{\n", marker.display());
        let spans = vec![span(&text, text.trim_end())];
        let _ = checked(text.as_bytes(), spans);
        assert!(!marker.exists(), "the check ran the script");
    }
}

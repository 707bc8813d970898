//! Background jobs live in the process that started them, and each step is a process of its
//! own: a job started by one step and waited for, or named by `$!` or `%N`, in a later one
//! would be gone by then. Such steps, and those between, are run as one.

use super::Span;

/// `spans` with every step that starts a background job merged with the steps after it up
/// to the last that waits for or names a job.
pub fn merged(text: &[u8], spans: Vec<Span>) -> Vec<Span> {
    let body = |s: &Span| &text[s.start..s.end];
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    let mut i = 0;
    while i < spans.len() {
        let mut span = spans[i];
        if backgrounds(body(&span)) {
            let last = (i + 1..spans.len())
                .rev()
                .find(|&j| uses_jobs(body(&spans[j])));
            if let Some(j) = last {
                span.end = spans[j].end;
                span.parses = spans[j].parses;
                i = j;
            }
        }
        out.push(span);
        i += 1;
    }
    out
}

/// Whether `text` starts a job: an `&` that is not part of `&&`, `&>`, `>&`, `<&` or `|&`.
fn backgrounds(text: &[u8]) -> bool {
    text.iter().enumerate().any(|(i, &b)| {
        let before = i.checked_sub(1).map(|p| text[p]);
        let after = text.get(i + 1).copied();
        b == b'&'
            && !matches!(before, Some(b'&' | b'>' | b'<' | b'|'))
            && !matches!(after, Some(b'&' | b'>'))
    })
}

/// Whether `text` waits for or names a job: `wait`, `$!`, `jobs`, `fg`, `bg`, `disown`, `%N`.
fn uses_jobs(text: &[u8]) -> bool {
    let words = crate::state::reach::identifiers(text);
    ["wait", "jobs", "fg", "bg", "disown"]
        .iter()
        .any(|w| words.contains(w.as_bytes()))
        || text
            .windows(2)
            .any(|w| w == b"$!" || (w[0] == b'%' && w[1].is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Vec<Span> {
        let mut out = Vec::new();
        let mut start = 0;
        for (n, line) in text.split_inclusive('\n').enumerate() {
            let body = line.trim_end();
            out.push(Span {
                start,
                end: start + body.len(),
                line: n + 1,
                parses: true,
            });
            start += line.len();
        }
        out
    }

    #[test]
    fn a_job_and_its_wait_are_one_step() {
        let text = "echo a\nsleep 1 &\npid=$!\necho b\nwait \"$pid\"\necho c\n";
        let merged = merged(text.as_bytes(), spans(text));
        let bodies: Vec<&str> = merged.iter().map(|s| &text[s.start..s.end]).collect();
        assert_eq!(
            bodies,
            [
                "echo a",
                "sleep 1 &\npid=$!\necho b\nwait \"$pid\"",
                "echo c"
            ]
        );
    }

    #[test]
    fn and_lists_and_redirections_are_no_jobs() {
        for text in ["a && b", "a >&2", "a &> log", "a |& b", "exec 3<&0"] {
            assert!(!backgrounds(text.as_bytes()), "{text}");
        }
        assert!(backgrounds(b"a & b"));
        assert!(backgrounds(b"for f in *; do x \"$f\" & done"));
    }
}

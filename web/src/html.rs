//! The page frame, escaping and the small pieces every page uses.

use std::fmt::Write;
use std::time::Duration;

use axum::http::header;
use axum::response::IntoResponse;
use shark_lineage::Run;
use shark_store::Digest;

/// `text` escaped for HTML text and attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` encoded for a URL query value.
pub(crate) fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A whole page: the header with the navigation, `title`, and `body`. `head` is extra markup
/// for the `<head>` (a reload while a document runs).
pub(crate) fn page(title: &str, head: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · shark</title><link rel=\"stylesheet\" href=\"/style.css\">{head}</head>\
         <body><header><a class=\"brand\" href=\"/\">shark</a> \
         <nav><a href=\"/\">Runs</a> <a href=\"/browse\">Files</a> <a href=\"/docs\">Documents</a></nav>\
         </header><main><h1>{t}</h1>\n{body}</main></body></html>\n",
        t = esc(title)
    )
}

/// A link to a run.
pub(crate) fn run_link(id: shark_lineage::RunId) -> String {
    format!("<a href=\"/run/{id}\">run {id}</a>")
}

/// A link to a file's page.
pub(crate) fn file_link(path: &str) -> String {
    format!(
        "<a class=\"path\" href=\"/file?path={}\">{}</a>",
        query_value(path),
        esc(path)
    )
}

/// A digest shortened to twelve hex digits, with the whole one as a tooltip.
pub(crate) fn digest(d: &Option<Digest>) -> String {
    match d {
        Some(d) => format!("<code title=\"{d}\">{}</code>", d.short(12)),
        None => "<code>-</code>".into(),
    }
}

/// `ok`, `exit N` or `signal N`, in a span classed by outcome.
pub(crate) fn status(run: &Run) -> String {
    let (class, text) = match (run.exit_code, run.signal) {
        (Some(0), _) => ("ok", "ok".to_owned()),
        (Some(c), _) => ("bad", format!("exit {c}")),
        (None, Some(s)) => ("bad", format!("signal {s}")),
        (None, None) => ("bad", "?".to_owned()),
    };
    format!("<span class=\"{class}\">{text}</span>")
}

/// A duration for people: `850 ms`, `3.2 s`, `4 min 12 s`.
pub(crate) fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// A command's first line, `…` when it has more.
pub(crate) fn one_line(command: &str) -> String {
    let mut lines = command.lines();
    let first = lines.next().unwrap_or_default().trim_end();
    match lines.next() {
        Some(_) => format!("{first} …"),
        None => first.to_owned(),
    }
}

/// The style sheet.
pub(crate) async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css")], STYLE)
}

const STYLE: &str = "
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2329;background:#fafbfc}
header{background:#16324f;color:#fff;padding:.5em 1.2em;display:flex;gap:2em;align-items:center}
header a{color:#fff;text-decoration:none;margin-right:1em}.brand{font-weight:700;font-size:1.2em}
main{padding:1em 1.6em;max-width:1200px}h1{font-size:1.35em;word-break:break-all}
h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .7em;border-bottom:1px solid #dde2e6;
text-align:left;vertical-align:top}th{background:#eef1f4}
code,pre,.path{font-family:ui-monospace,monospace;font-size:.92em}
pre{background:#f0f2f4;padding:.6em;overflow:auto;max-height:30em}
.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:600}.reused{color:#6f42c1}
.lines td.n{color:#8b949e;text-align:right;user-select:none;border:0}.lines td{border:0;padding:0 .6em}
.lines pre{margin:0;padding:0;background:none}
form.filter input,form.filter select{margin-right:.6em}
.block{border-left:4px solid #16324f;padding-left:.8em;margin:1em 0}
.running{color:#9a6700;font-weight:600}
svg a:hover text{text-decoration:underline}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(query_value("/w/a b&c=ü"), "/w/a%20b%26c%3D%C3%BC");
    }
}

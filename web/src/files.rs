//! `/file?path=P`: a file's versions; `/browse?dir=D`: the served folder's files.

use std::fmt::Write;
use std::path::{Component, Path, PathBuf};

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use shark_lineage::OutputKind;
use shark_store::Digest;

use crate::html::{self, esc};
use crate::{preview, Shared};

/// Runs listed as readers of a file.
const READERS_SHOWN: usize = 20;

/// The file page's query string.
#[derive(Debug, Deserialize)]
pub(crate) struct FileQuery {
    path: String,
    /// The version to preview (hex digest); the current or newest one by default.
    digest: Option<String>,
}

/// `path` made absolute against the served folder, `..` and `.` removed lexically.
pub(crate) fn absolute(state: &Shared, path: &str) -> PathBuf {
    let joined = state.config.folder.join(path);
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// The file page.
pub(crate) async fn file_page(State(state): State<Shared>, Query(q): Query<FileQuery>) -> Response {
    let path = absolute(&state, &q.path);
    let text = path.to_string_lossy().into_owned();
    let chosen = match q.digest.as_deref().map(str::parse::<Digest>) {
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => return crate::bad_request("malformed digest"),
        None => None,
    };
    let found = state.db(|db| {
        Ok::<_, shark_lineage::LineageError>((db.versions_of(&text)?, db.runs_reading(&text)?))
    });
    let (versions, readers) = match found {
        Ok(found) => found,
        Err(e) => return crate::failed("cannot look up the file", &e),
    };
    // The file as it is now, only inside the served folder.
    let current = (state.in_folder(&path) && path.is_file())
        .then(|| Digest::of_file(&path).ok())
        .flatten();
    if versions.is_empty() && readers.is_empty() && current.is_none() && !path.is_dir() {
        return crate::not_found(&format!("{text}: no recorded run read or wrote it"));
    }
    if path.is_dir() && state.in_folder(&path) && versions.is_empty() {
        let rel = path
            .strip_prefix(&state.config.folder)
            .unwrap_or(Path::new(""));
        return axum::response::Redirect::to(&format!(
            "/browse?dir={}",
            html::query_value(&rel.to_string_lossy())
        ))
        .into_response();
    }
    let mut body = String::new();
    if let Some(d) = current {
        let recorded = versions.iter().any(|(_, o)| o.digest == Some(d));
        let _ = writeln!(
            body,
            "<p>Now: {} {}</p>",
            html::digest(&Some(d)),
            if recorded {
                "(a recorded version)"
            } else {
                "(not produced by a recorded run)"
            }
        );
    }
    body.push_str(&versions_table(&text, &versions));
    if !readers.is_empty() {
        let links: Vec<String> = readers
            .iter()
            .take(READERS_SHOWN)
            .map(|r| html::run_link(r.id))
            .collect();
        let more = readers.len().saturating_sub(READERS_SHOWN);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        let _ = writeln!(body, "<h2>Read by</h2><p>{}{more}</p>", links.join(", "));
    }
    let shown = chosen
        .or(current)
        .or_else(|| versions.iter().find_map(|(_, o)| o.digest));
    if let Some(d) = shown {
        let name = text.rsplit('/').next().unwrap_or("file");
        let _ = write!(body, "<h2>Preview of {}</h2>", html::digest(&Some(d)));
        body.push_str(&preview::render(&state, name, &d).await);
    }
    Html(html::page(&text, "", &body)).into_response()
}

fn versions_table(path: &str, versions: &[(shark_lineage::Run, shark_lineage::Output)]) -> String {
    if versions.is_empty() {
        return "<p>No recorded run wrote it: a source.</p>\n".into();
    }
    let mut s = String::from("<h2>Versions</h2><table id=\"versions\"><tr><th>written</th><th>by</th><th>what</th><th>digest</th><th></th></tr>");
    let name = html::query_value(path.rsplit('/').next().unwrap_or("file"));
    let p = html::query_value(path);
    for (run, out) in versions {
        let what = match out.kind {
            OutputKind::Deleted => "deleted".to_owned(),
            k => format!("{k:?}").to_lowercase(),
        };
        let links = match (out.kind, out.digest) {
            (OutputKind::File, Some(d)) => format!(
                "<a href=\"/file?path={p}&amp;digest={d}\">preview</a> \
                 <a href=\"/blob/{d}?name={name}\">download</a> \
                 <a href=\"/graph?path={p}&amp;digest={d}\">lineage</a>"
            ),
            _ => String::new(),
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{} <code>{}</code></td><td>{what}</td><td>{}</td><td>{links}</td></tr>",
            shark_lineage::rfc3339(run.started),
            html::run_link(run.id),
            esc(&html::one_line(&run.command)),
            html::digest(&out.digest)
        );
    }
    s.push_str("</table>\n");
    s
}

/// The browse page's query string.
#[derive(Debug, Deserialize, Default)]
pub(crate) struct BrowseQuery {
    #[serde(default)]
    dir: String,
}

/// A listing of a folder inside the served one.
pub(crate) async fn browse(State(state): State<Shared>, Query(q): Query<BrowseQuery>) -> Response {
    let dir = absolute(&state, &q.dir);
    if !state.in_folder(&dir) {
        return crate::not_found(&format!("{} is outside the served folder", dir.display()));
    }
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => return crate::not_found(&format!("cannot list {}: {e}", dir.display())),
    };
    let mut rows: Vec<(bool, String)> = entries
        .flatten()
        .map(|e| {
            (
                e.file_type().is_ok_and(|t| t.is_dir()),
                e.file_name().to_string_lossy().into_owned(),
            )
        })
        .collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let rel = dir
        .strip_prefix(&state.config.folder)
        .unwrap_or(Path::new(""))
        .to_path_buf();
    let mut body = String::from("<table id=\"listing\">");
    if rel.components().next().is_some() {
        let up = rel.parent().unwrap_or(Path::new(""));
        let _ = write!(
            body,
            "<tr><td><a href=\"/browse?dir={}\">..</a></td></tr>",
            html::query_value(&up.to_string_lossy())
        );
    }
    for (is_dir, name) in rows {
        let child = rel.join(&name);
        let link = if is_dir {
            format!(
                "<a href=\"/browse?dir={}\">{}/</a>",
                html::query_value(&child.to_string_lossy()),
                esc(&name)
            )
        } else {
            let abs = dir.join(&name);
            format!(
                "<a class=\"path\" href=\"/file?path={}\">{}</a>",
                html::query_value(&abs.to_string_lossy()),
                esc(&name)
            )
        };
        let _ = write!(body, "<tr><td>{link}</td></tr>");
    }
    body.push_str("</table>\n");
    Html(html::page(&dir.to_string_lossy(), "", &body)).into_response()
}

//! Previews of a stored file version, chosen by its name and content: images inline, CSV and
//! TSV as tables, GeoTIFFs as thumbnails (GDAL's `gdal_translate`, when installed), GeoJSON
//! drawn as a map, other text with line numbers; and the handlers that serve a version's
//! bytes and thumbnails.

use std::fmt::Write;
use std::io::Read;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shark_store::Digest;

use crate::html::{self, esc};
use crate::Shared;

/// Bytes of a version read for a text, table or map preview.
const PREVIEW_BYTES: u64 = 2 << 20;
/// Lines of text shown.
const TEXT_LINES: usize = 2000;
/// Rows of a table shown.
const TABLE_ROWS: usize = 200;
/// Width of a thumbnail and of a map, in pixels.
const WIDTH: u32 = 480;

/// What a file looks like, from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Image(&'static str),
    Table(u8),
    GeoTiff,
    GeoJson,
    Other,
}

pub(crate) fn kind_of(name: &str) -> Kind {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => Kind::Image("image/png"),
        "jpg" | "jpeg" => Kind::Image("image/jpeg"),
        "gif" => Kind::Image("image/gif"),
        "webp" => Kind::Image("image/webp"),
        "svg" => Kind::Image("image/svg+xml"),
        "csv" => Kind::Table(b','),
        "tsv" | "tab" => Kind::Table(b'\t'),
        "tif" | "tiff" => Kind::GeoTiff,
        "geojson" => Kind::GeoJson,
        _ => Kind::Other,
    }
}

/// The preview of version `digest` of a file called `name`.
pub(crate) async fn render(state: &Shared, name: &str, digest: &Digest) -> String {
    let q = html::query_value(name);
    match kind_of(name) {
        Kind::Image(_) => format!("<img id=\"preview\" alt=\"{}\" style=\"max-width:100%\" src=\"/blob/{digest}?name={q}&amp;inline=1\">", esc(name)),
        Kind::GeoTiff => format!("<img id=\"preview\" class=\"thumbnail\" alt=\"thumbnail of {}\" src=\"/thumb/{digest}.png\">", esc(name)),
        kind => {
            let head = match read_head(state, digest) {
                Ok(bytes) => bytes,
                Err(e) => return format!("<p class=\"bad\">not in the store: {}</p>", esc(&e.to_string())),
            };
            match (kind, std::str::from_utf8(&head)) {
                (_, Err(_)) => format!("<p>Binary content, not shown. <a href=\"/blob/{digest}?name={q}\">Download</a>.</p>"),
                (Kind::Table(sep), Ok(text)) => table(text, sep),
                (Kind::GeoJson, Ok(text)) => crate::graph::geojson_map(text, WIDTH)
                    .unwrap_or_else(|| text_lines(text)),
                (_, Ok(text)) if text.contains('\0') => "<p>Binary content, not shown.</p>".into(),
                (_, Ok(text)) => text_lines(text),
            }
        }
    }
}

/// The first [`PREVIEW_BYTES`] of a version, cut at a character boundary.
fn read_head(state: &Shared, digest: &Digest) -> Result<Vec<u8>, shark_store::StoreError> {
    let mut reader = state.store.open_blob(digest)?;
    let mut out = Vec::new();
    if let Err(e) = (&mut reader).take(PREVIEW_BYTES).read_to_end(&mut out) {
        return Err(reader.classify(e));
    }
    while std::str::from_utf8(&out).is_err_and(|e| e.error_len().is_none() && !out.is_empty()) {
        out.pop();
    }
    Ok(out)
}

fn text_lines(text: &str) -> String {
    let mut s = String::from("<table class=\"lines\" id=\"preview\">");
    for (n, line) in text.lines().take(TEXT_LINES).enumerate() {
        let _ = write!(
            s,
            "<tr><td class=\"n\">{}</td><td><pre>{}</pre></td></tr>",
            n + 1,
            esc(line)
        );
    }
    s.push_str("</table>");
    let total = text.lines().count();
    if total > TEXT_LINES {
        let _ = write!(s, "<p>{} more lines not shown.</p>", total - TEXT_LINES);
    }
    s
}

/// One row of delimiter-separated values, with `"` quoting (RFC 4180, within a line).
fn fields(line: &str, sep: u8) -> Vec<String> {
    let sep = sep as char;
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.is_empty() => quoted = true,
            (false, c) if c == sep => out.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn table(text: &str, sep: u8) -> String {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return "<p>Empty.</p>".into();
    };
    let mut s = String::from("<table id=\"preview\" class=\"csv\"><tr>");
    for f in fields(header, sep) {
        let _ = write!(s, "<th>{}</th>", esc(&f));
    }
    s.push_str("</tr>");
    let mut shown = 0;
    for line in lines.by_ref().take(TABLE_ROWS) {
        s.push_str("<tr>");
        for f in fields(line, sep) {
            let _ = write!(s, "<td>{}</td>", esc(&f));
        }
        s.push_str("</tr>");
        shown += 1;
    }
    s.push_str("</table>");
    let more = lines.count();
    let _ = write!(
        s,
        "<p>{shown} rows shown{}.</p>",
        if more > 0 {
            format!(", {more} more")
        } else {
            String::new()
        }
    );
    s
}

/// The query string of `/blob/D`.
#[derive(Debug, Deserialize, Default)]
pub(crate) struct BlobQuery {
    name: Option<String>,
    inline: Option<u8>,
}

/// A version's bytes: a download named `name`, or (`inline=1`) shown in the page.
pub(crate) async fn blob(
    State(state): State<Shared>,
    Path(digest): Path<String>,
    Query(q): Query<BlobQuery>,
) -> Response {
    let Ok(d) = digest.parse::<Digest>() else {
        return crate::bad_request("malformed digest");
    };
    let read = tokio::task::spawn_blocking(move || state.store.read_to_vec(&d)).await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => return crate::not_found(&format!("blob {d}: {e}")),
        Err(e) => return crate::failed("cannot read the blob", &e),
    };
    let name = q.name.unwrap_or_else(|| d.to_hex());
    let safe: String = name
        .chars()
        .filter(|c| !matches!(c, '"' | '\\' | '/') && !c.is_control())
        .collect();
    let (kind, disposition) = match (q.inline, kind_of(&name)) {
        (Some(1), Kind::Image(mime)) => (mime, format!("inline; filename=\"{safe}\"")),
        _ => (
            "application/octet-stream",
            format!("attachment; filename=\"{safe}\""),
        ),
    };
    (
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response()
}

/// `/thumb/D.png`: a PNG thumbnail of a stored GeoTIFF, through `gdal_translate`.
pub(crate) async fn thumbnail(State(state): State<Shared>, Path(file): Path<String>) -> Response {
    let Some(d) = file
        .strip_suffix(".png")
        .and_then(|h| h.parse::<Digest>().ok())
    else {
        return crate::bad_request("expected /thumb/DIGEST.png");
    };
    match tokio::task::spawn_blocking(move || geotiff_png(&state, &d)).await {
        Ok(Ok(png)) => ([(header::CONTENT_TYPE, "image/png")], png).into_response(),
        Ok(Err(why)) => (StatusCode::NOT_FOUND, why).into_response(),
        Err(e) => crate::failed("cannot make the thumbnail", &e),
    }
}

fn geotiff_png(state: &Shared, d: &Digest) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
    let tif = dir.path().join("in.tif");
    let png = dir.path().join("out.png");
    state
        .store
        .restore(d, &tif, 0o600)
        .map_err(|e| format!("blob {d}: {e}"))?;
    let out = std::process::Command::new("gdal_translate")
        .args([
            "-q", "-of", "PNG", "-b", "1", "-ot", "Byte", "-scale", "-outsize",
        ])
        .arg(WIDTH.to_string())
        .arg("0")
        .arg(&tif)
        .arg(&png)
        .output()
        .map_err(|e| {
            format!("no thumbnail: gdal_translate cannot run ({e}); install GDAL (gdal-bin)")
        })?;
    if !out.status.success() {
        return Err(format!(
            "gdal_translate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::read(&png).map_err(|e| format!("cannot read the thumbnail: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_follow_quoting() {
        assert_eq!(
            fields("a,\"b,c\",\"d\"\"e\",", b','),
            ["a", "b,c", "d\"e", ""]
        );
        assert_eq!(fields("x\ty", b'\t'), ["x", "y"]);
    }

    #[test]
    fn kinds_by_extension() {
        assert_eq!(kind_of("a/B.PNG"), Kind::Image("image/png"));
        assert_eq!(kind_of("dem.tif"), Kind::GeoTiff);
        assert_eq!(kind_of("x.tsv"), Kind::Table(b'\t'));
        assert_eq!(kind_of("regions.geojson"), Kind::GeoJson);
        assert_eq!(kind_of("README"), Kind::Other);
    }
}

//! `/graph`: a file version's lineage drawn as SVG, every node a link (Graphviz's `dot` when
//! it is installed, else laid out here in columns); `/prov`: the same lineage as PROV-JSON;
//! and the SVG map of a GeoJSON preview.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::io::Write as _;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use shark_lineage::{LineageNode, LineageOptions};
use shark_store::Digest;

use crate::html::{self, esc};
use crate::Shared;

/// The query string of `/graph` and `/prov`.
#[derive(Debug, Deserialize)]
pub(crate) struct GraphQuery {
    path: String,
    digest: String,
    /// `shark` to draw without Graphviz even where it is installed.
    engine: Option<String>,
}

/// One node of the drawing.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Node {
    key: String,
    label: String,
    href: String,
    run: bool,
}

/// The nodes (by key, with their depth from the asked-for file) and edges of a lineage tree.
#[derive(Default, Debug)]
struct Drawing {
    nodes: BTreeMap<String, (Node, usize)>,
    edges: BTreeSet<(String, String)>,
}

impl Drawing {
    fn of(tree: &LineageNode) -> Drawing {
        let mut d = Drawing::default();
        d.add(tree, 0);
        d
    }

    fn node(&mut self, node: Node, depth: usize) -> String {
        let key = node.key.clone();
        let entry = self.nodes.entry(key.clone()).or_insert((node, depth));
        entry.1 = entry.1.max(depth);
        key
    }

    fn add(&mut self, n: &LineageNode, depth: usize) -> String {
        let digest = n.digest.map(|d| d.to_hex()).unwrap_or_default();
        let name = n.path.rsplit('/').next().unwrap_or(&n.path).to_owned();
        let file = self.node(
            Node {
                key: format!("f{}@{digest}", n.path),
                label: name,
                href: format!("/file?path={}&digest={digest}", html::query_value(&n.path)),
                run: false,
            },
            depth,
        );
        if let Some(run) = &n.run {
            let r = self.node(
                Node {
                    key: format!("r{}", run.id),
                    label: format!("run {}: {}", run.id, short(&run.command)),
                    href: format!("/run/{}", run.id),
                    run: true,
                },
                depth + 1,
            );
            self.edges.insert((r.clone(), file.clone()));
            for input in &n.inputs {
                let i = self.add(input, depth + 2);
                self.edges.insert((i, r.clone()));
            }
        }
        file
    }

    /// The graph in Graphviz's language, with links.
    fn dot(&self) -> String {
        let mut s = String::from(
            "digraph lineage {\n rankdir=LR;\n node [fontname=\"monospace\", fontsize=11];\n",
        );
        let ids: BTreeMap<&String, usize> =
            self.nodes.keys().enumerate().map(|(i, k)| (k, i)).collect();
        for (key, (node, _)) in &self.nodes {
            let shape = if node.run {
                "box, style=filled, fillcolor=\"#dde8f3\""
            } else {
                "note"
            };
            let _ = writeln!(
                s,
                " n{} [label={}, shape={shape}, URL={}, tooltip={}];",
                ids[key],
                quote(&node.label),
                quote(&node.href),
                quote(&node.key[1..])
            );
        }
        for (a, b) in &self.edges {
            let _ = writeln!(s, " n{} -> n{};", ids[a], ids[b]);
        }
        s.push_str("}\n");
        s
    }

    /// The graph laid out here: one column per depth, sources on the left.
    fn svg(&self) -> String {
        let (col, row, w, h) = (250, 56, 210, 36);
        let max_depth = self.nodes.values().map(|(_, d)| *d).max().unwrap_or(0);
        let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
        let mut at: BTreeMap<&String, (usize, usize)> = BTreeMap::new();
        for (key, (_, depth)) in &self.nodes {
            let r = rows.entry(*depth).or_default();
            at.insert(key, (20 + (max_depth - depth) * col, 20 + *r * row));
            *r += 1;
        }
        let width = 40 + (max_depth + 1) * col;
        let height = 40 + rows.values().max().copied().unwrap_or(1) * row;
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
             font-family=\"monospace\" font-size=\"11\"><defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" \
             refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">\
             <path d=\"M0,0 L10,5 L0,10 z\"/></marker></defs>\n"
        );
        for (a, b) in &self.edges {
            let ((x1, y1), (x2, y2)) = (at[a], at[b]);
            let _ = writeln!(
                s,
                "<line x1=\"{}\" y1=\"{}\" x2=\"{x2}\" y2=\"{}\" stroke=\"#555\" marker-end=\"url(#arrow)\"/>",
                x1 + w,
                y1 + h / 2,
                y2 + h / 2
            );
        }
        for (key, (node, _)) in &self.nodes {
            let (x, y) = at[key];
            let fill = if node.run { "#dde8f3" } else { "#fff" };
            let label: String = node.label.chars().take(28).collect();
            let _ = writeln!(
                s,
                "<a href=\"{}\"><title>{}</title><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" \
                 rx=\"{}\" fill=\"{fill}\" stroke=\"#16324f\"/><text x=\"{}\" y=\"{}\">{}</text></a>",
                esc(&node.href),
                esc(&node.key[1..]),
                if node.run { 0 } else { 6 },
                x + 8,
                y + h / 2 + 4,
                esc(&label)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// A DOT string.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn short(command: &str) -> String {
    let first = html::one_line(command);
    let mut s: String = first.chars().take(40).collect();
    if s.len() < first.len() {
        s.push('…');
    }
    s
}

/// `dot -Tsvg` of `graph`, or `None` when Graphviz is not installed or fails.
fn graphviz(graph: &str) -> Option<String> {
    let mut child = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(graph.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let start = text.find("<svg")?;
    out.status.success().then(|| text[start..].to_owned())
}

fn lineage(state: &Shared, q: &GraphQuery) -> Result<LineageNode, Box<Response>> {
    let digest: Digest = q
        .digest
        .parse()
        .map_err(|_| Box::new(crate::bad_request("malformed digest")))?;
    let path = crate::files::absolute(state, &q.path)
        .to_string_lossy()
        .into_owned();
    state
        .db(|db| db.lineage(&path, &digest, &LineageOptions::default()))
        .map_err(|e| Box::new(crate::failed("cannot follow the lineage", &e)))
}

/// The lineage graph page.
pub(crate) async fn page(State(state): State<Shared>, Query(q): Query<GraphQuery>) -> Response {
    let tree = match lineage(&state, &q) {
        Ok(tree) => tree,
        Err(r) => return *r,
    };
    let drawing = Drawing::of(&tree);
    let own = q.engine.as_deref() == Some("shark");
    let dot = drawing.dot();
    let drawn = match own {
        true => None,
        false => tokio::task::spawn_blocking(move || graphviz(&dot))
            .await
            .ok()
            .flatten(),
    };
    let (svg, by) = match drawn {
        Some(svg) => (svg, "Graphviz dot"),
        None => (
            drawing.svg(),
            "shark (Graphviz's dot is not installed, or was not asked for)",
        ),
    };
    let p = html::query_value(&tree.path);
    let body = format!(
        "<p>Click a run or a file. Drawn by {by}. <a href=\"/prov?path={p}&amp;digest={d}\">PROV-JSON</a></p>\
         <div id=\"graph\">{svg}</div>",
        d = q.digest
    );
    Html(html::page(&format!("Lineage of {}", tree.path), "", &body)).into_response()
}

/// The lineage as a PROV-JSON download.
pub(crate) async fn prov(State(state): State<Shared>, Query(q): Query<GraphQuery>) -> Response {
    let Ok(digest) = q.digest.parse::<Digest>() else {
        return crate::bad_request("malformed digest");
    };
    let path = crate::files::absolute(&state, &q.path)
        .to_string_lossy()
        .into_owned();
    let target = shark_export::Target {
        version: shark_export::FileVersion { path, digest },
    };
    let graph = state.db(|db| shark_export::Graph::of(db, &[target], &LineageOptions::default()));
    match graph {
        Ok(g) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"lineage.prov.json\"",
                ),
            ],
            format!("{:#}\n", shark_export::prov::document(&g)),
        )
            .into_response(),
        Err(e) => crate::failed("cannot collect the lineage", &e),
    }
}

/// Every position of a GeoJSON geometry, as (longitude, latitude) rings or lines.
fn lines_of(geometry: &serde_json::Value, out: &mut Vec<(bool, Vec<(f64, f64)>)>) {
    let point = |v: &serde_json::Value| Some((v.get(0)?.as_f64()?, v.get(1)?.as_f64()?));
    let line = |v: &serde_json::Value| -> Vec<(f64, f64)> {
        v.as_array()
            .map(|a| a.iter().filter_map(point).collect())
            .unwrap_or_default()
    };
    let coords = &geometry["coordinates"];
    let each = |v: &serde_json::Value| v.as_array().cloned().unwrap_or_default();
    match geometry["type"].as_str() {
        Some("Feature") => lines_of(&geometry["geometry"], out),
        Some("FeatureCollection") => each(&geometry["features"])
            .iter()
            .for_each(|f| lines_of(f, out)),
        Some("GeometryCollection") => each(&geometry["geometries"])
            .iter()
            .for_each(|g| lines_of(g, out)),
        Some("Point") => out.extend(point(coords).map(|p| (false, vec![p]))),
        Some("MultiPoint") => out.extend(line(coords).into_iter().map(|p| (false, vec![p]))),
        Some("LineString") => out.push((false, line(coords))),
        Some("MultiLineString") => out.extend(each(coords).iter().map(|l| (false, line(l)))),
        Some("Polygon") => out.extend(each(coords).iter().map(|r| (true, line(r)))),
        Some("MultiPolygon") => {
            for polygon in each(coords) {
                out.extend(each(&polygon).iter().map(|r| (true, line(r))));
            }
        }
        _ => {}
    }
}

/// A GeoJSON document drawn as an SVG map (equirectangular, north up, with its bounds), or
/// `None` when it is not GeoJSON with coordinates.
pub(crate) fn geojson_map(text: &str, width: u32) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    let mut shapes = Vec::new();
    lines_of(&json, &mut shapes);
    let all: Vec<(f64, f64)> = shapes.iter().flat_map(|(_, l)| l.iter().copied()).collect();
    if all.is_empty() {
        return None;
    }
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for (x, y) in &all {
        (x0, y0, x1, y1) = (x0.min(*x), y0.min(*y), x1.max(*x), y1.max(*y));
    }
    let scale_x = ((y0 + y1) / 2.0).to_radians().cos().max(0.01);
    let (span_x, span_y) = (((x1 - x0) * scale_x).max(1e-9), (y1 - y0).max(1e-9));
    let w = f64::from(width);
    let k = w / span_x.max(span_y);
    let h = (span_y * k).max(20.0);
    let px = |(x, y): (f64, f64)| ((x - x0) * scale_x * k + 10.0, (y1 - y) * k + 10.0);
    let mut s = format!(
        "<svg id=\"map\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" \
         style=\"background:#eaf2f8\"><rect x=\"10\" y=\"10\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"none\" stroke=\"#9ab\"/>",
        w + 20.0,
        h + 40.0,
        span_x * k
    );
    for (closed, line) in &shapes {
        if let [only] = line.as_slice() {
            let (x, y) = px(*only);
            let _ = write!(
                s,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"#cf222e\"/>"
            );
            continue;
        }
        let points: Vec<String> = line
            .iter()
            .map(|p| {
                let (x, y) = px(*p);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let (tag, fill) = if *closed {
            ("polygon", "#b6d7a8")
        } else {
            ("polyline", "none")
        };
        let _ = write!(
            s,
            "<{tag} points=\"{}\" fill=\"{fill}\" stroke=\"#16324f\" stroke-width=\"1\"/>",
            points.join(" ")
        );
    }
    let _ = write!(
        s,
        "<text x=\"10\" y=\"{:.1}\" font-size=\"11\">lon {x0:.4} to {x1:.4}, lat {y0:.4} to {y1:.4}; {} features</text></svg>",
        h + 32.0,
        shapes.len()
    );
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geojson_draws_polygons_and_points() {
        let doc = r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}},
          {"type":"Feature","geometry":{"type":"Point","coordinates":[0.5,0.5]}}]}"#;
        let svg = geojson_map(doc, 100).unwrap();
        assert_eq!(svg.matches("<polygon").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains("2 features"));
        assert!(geojson_map("{\"type\":\"FeatureCollection\",\"features\":[]}", 100).is_none());
        assert!(geojson_map("not json", 100).is_none());
    }
}

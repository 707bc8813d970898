//! W3C PROV-JSON (the W3C member submission "PROV-JSON", as read by the `prov` Python package).
//!
//! The document declares two namespaces: `shark` (`urn:shark:`) for shark's own terms and
//! identifiers, and the standard `prov`. Identifiers:
//!
//! - a file version is the entity `shark:file/DIGEST/PATH` (the path without its leading `/`,
//!   percent-encoded where it is not a plain URI character), with `prov:type` `prov:Entity`,
//!   `prov:label` its path, `shark:path` and `shark:digest` (`blake3:HEX`);
//! - a run is the activity `shark:run/ID` with `prov:startTime`, `prov:endTime`, `prov:label`
//!   its command, `shark:exitCode` and `shark:cwd`;
//! - shark itself is the agent `shark:shark`, a `prov:SoftwareAgent`.
//!
//! Relations (each under a blank-node id `_:u1`, `_:g1`, ...): `used` (run, file version it
//! read), `wasGeneratedBy` (file version, run that wrote it, with the run's end time),
//! `wasDerivedFrom` (each written version from each read version of the same run, naming the
//! run), and `wasAssociatedWith` (each run with shark).

use serde_json::{json, Map, Value};

use crate::{ended, FileVersion, Graph};

/// The identifier of a file version.
pub fn entity_id(v: &FileVersion) -> String {
    let path = v.path.strip_prefix('/').unwrap_or(&v.path);
    format!("shark:file/{}/{}", v.digest.to_hex(), percent_encode(path))
}

/// The identifier of a run.
pub fn activity_id(run: shark_lineage::RunId) -> String {
    format!("shark:run/{run}")
}

/// The PROV-JSON document of `graph`.
pub fn document(graph: &Graph) -> Value {
    let mut entity = Map::new();
    for v in &graph.files {
        entity.insert(
            entity_id(v),
            json!({
                "prov:label": v.path,
                "prov:type": {"$": "prov:Entity", "type": "prov:QUALIFIED_NAME"},
                "shark:path": v.path,
                "shark:digest": format!("blake3:{}", v.digest.to_hex()),
            }),
        );
    }
    let mut activity = Map::new();
    let mut associated = Map::new();
    for (id, run) in &graph.runs {
        let mut attrs = json!({
            "prov:startTime": shark_lineage::rfc3339(run.started),
            "prov:endTime": shark_lineage::rfc3339(ended(run)),
            "prov:label": run.command,
            "shark:cwd": run.cwd,
        });
        if let Some(code) = run.exit_code {
            attrs["shark:exitCode"] = json!(code);
        }
        activity.insert(activity_id(*id), attrs);
        associated.insert(
            format!("_:a{}", associated.len() + 1),
            json!({"prov:activity": activity_id(*id), "prov:agent": "shark:shark"}),
        );
    }
    let mut used = Map::new();
    for (run, v) in &graph.used {
        used.insert(
            format!("_:u{}", used.len() + 1),
            json!({"prov:activity": activity_id(*run), "prov:entity": entity_id(v)}),
        );
    }
    let mut generated = Map::new();
    let mut derived = Map::new();
    for (v, run) in &graph.generated {
        let mut g = json!({"prov:entity": entity_id(v), "prov:activity": activity_id(*run)});
        if let Some(r) = graph.runs.get(run) {
            g["prov:time"] = json!(shark_lineage::rfc3339(ended(r)));
        }
        generated.insert(format!("_:g{}", generated.len() + 1), g);
        for source in graph.used_by(*run) {
            if source == v {
                continue;
            }
            derived.insert(
                format!("_:d{}", derived.len() + 1),
                json!({
                    "prov:generatedEntity": entity_id(v),
                    "prov:usedEntity": entity_id(source),
                    "prov:activity": activity_id(*run),
                }),
            );
        }
    }
    json!({
        "prefix": {"shark": "urn:shark:"},
        "entity": entity,
        "activity": activity,
        "agent": {"shark:shark": {
            "prov:type": {"$": "prov:SoftwareAgent", "type": "prov:QUALIFIED_NAME"},
            "prov:label": "shark",
        }},
        "used": used,
        "wasGeneratedBy": generated,
        "wasDerivedFrom": derived,
        "wasAssociatedWith": associated,
    })
}

/// `text` with every byte that is not an unreserved URI character or `/` percent-encoded.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_uri_safe() {
        assert_eq!(percent_encode("w/my data/ä.csv"), "w/my%20data/%C3%A4.csv");
        let v = FileVersion {
            path: "/w/a b".into(),
            digest: shark_store::Digest::of_bytes(b"x"),
        };
        let id = entity_id(&v);
        assert!(id.starts_with("shark:file/"));
        assert!(id.ends_with("/w/a%20b"));
    }
}

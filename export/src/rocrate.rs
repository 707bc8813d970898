//! RO-Crate 1.1 with the Process Run Crate profile (0.5), or the Workflow Run Crate profile
//! (0.5) when every run came from one script or document.
//!
//! The crate is a directory: `ro-crate-metadata.json` and the files. A file version whose
//! content the store holds is copied in: under its path relative to the export's base
//! directory when it lies inside it, else under `external/` followed by its absolute path;
//! a path seen at several versions gets the digest's first twelve hex digits appended to
//! the names of all but the asked-for version. A version the store lacks is described by
//! digest only (`@id` `urn:blake3:HEX`, with the original path as its name).
//!
//! Each run is a `CreateAction` (`#run-ID`): `instrument` the program it executed (a
//! `SoftwareApplication`), `object` the files it read, `result` those it wrote, `startTime`,
//! `endTime`, `actionStatus` (completed or failed, with `error`). In a Workflow Run Crate the
//! script or document is the root's `mainEntity` (a `ComputationalWorkflow` in Bash or Shark
//! markdown, with `FormalParameter`s for its inputs and outputs), and one more action
//! (`#workflow-run`) runs it, from the first step's start to the last step's end.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Value};
use shark_lineage::Run;
use shark_store::Store;

use crate::{ended, program_of, ExportError, FileVersion, Graph};

/// The profiles' permalinks.
const PROCESS: &str = "https://w3id.org/ro/wfrun/process/0.5";
const WORKFLOW: &str = "https://w3id.org/ro/wfrun/workflow/0.5";
const WORKFLOW_RO_CRATE: &str = "https://w3id.org/workflowhub/workflow-ro-crate/1.0";
const FORMAL_PARAMETER: &str = "https://bioschemas.org/profiles/FormalParameter/1.0-RELEASE";

/// How to write a crate.
#[derive(Clone, Debug)]
pub struct Options {
    /// Files inside this directory keep their relative path in the crate.
    pub base: PathBuf,
    /// The crate's license (a URL or a text); RO-Crate wants one.
    pub license: String,
    /// When the crate was made (`datePublished`).
    pub now: SystemTime,
}

/// What [`write`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Runs described.
    pub runs: usize,
    /// Files copied in from the store.
    pub copied: usize,
    /// Files described by digest only (not in the store).
    pub referenced: usize,
    /// The profile followed: the Workflow Run Crate's when true, else the Process Run Crate's.
    pub workflow: bool,
}

/// Writes the crate of `graph` into `dir` (created if missing; it must be empty).
pub fn write(
    graph: &Graph,
    store: &Store,
    dir: &Path,
    opts: &Options,
) -> Result<Summary, ExportError> {
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ExportError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    if std::fs::read_dir(dir)
        .map_err(write_err(dir))?
        .next()
        .is_some()
    {
        return Err(ExportError::NotEmpty {
            path: dir.to_owned(),
        });
    }
    let mut summary = Summary::default();
    let names = crate_names(graph, &opts.base);
    let mut ids = BTreeMap::new();
    for v in &graph.files {
        let name = &names[v];
        let dest = dir.join(name);
        let copied = store.contains(&v.digest) && {
            let parent = dest.parent().unwrap_or(dir);
            std::fs::create_dir_all(parent).map_err(write_err(parent))?;
            store.restore(&v.digest, &dest, 0o644).is_ok()
        };
        let id = match copied {
            true => {
                summary.copied += 1;
                name.clone()
            }
            false => {
                summary.referenced += 1;
                format!("urn:blake3:{}", v.digest.to_hex())
            }
        };
        ids.insert(v.clone(), id);
    }
    let workflow = graph
        .common_source()
        .filter(|s| s.is_file())
        .map(|s| copy_source(&s, dir))
        .transpose()?;
    summary.runs = graph.runs.len();
    summary.workflow = workflow.is_some();
    let metadata = metadata(graph, &ids, workflow.as_deref(), opts);
    let path = dir.join("ro-crate-metadata.json");
    let text = serde_json::to_string_pretty(&metadata).map_err(std::io::Error::other);
    std::fs::write(&path, text.map_err(write_err(&path))?).map_err(write_err(&path))?;
    Ok(summary)
}

/// Copies the script or document into the crate; returns its name there.
fn copy_source(source: &Path, dir: &Path) -> Result<String, ExportError> {
    let name = source
        .file_name()
        .map_or("workflow".into(), |n| n.to_string_lossy().into_owned());
    let name = format!("workflow/{name}");
    let dest = dir.join(&name);
    let fail = |source| ExportError::Write {
        path: dest.clone(),
        source,
    };
    std::fs::create_dir_all(dir.join("workflow")).map_err(fail)?;
    std::fs::copy(source, &dest).map_err(fail)?;
    Ok(name)
}

/// The name each file version gets inside the crate.
fn crate_names(graph: &Graph, base: &Path) -> BTreeMap<FileVersion, String> {
    let mut versions: BTreeMap<&str, usize> = BTreeMap::new();
    for v in &graph.files {
        *versions.entry(v.path.as_str()).or_default() += 1;
    }
    let targets: BTreeSet<&FileVersion> = graph.targets.iter().collect();
    graph
        .files
        .iter()
        .map(|v| {
            let path = Path::new(&v.path);
            let mut name = match path.strip_prefix(base) {
                Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
                _ => format!("external/{}", v.path.trim_start_matches('/')),
            };
            if versions[v.path.as_str()] > 1 && !targets.contains(v) {
                name = format!("{name}~{}", v.digest.short(12));
            }
            (v.clone(), name)
        })
        .collect()
}

/// The whole `ro-crate-metadata.json`.
fn metadata(
    graph: &Graph,
    ids: &BTreeMap<FileVersion, String>,
    workflow: Option<&str>,
    opts: &Options,
) -> Value {
    let mut graph_items = vec![json!({
        "@id": "ro-crate-metadata.json",
        "@type": "CreativeWork",
        "conformsTo": {"@id": "https://w3id.org/ro/crate/1.1"},
        "about": {"@id": "./"},
    })];
    let mut profiles = vec![profile(PROCESS, "Process Run Crate")];
    if workflow.is_some() {
        profiles.push(profile(WORKFLOW, "Workflow Run Crate"));
        profiles.push(profile(WORKFLOW_RO_CRATE, "Workflow RO-Crate"));
    }
    let mut root = root_entity(graph, ids, opts, &profiles);
    let mut entities = Vec::new();
    let mut actions: Vec<Value> = graph
        .runs
        .values()
        .map(|run| run_action(graph, run, ids, &mut entities))
        .collect();
    if let Some(name) = workflow {
        root["mainEntity"] = json!({"@id": name});
        root["hasPart"]
            .as_array_mut()
            .expect("hasPart is a list")
            .push(json!({"@id": name}));
        let (wf, wf_action) = workflow_entities(graph, ids, name, &mut entities);
        entities.push(wf);
        actions.push(wf_action);
    }
    root["mentions"] = actions.iter().map(|a| json!({"@id": a["@id"]})).collect();
    graph_items.push(root);
    graph_items.extend(profiles);
    graph_items.extend(file_entities(graph, ids));
    graph_items.extend(actions);
    graph_items.extend(dedup(entities));
    json!({
        "@context": "https://w3id.org/ro/crate/1.1/context",
        "@graph": graph_items,
    })
}

fn profile(id: &str, name: &str) -> Value {
    let version = id.rsplit('/').next().unwrap_or_default();
    json!({"@id": id, "@type": "CreativeWork", "name": name, "version": version})
}

fn root_entity(
    graph: &Graph,
    ids: &BTreeMap<FileVersion, String>,
    opts: &Options,
    profiles: &[Value],
) -> Value {
    let names: Vec<&str> = graph.targets.iter().map(|t| t.path.as_str()).collect();
    let parts: Vec<Value> = ids
        .values()
        .filter(|id| !id.starts_with("urn:"))
        .map(|id| json!({"@id": id}))
        .collect();
    json!({
        "@id": "./",
        "@type": "Dataset",
        "name": format!("Lineage of {}", names.join(", ")),
        "description": format!(
            "The runs shark recorded that produced {}, and the files they read and wrote.",
            names.join(", ")
        ),
        "datePublished": shark_lineage::rfc3339(opts.now),
        "license": opts.license,
        "conformsTo": profiles.iter().map(|p| json!({"@id": p["@id"]})).collect::<Vec<_>>(),
        "hasPart": parts,
    })
}

fn file_entities(graph: &Graph, ids: &BTreeMap<FileVersion, String>) -> Vec<Value> {
    graph
        .files
        .iter()
        .map(|v| {
            json!({
                "@id": ids[v],
                "@type": "File",
                "name": v.path,
                "identifier": format!("blake3:{}", v.digest.to_hex()),
            })
        })
        .collect()
}

fn refs<'a>(
    ids: &BTreeMap<FileVersion, String>,
    vs: impl Iterator<Item = &'a FileVersion>,
) -> Value {
    vs.map(|v| json!({"@id": ids[v]})).collect()
}

/// The `CreateAction` of one run; its instrument goes into `entities`.
fn run_action(
    graph: &Graph,
    run: &Run,
    ids: &BTreeMap<FileVersion, String>,
    entities: &mut Vec<Value>,
) -> Value {
    let program = program_of(run);
    let name = program.rsplit('/').next().unwrap_or(&program).to_owned();
    let tool = format!("#program-{}", crate::prov::percent_encode(&name));
    entities.push(json!({"@id": tool, "@type": "SoftwareApplication", "name": name}));
    let mut action = json!({
        "@id": format!("#run-{}", run.id),
        "@type": "CreateAction",
        "name": format!("shark run {}: {}", run.id, first_line(&run.command)),
        "description": run.command,
        "instrument": {"@id": tool},
        "object": refs(ids, graph.used_by(run.id)),
        "result": refs(ids, graph.generated_by(run.id)),
        "startTime": shark_lineage::rfc3339(run.started),
        "endTime": shark_lineage::rfc3339(ended(run)),
    });
    status(&mut action, run.exit_code, run.signal);
    action
}

fn status(action: &mut Value, exit_code: Option<i32>, signal: Option<i32>) {
    let (status, error) = match (exit_code, signal) {
        (Some(0), _) => ("http://schema.org/CompletedActionStatus", None),
        (Some(code), _) => (
            "http://schema.org/FailedActionStatus",
            Some(format!("exit status {code}")),
        ),
        (None, s) => (
            "http://schema.org/FailedActionStatus",
            Some(format!("killed by signal {}", s.unwrap_or(0))),
        ),
    };
    action["actionStatus"] = json!({"@id": status});
    if let Some(error) = error {
        action["error"] = json!(error);
    }
}

/// The main workflow entity (with its language and formal parameters into `entities`) and
/// the action that ran it.
fn workflow_entities(
    graph: &Graph,
    ids: &BTreeMap<FileVersion, String>,
    name: &str,
    entities: &mut Vec<Value>,
) -> (Value, Value) {
    let (lang_id, lang_name, lang_url) = if name.ends_with(".md") {
        (
            "#shark-markdown",
            "Shark markdown",
            "https://github.com/quantifyearth/shark",
        )
    } else {
        ("#bash", "Bash", "https://www.gnu.org/software/bash/")
    };
    entities.push(json!({"@id": lang_id, "@type": "ComputerLanguage", "name": lang_name, "url": {"@id": lang_url}}));
    let produced: BTreeSet<&FileVersion> = graph.generated.iter().map(|(v, _)| v).collect();
    let sources: Vec<&FileVersion> = graph
        .used
        .iter()
        .map(|(_, v)| v)
        .filter(|v| !produced.contains(v))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let params = |kind: &str, vs: &[&FileVersion], entities: &mut Vec<Value>| -> Vec<Value> {
        vs.iter()
            .enumerate()
            .map(|(i, v)| {
                let id = format!("#{kind}-{}", i + 1);
                entities.push(json!({
                    "@id": id,
                    "@type": "FormalParameter",
                    "additionalType": "File",
                    "name": v.path,
                    "conformsTo": {"@id": FORMAL_PARAMETER},
                    "workExample": {"@id": ids[*v]},
                }));
                json!({"@id": id})
            })
            .collect()
    };
    let targets: Vec<&FileVersion> = graph.targets.iter().collect();
    let inputs = params("input", &sources, entities);
    let outputs = params("output", &targets, entities);
    let wf = json!({
        "@id": name,
        "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow"],
        "name": name.trim_start_matches("workflow/"),
        "programmingLanguage": {"@id": lang_id},
        "input": inputs,
        "output": outputs,
    });
    let start = graph
        .runs
        .values()
        .map(|r| r.started)
        .min()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let end = graph.runs.values().map(ended).max().unwrap_or(start);
    let failed = graph.runs.values().find(|r| r.exit_code != Some(0));
    let mut action = json!({
        "@id": "#workflow-run",
        "@type": "CreateAction",
        "name": format!("shark run of {}", name.trim_start_matches("workflow/")),
        "instrument": {"@id": name},
        "object": refs(ids, sources.iter().copied()),
        "result": refs(ids, targets.iter().copied()),
        "startTime": shark_lineage::rfc3339(start),
        "endTime": shark_lineage::rfc3339(end),
    });
    status(
        &mut action,
        failed.map_or(Some(0), |r| r.exit_code),
        failed.and_then(|r| r.signal),
    );
    (wf, action)
}

/// Entities by id, the first of each kept.
fn dedup(entities: Vec<Value>) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    entities
        .into_iter()
        .filter(|e| seen.insert(e["@id"].as_str().unwrap_or_default().to_owned()))
        .collect()
}

fn first_line(command: &str) -> &str {
    command.lines().next().unwrap_or_default()
}

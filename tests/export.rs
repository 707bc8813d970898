//! `shark lineage --prov` read by the W3C `prov` package, and `shark export --ro-crate`
//! checked by `rocrate-validator` (PyPI `roc-validator`) with the Process and Workflow Run
//! Crate profiles. Both tools live in the venv `tests/setup/web.sh` makes; a test skips, saying
//! why, where that venv is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{stderr, stdout, TestEnv};

/// The venv's Python, if `tests/setup/web.sh` could make it.
pub(crate) fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("SHARK_TEST_VENV")
        .map_or_else(|| PathBuf::from("/var/tmp/shark-test-venv"), PathBuf::from);
    let python = venv.join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import prov, rocrate, rocrate_validator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "skipped: no venv with prov, rocrate and roc-validator at {} (run tests/setup/web.sh)",
            venv.display()
        );
    }
    ok.then_some(python)
}

/// A two-step history: `in.txt` sorted into `s.txt`, counted into `c.txt`.
fn two_steps() -> TestEnv {
    let env = TestEnv::new();
    env.write("in.txt", "b\na\n");
    for line in ["sort in.txt > s.txt", "wc -l < s.txt > c.txt"] {
        let out = env.line(line);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    env
}

/// The relations of a PROV-JSON file as `prov` reads them, one `KIND a b` line each with the
/// records' labels (paths and commands), sorted.
fn prov_relations(python: &Path, file: &Path) -> Vec<String> {
    let script = r#"
import sys
from prov.model import ProvDocument, ProvActivity, ProvEntity, ProvAgent
doc = ProvDocument.deserialize(sys.argv[1], format="json")
label = {}
for r in doc.get_records((ProvActivity, ProvEntity, ProvAgent)):
    label[r.identifier] = str(list(r.get_attribute("prov:label"))[0])
for r in doc.get_records():
    if r.is_relation():
        args = [a for _, a in r.formal_attributes[:2]]
        print(r.get_type().localpart, *[label.get(a, "-") for a in args], sep="|")
"#;
    let out = Command::new(python)
        .args(["-c", script])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "prov: {}", stderr(&out));
    let mut lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    lines.sort();
    lines
}

#[test]
fn prov_json_is_read_by_the_prov_package_with_the_expected_relations() {
    let Some(python) = venv_python() else { return };
    let env = two_steps();
    let out = env.run(&["lineage", "--prov", "c.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let file = env.path("prov.json");
    std::fs::write(&file, &out.stdout).unwrap();
    let w = env.work.display();
    let (sort, wc) = ("sort in.txt > s.txt", "wc -l < s.txt > c.txt");
    let expected = [
        format!("Association|{sort}|shark"),
        format!("Association|{wc}|shark"),
        format!("Derivation|{w}/c.txt|{w}/s.txt"),
        format!("Derivation|{w}/s.txt|{w}/in.txt"),
        format!("Generation|{w}/c.txt|{wc}"),
        format!("Generation|{w}/s.txt|{sort}"),
        format!("Usage|{sort}|{w}/in.txt"),
        format!("Usage|{wc}|{w}/s.txt"),
    ];
    assert_eq!(prov_relations(&python, &file), expected);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let digests: Vec<&str> = json["entity"]
        .as_object()
        .unwrap()
        .values()
        .map(|e| e["shark:digest"].as_str().unwrap())
        .collect();
    let c = shark_store::Digest::of_file(&env.path("c.txt")).unwrap();
    assert!(
        digests.contains(&format!("blake3:{c}").as_str()),
        "{digests:?}"
    );
}

/// Runs the validator on `dir` with `profile`; returns whether it passed, and its report.
fn validate(python: &Path, dir: &Path, profile: &str) -> (bool, String) {
    let shim = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/setup/rocrate_validate.py"
    );
    let out = Command::new(python)
        .arg(shim)
        .args([
            "--disable-color",
            "-y",
            "validate",
            "--no-cache",
            "--no-paging",
        ])
        .args(["-p", profile, "-f", "json"])
        .arg(dir)
        .output()
        .unwrap();
    let report = stdout(&out);
    let passed = serde_json::from_str::<serde_json::Value>(&report)
        .ok()
        .and_then(|v| v["passed"].as_bool());
    assert!(
        passed.is_some(),
        "no validation report: {report}\n{}",
        stderr(&out)
    );
    (passed == Some(true), report)
}

/// The crate's metadata.
fn metadata(dir: &Path) -> serde_json::Value {
    let text = std::fs::read(dir.join("ro-crate-metadata.json")).unwrap();
    serde_json::from_slice(&text).unwrap()
}

fn entity<'a>(meta: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    let graph = meta["@graph"].as_array().unwrap();
    graph
        .iter()
        .find(|e| e["@id"] == id)
        .unwrap_or_else(|| panic!("no {id}"))
}

#[test]
fn ro_crate_of_commands_passes_the_process_run_crate_profile() {
    let Some(python) = venv_python() else { return };
    let env = two_steps();
    let out = env.run(&["export", "--ro-crate", "crate", "c.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Process Run Crate: 2 runs"),
        "{}",
        stderr(&out)
    );
    let dir = env.path("crate");
    let (passed, report) = validate(&python, &dir, "process-run-crate");
    assert!(passed, "{report}");
    // The files are there with their content, and the actions say who made what.
    assert_eq!(std::fs::read_to_string(dir.join("c.txt")).unwrap(), "2\n");
    assert_eq!(
        std::fs::read_to_string(dir.join("s.txt")).unwrap(),
        "a\nb\n"
    );
    let meta = metadata(&dir);
    let wc = entity(&meta, "#run-2");
    assert_eq!(wc["@type"], "CreateAction");
    assert_eq!(wc["object"][0]["@id"], "s.txt");
    assert_eq!(wc["result"][0]["@id"], "c.txt");
    assert_eq!(wc["instrument"]["@id"], "#program-wc");
    assert_eq!(
        wc["actionStatus"]["@id"],
        "http://schema.org/CompletedActionStatus"
    );
    // Breaking the profile is noticed: without an instrument the action is invalid.
    let mut broken = meta.clone();
    for e in broken["@graph"].as_array_mut().unwrap() {
        if e["@id"] == "#run-2" {
            e.as_object_mut().unwrap().remove("instrument");
        }
    }
    std::fs::write(dir.join("ro-crate-metadata.json"), broken.to_string()).unwrap();
    assert!(!validate(&python, &dir, "process-run-crate").0);
}

#[test]
fn ro_crate_of_a_script_is_a_workflow_run_crate() {
    let Some(python) = venv_python() else { return };
    let env = TestEnv::new();
    env.write("in.txt", "b\na\n");
    env.write("pipe.sh", "sort in.txt > s.txt\nwc -l < s.txt > c.txt\n");
    let out = env.run(&["pipe.sh"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = env.run(&[
        "export",
        "--ro-crate",
        "crate",
        "--license",
        "CC0-1.0",
        "c.txt",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Workflow Run Crate"),
        "{}",
        stderr(&out)
    );
    let dir = env.path("crate");
    let (passed, report) = validate(&python, &dir, "workflow-run-crate");
    assert!(passed, "{report}");
    let meta = metadata(&dir);
    let root = entity(&meta, "./");
    assert_eq!(root["mainEntity"]["@id"], "workflow/pipe.sh");
    let run = entity(&meta, "#workflow-run");
    assert_eq!(run["instrument"]["@id"], "workflow/pipe.sh");
    assert_eq!(
        std::fs::read_to_string(dir.join("workflow/pipe.sh")).unwrap(),
        env.read("pipe.sh")
    );
}

#[test]
fn bad_exports_are_usage_errors_naming_the_path() {
    let env = two_steps();
    env.write("crate/x", "");
    let out = env.run(&["export", "--ro-crate", "crate", "c.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("crate is not empty"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["export", "--ro-crate", "new", "in.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("in.txt: no recorded run produced its current content"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["lineage", "--prov", "missing.txt"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

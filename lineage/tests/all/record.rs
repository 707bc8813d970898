//! Recording runs and reading them back.

use std::time::Duration;

use shark_lineage::{
    Input, InputKind, LineageError, NewRun, Output, OutputKind, ProcessRecord, Run, RunId,
};

use crate::common::{at, d, file_in, file_out, fresh, ok_run};

/// A run with every field set to something distinct from its default.
fn full_run() -> NewRun {
    NewRun {
        command: "gdalwarp -t_srs EPSG:4326 in.tif 'out put.tif'".into(),
        argv: vec!["gdalwarp".into(), "out put.tif".into(), "é\"\\".into()],
        cwd: "/home/me/data".into(),
        env_digest: d("env"),
        weak_key: d("key"),
        started: at(42) + Duration::from_nanos(123_456_789),
        duration: Duration::new(3, 5),
        exit_code: Some(0),
        signal: None,
        user_time: Duration::from_micros(1_500_001),
        sys_time: Duration::from_micros(20_002),
        max_rss_kib: 123_456,
        stdout: Some(d("out")),
        stderr: Some(d("err")),
        reused_from: None,
        reusable: true,
        network: true,
        reason: Some(r#"{"kind":"no-earlier-run"}"#.into()),
        shell_state: Some(d("state")),
        inputs: vec![
            file_in("/home/me/data/in.tif", "tif"),
            Input {
                path: "/home/me/data".into(),
                kind: InputKind::Dir,
                digest: Some(d("listing")),
                mode: Some(0o750),
                exclude: vec!["made.tmp".into(), "é \"x\"".into()],
                as_left: shark_lineage::AsLeft::Listing,
            },
            Input {
                path: "/home/me/data/in.tif.aux.xml".into(),
                kind: InputKind::Absent,
                digest: None,
                mode: None,
                exclude: Vec::new(),
                as_left: shark_lineage::AsLeft::No,
            },
            Input {
                path: "/home/me/link".into(),
                kind: InputKind::Symlink,
                digest: Some(d("target")),
                mode: None,
                exclude: Vec::new(),
                as_left: shark_lineage::AsLeft::No,
            },
            Input {
                path: "<stdin>".into(),
                kind: InputKind::Stdin,
                digest: Some(d("stdin")),
                mode: None,
                exclude: Vec::new(),
                as_left: shark_lineage::AsLeft::No,
            },
            Input {
                path: "/usr/bin/gdalwarp".into(),
                kind: InputKind::File,
                digest: Some(d("gdalwarp")),
                mode: Some(0o755),
                exclude: Vec::new(),
                as_left: shark_lineage::AsLeft::No,
            },
        ],
        outputs: vec![
            Output {
                path: "/home/me/data/out".into(),
                kind: OutputKind::Dir,
                digest: None,
                mode: Some(0o750),
                symlink_target: None,
            },
            file_out("/home/me/data/out/b.tif", "b"),
            file_out("/home/me/data/out/a.tif", "a"),
            Output {
                path: "/home/me/data/latest".into(),
                kind: OutputKind::Symlink,
                digest: Some(d("out/b.tif")),
                mode: None,
                symlink_target: Some("out/b.tif".into()),
            },
            Output {
                path: "/home/me/data/tmp".into(),
                kind: OutputKind::Deleted,
                digest: None,
                mode: None,
                symlink_target: None,
            },
        ],
        processes: vec![
            ProcessRecord {
                pid: 1,
                argv: vec!["gdalwarp".into()],
            },
            ProcessRecord {
                pid: 7,
                argv: vec!["sh".into(), "-c".into(), "x".into()],
            },
        ],
        accesses: vec![
            (1, "/home/me/data/in.tif".into(), "Open".into()),
            (7, "/home/me/data".into(), "List".into()),
        ],
        unit: None,
        stdin_consumed: Some(12),
        unreusable: Some("in.tif changed while the command ran".into()),
    }
}

fn expected(id: RunId, new: &NewRun) -> Run {
    Run {
        id,
        command: new.command.clone(),
        argv: new.argv.clone(),
        cwd: new.cwd.clone(),
        env_digest: new.env_digest,
        weak_key: new.weak_key,
        started: new.started,
        duration: new.duration,
        exit_code: new.exit_code,
        signal: new.signal,
        user_time: new.user_time,
        sys_time: new.sys_time,
        max_rss_kib: new.max_rss_kib,
        stdout: new.stdout,
        stderr: new.stderr,
        cached: new.reused_from.is_some(),
        reused_from: new.reused_from,
        reusable: new.reusable,
        network: new.network,
        reason: new.reason.clone(),
        shell_state: new.shell_state,
        inputs: new.inputs.clone(),
        outputs: new.outputs.clone(),
        processes: new.processes.clone(),
        accesses: new.accesses.clone(),
        unit: new.unit.unwrap_or(id),
        stdin_consumed: new.stdin_consumed,
        unreusable: new.unreusable.clone(),
    }
}

#[test]
fn every_field_round_trips() {
    let (_dir, _path, mut db) = fresh();
    let new = full_run();
    let id = db.record(&new).unwrap();
    assert_eq!(id, RunId(1));
    assert_eq!(db.run(id).unwrap(), expected(id, &new));
}

#[test]
fn a_killed_reuse_row_round_trips_with_its_nulls() {
    let (_dir, _path, mut db) = fresh();
    let first = db.record(&ok_run("make", "k", 1)).unwrap();
    let new = NewRun {
        exit_code: None,
        signal: Some(9),
        stdout: None,
        stderr: None,
        reused_from: Some(first),
        reusable: false,
        reason: None,
        ..ok_run("make", "k", 2)
    };
    let id = db.record(&new).unwrap();
    let run = db.run(id).unwrap();
    assert_eq!(run, expected(id, &new));
    assert!(run.cached);
    assert_eq!(run.reused_from, Some(first));
}

#[test]
fn ids_grow_and_unknown_ids_are_no_such_run() {
    let (_dir, _path, mut db) = fresh();
    let ids: Vec<RunId> = (0..3)
        .map(|i| db.record(&ok_run("true", "k", i)).unwrap())
        .collect();
    assert_eq!(ids, [RunId(1), RunId(2), RunId(3)]);
    let err = db.run(RunId(4)).unwrap_err();
    assert!(
        matches!(err, LineageError::NoSuchRun { id: RunId(4) }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "no run 4 in the lineage database");
}

#[test]
fn a_reuse_of_an_unknown_run_is_refused_and_leaves_nothing() {
    let (_dir, _path, mut db) = fresh();
    let bad = NewRun {
        reused_from: Some(RunId(99)),
        inputs: vec![file_in("/a", "a")],
        ..ok_run("make", "k", 1)
    };
    let err = db.record(&bad).unwrap_err();
    assert!(matches!(&err, LineageError::Record { command, .. } if command == "make"));
    let stats = db.stats().unwrap();
    assert_eq!(stats.runs, 0);
    assert!(db.runs_reading("/a").unwrap().is_empty());
    // The failed transaction left the connection usable, and used up no id.
    assert_eq!(db.record(&ok_run("make", "k", 2)).unwrap(), RunId(1));
}

#[test]
fn run_ids_parse_and_display() {
    assert_eq!("42".parse::<RunId>().unwrap(), RunId(42));
    assert_eq!("#42".parse::<RunId>().unwrap(), RunId(42));
    assert_eq!(RunId(42).to_string(), "42");
    for bad in [
        "",
        "#",
        "-1",
        "+1",
        "4 2",
        "abc",
        "99999999999999999999",
        "##1",
    ] {
        let err = bad.parse::<RunId>().unwrap_err();
        assert_eq!(err.text, bad);
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
}

#[test]
fn runs_serialize_to_the_documented_json() {
    let (_dir, _path, mut db) = fresh();
    let id = db.record(&full_run()).unwrap();
    let run = db.run(id).unwrap();
    let v = serde_json::to_value(&run).unwrap();
    assert_eq!(v["id"], 1);
    assert_eq!(v["cached"], false);
    assert_eq!(v["reused_from"], serde_json::Value::Null);
    assert_eq!(v["started"], "2024-01-01T00:00:42.123Z");
    assert_eq!(v["duration_ms"], 3000);
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["weak_key"], d("key").to_string());
    assert_eq!(v["stdout"], d("out").to_string());
    assert_eq!(v["argv"][1], "out put.tif");
    assert_eq!(
        v["inputs"][2],
        serde_json::json!({"path": "/home/me/data/in.tif.aux.xml", "kind": "absent", "digest": null})
    );
    assert_eq!(
        v["outputs"][1],
        serde_json::json!({
            "path": "/home/me/data/out/b.tif", "kind": "file",
            "digest": d("b").to_string(), "mode": 0o644
        })
    );
    assert_eq!(v["outputs"][3]["symlink_target"], "out/b.tif");
}

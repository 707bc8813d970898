//! The GDAL example pipeline (`examples/gdal`) run as a shark script: reuse of every step,
//! byte-identical outputs, re-running only what a changed input reaches, lineage of the final
//! product, and equality with plain bash. Needs `gdal-bin` (test.sh installs it).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::common::{stderr, TestEnv};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/gdal");
const SOURCES: [&str; 4] = ["pipeline.sh", "make_dem.py", "dem.params", "sun.params"];
const OUTPUTS: [&str; 10] = [
    "dem.asc",
    "dem.tif",
    "dem_4326.tif",
    "hillshade.tif",
    "slope.tif",
    "report.txt",
    "tile_0.tif",
    "tile_1.tif",
    "tile_2.tif",
    "tile_3.tif",
];
/// The pipeline's top-level commands, one step each.
const STEPS: usize = 11;

// The first line of the steps that a test names.
const MAKE_DEM: &str = "python3 make_dem.py dem.params \"$out/dem.asc\"";
const TRANSLATE: &str = "gdal_translate -q -of GTiff -co COMPRESS=DEFLATE -a_srs EPSG:32630 \\";
const WARP: &str = "gdalwarp -q -overwrite -t_srs EPSG:4326 -r bilinear -co COMPRESS=DEFLATE \
                    \"$out/dem.tif\" \"$out/dem_4326.tif\"";
const HILLSHADE: &str =
    "gdaldem hillshade -q -compute_edges -az \"$(cut -d' ' -f1 sun.params)\" \\";
const SLOPE: &str = "gdaldem slope -q -compute_edges \"$out/dem.tif\" \"$out/slope.tif\"";
const REPORT: &str = "{ gdalinfo -stats -nomd \"$out/slope.tif\"; gdalinfo -stats -nomd \
                      \"$out/hillshade.tif\"; } > \"$out/report.txt\"";
const TILES: &str = "for t in 0 1 2 3; do";

/// A fresh environment holding a copy of the example.
fn example_env() -> TestEnv {
    let version = Command::new("gdalinfo").arg("--version").output();
    assert!(
        version.is_ok_and(|o| o.status.success()),
        "gdalinfo is missing: install gdal-bin (./test.sh does)"
    );
    let env = TestEnv::new();
    for f in SOURCES {
        std::fs::copy(Path::new(EXAMPLE).join(f), env.path(f)).unwrap();
    }
    env
}

/// Runs the pipeline under shark and returns the last run's steps: (first line, reused).
fn run_pipeline(env: &TestEnv) -> Vec<(String, bool)> {
    run_pipeline_into(env, "out")
}

/// Runs the pipeline with its outputs in `dir` (relative to the example).
fn run_pipeline_into(env: &TestEnv, dir: &str) -> Vec<(String, bool)> {
    let out = env.run(&["pipeline.sh", dir]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = env.log();
    assert!(log.len() >= STEPS, "{log:?}");
    log[log.len() - STEPS..]
        .iter()
        .map(|r| {
            let command = r["command"].as_str().unwrap();
            let first = command.lines().next().unwrap_or_default().to_owned();
            (first, r["cached"].as_bool().unwrap())
        })
        .collect()
}

/// The steps of a pipeline run that ran rather than being reused.
fn ran(steps: &[(String, bool)]) -> Vec<&str> {
    steps
        .iter()
        .filter(|(_, cached)| !cached)
        .map(|(c, _)| c.as_str())
        .collect()
}

/// The bytes of every output in `out/`, in `OUTPUTS` order.
fn outputs(env: &TestEnv) -> Vec<Vec<u8>> {
    outputs_in(env, "out")
}

/// The bytes of every output in `dir`, in `OUTPUTS` order.
fn outputs_in(env: &TestEnv, dir: &str) -> Vec<Vec<u8>> {
    OUTPUTS
        .iter()
        .map(|f| {
            let path = env.path(dir).join(f);
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect()
}

fn assert_same_outputs(a: &[Vec<u8>], b: &[Vec<u8>], what: &str) {
    for ((name, a), b) in OUTPUTS.iter().zip(a).zip(b) {
        assert!(a == b, "{name} differs: {what}");
    }
}

/// The outputs plain bash makes from the same sources and environment.
fn bash_outputs(env: &TestEnv) -> Vec<Vec<u8>> {
    bash_outputs_in(env, "out")
}

/// The outputs plain bash makes in `dir` from the same sources and environment.
fn bash_outputs_in(env: &TestEnv, dir: &str) -> Vec<Vec<u8>> {
    let bash = example_env();
    for f in SOURCES {
        std::fs::copy(env.path(f), bash.path(f)).unwrap();
    }
    let out = Command::new("bash")
        .args(["pipeline.sh", dir])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .current_dir(&bash.work)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    outputs_in(&bash, dir)
}

/// The commands (first lines) and the source files in a `shark lineage --json` tree.
fn lineage(env: &TestEnv, path: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    fn walk(
        node: &serde_json::Value,
        commands: &mut BTreeSet<String>,
        sources: &mut BTreeSet<String>,
    ) {
        match node["run"]["command"].as_str() {
            Some(c) => commands.insert(c.lines().next().unwrap().to_owned()),
            None => sources.insert(node["path"].as_str().unwrap().to_owned()),
        };
        for input in node["inputs"].as_array().unwrap() {
            walk(input, commands, sources);
        }
    }
    let out = env.run(&["lineage", "--json", path]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let tree: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (mut commands, mut sources) = (BTreeSet::new(), BTreeSet::new());
    walk(&tree, &mut commands, &mut sources);
    (commands, sources)
}

#[test]
fn second_run_reuses_every_step_and_restores_identical_outputs() {
    let env = example_env();
    let first = run_pipeline(&env);
    assert_eq!(ran(&first).len(), STEPS, "{first:?}");
    let made = outputs(&env);
    assert_same_outputs(&made, &bash_outputs(&env), "shark's output is not bash's");

    // Outputs removed, as in a fresh checkout: every step is reused and every output comes
    // back from the store, byte for byte. (Re-running in place is the next test.)
    std::fs::remove_dir_all(env.path("out")).unwrap();
    let second = run_pipeline(&env);
    assert_eq!(ran(&second), Vec::<&str>::new(), "{second:?}");
    assert_same_outputs(
        &made,
        &outputs(&env),
        "a restored output is not the original",
    );

    // The final product's lineage: the tile loop, back through the hillshade and the GeoTIFF
    // to the DEM script, and the three source files.
    let (commands, sources) = lineage(&env, "out/tile_3.tif");
    let want: BTreeSet<String> = [TILES, HILLSHADE, TRANSLATE, MAKE_DEM]
        .map(String::from)
        .into();
    assert_eq!(commands, want);
    let want: BTreeSet<String> = ["dem.params", "make_dem.py", "sun.params"]
        .map(|f| env.path(f).to_string_lossy().into_owned())
        .into();
    assert_eq!(sources, want);
}

#[test]
fn changing_the_light_reruns_only_the_hillshade_and_what_reads_it() {
    let env = example_env();
    run_pipeline(&env);
    let before = outputs(&env);

    std::fs::remove_dir_all(env.path("out")).unwrap();
    env.write("sun.params", "135 30\n");
    let steps = run_pipeline(&env);
    assert_eq!(ran(&steps), vec![HILLSHADE, REPORT, TILES], "{steps:?}");
    let after = outputs(&env);
    for (i, name) in OUTPUTS.iter().enumerate() {
        let changed = before[i] != after[i];
        let should = name.contains("hillshade") || name.contains("tile") || name.contains("report");
        assert_eq!(changed, should, "{name} changed: {changed}");
    }
    assert_same_outputs(&after, &bash_outputs(&env), "shark's output is not bash's");

    // The terrain changes: everything from the DEM script on runs again.
    std::fs::remove_dir_all(env.path("out")).unwrap();
    env.write(
        "dem.params",
        &env.read("dem.params").replace("size = 128", "size = 120"),
    );
    let steps = run_pipeline(&env);
    assert_eq!(
        ran(&steps),
        vec![MAKE_DEM, TRANSLATE, WARP, HILLSHADE, SLOPE, REPORT, TILES],
        "{steps:?}"
    );
}

/// Re-running in place, with every output exactly as the pipeline left it, reuses every step
/// (a step that looks for its own output first, as `gdalwarp -overwrite` does with a failed
/// `O_RDWR` open, finds what it left there), and after one changed input the next run settles.
#[test]
fn re_running_in_place_reuses_every_step() {
    let env = example_env();
    run_pipeline(&env);
    let made = outputs(&env);
    let second = run_pipeline(&env);
    assert_eq!(ran(&second), Vec::<&str>::new(), "{second:?}");
    assert_same_outputs(&made, &outputs(&env), "a reuse changed an output");

    env.write("sun.params", "135 30\n");
    let steps = run_pipeline(&env);
    assert_eq!(ran(&steps), vec![HILLSHADE, REPORT, TILES], "{steps:?}");
    let steps = run_pipeline(&env);
    assert_eq!(ran(&steps), Vec::<&str>::new(), "{steps:?}");
}

/// The same pipeline with every output in the script's own folder, where every GDAL step
/// lists the folder (looking for sidecar files) and Python lists it too (its module search
/// starts in the script's directory), while later steps add their outputs there.
#[test]
fn written_into_its_own_folder_a_no_op_re_run_reuses_every_step() {
    let env = example_env();
    let first = run_pipeline_into(&env, ".");
    assert_eq!(ran(&first).len(), STEPS, "{first:?}");
    let made = outputs_in(&env, ".");
    assert_same_outputs(
        &made,
        &bash_outputs_in(&env, "."),
        "shark's output is not bash's",
    );

    let second = run_pipeline_into(&env, ".");
    assert_eq!(ran(&second), Vec::<&str>::new(), "{second:?}");
    assert_same_outputs(&made, &outputs_in(&env, "."), "a reuse changed an output");

    // A changed input re-runs what reads it, and the next run settles.
    env.write("sun.params", "135 30\n");
    let steps = run_pipeline_into(&env, ".");
    assert_eq!(ran(&steps), vec![HILLSHADE, REPORT, TILES], "{steps:?}");
    let steps = run_pipeline_into(&env, ".");
    assert_eq!(ran(&steps), Vec::<&str>::new(), "{steps:?}");

    // A file added by hand changes the folder every GDAL step listed: those run again (and
    // only those: the DEM script looks at no listing), then the pipeline settles.
    env.write("notes.txt", "hand-made\n");
    let steps = run_pipeline_into(&env, ".");
    assert_eq!(
        ran(&steps),
        vec![TRANSLATE, WARP, HILLSHADE, SLOPE, REPORT, TILES],
        "{steps:?}"
    );
    let steps = run_pipeline_into(&env, ".");
    assert_eq!(ran(&steps), Vec::<&str>::new(), "{steps:?}");
}

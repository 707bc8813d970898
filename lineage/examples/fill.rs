//! Fills a shark home's lineage database with synthetic runs, for benchmarks of the queries
//! (`bench/exec.sh`) on a large history.
//!
//! ```text
//! fill HOME WORKDIR RUNS [CHAINS]
//! ```
//!
//! Records `RUNS` runs into `HOME/lineage.db` as `CHAINS` (default 100) interleaved pipelines:
//! run `i` is step `i / CHAINS` of chain `i % CHAINS`, reads the previous step's output of its
//! chain under `WORKDIR`, and writes the next one, so `shark lineage` has a deep history to
//! walk. Each run reads about fifty things, as a real `python3` step does: the interpreter, its
//! shared libraries and modules, paths it probed and did not find, the chain's directory, its
//! script and a shared configuration file. Every chain step also writes a log file whose content
//! is the same everywhere (content with very many producers), and one run in five is followed
//! by a reuse row. At the end the newest output of every chain is written under `WORKDIR` with
//! the recorded content, and the path of chain 0's is printed, ready for `shark lineage`.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use shark_lineage::{Db, Input, InputKind, NewRun, Output, OutputKind, ProcessRecord};
use shark_store::Digest;

/// Shared libraries and modules a Python step loads: system inputs every run records.
const SYSTEM_FILES: &[&str] = &[
    "/usr/bin/python3.11",
    "/etc/ld.so.cache",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib/x86_64-linux-gnu/libm.so.6",
    "/lib/x86_64-linux-gnu/libz.so.1",
    "/lib/x86_64-linux-gnu/libexpat.so.1",
    "/lib/x86_64-linux-gnu/libpthread.so.0",
    "/lib/x86_64-linux-gnu/libdl.so.2",
    "/lib/x86_64-linux-gnu/libutil.so.1",
    "/lib64/ld-linux-x86-64.so.2",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/nsswitch.conf",
    "/usr/lib/locale/locale-archive",
    "/usr/lib/python3.11/os.py",
    "/usr/lib/python3.11/stat.py",
    "/usr/lib/python3.11/posixpath.py",
    "/usr/lib/python3.11/genericpath.py",
    "/usr/lib/python3.11/_collections_abc.py",
    "/usr/lib/python3.11/_sitebuiltins.py",
    "/usr/lib/python3.11/site.py",
    "/usr/lib/python3.11/codecs.py",
    "/usr/lib/python3.11/io.py",
    "/usr/lib/python3.11/abc.py",
    "/usr/lib/python3.11/encodings/__init__.py",
    "/usr/lib/python3.11/encodings/aliases.py",
    "/usr/lib/python3.11/encodings/utf_8.py",
    "/usr/lib/python3.11/csv.py",
    "/usr/lib/python3.11/re/__init__.py",
    "/usr/lib/python3.11/re/_compiler.py",
    "/usr/lib/python3.11/re/_parser.py",
    "/usr/lib/python3.11/re/_constants.py",
    "/usr/lib/python3.11/enum.py",
    "/usr/lib/python3.11/functools.py",
    "/usr/lib/python3.11/collections/__init__.py",
    "/usr/lib/python3.11/keyword.py",
    "/usr/lib/python3.11/operator.py",
    "/usr/lib/python3.11/reprlib.py",
    "/usr/lib/python3.11/types.py",
    "/usr/lib/python3.11/copyreg.py",
    "/usr/lib/python3.11/lib-dynload/_csv.cpython-311-x86_64-linux-gnu.so",
];

/// Paths a Python start-up looks for and does not find.
const ABSENT: &[&str] = &[
    "/usr/lib/python311.zip",
    "/usr/local/lib/python3.11/dist-packages",
    "/usr/lib/python3.11/pyvenv.cfg",
    "/usr/bin/pyvenv.cfg",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fill: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), Box<dyn Error>> {
    let (home, work, runs, chains) = match args {
        [home, work, runs] => (home, work, runs.parse::<u64>()?, 100),
        [home, work, runs, chains] => (home, work, runs.parse()?, chains.parse()?),
        _ => return Err("usage: fill HOME WORKDIR RUNS [CHAINS]".into()),
    };
    if chains == 0 {
        return Err("CHAINS must be at least 1".into());
    }
    std::fs::create_dir_all(home)?;
    let work = std::path::absolute(work)?;
    let mut db = Db::open(&Path::new(home).join("lineage.db"))?;
    let fill = Fill::new(&work);
    for i in 0..runs {
        let (chain, step) = (i % chains, i / chains);
        let id = db.record(&fill.step(chain, step, i))?;
        if i % 5 == 4 {
            let reuse = NewRun {
                reused_from: Some(id),
                exit_code: Some(0),
                duration: Duration::from_millis(2),
                ..fill.base(chain, step, i)
            };
            db.record(&reuse)?;
        }
    }
    write_newest(&work, runs, chains)
}

/// Writes each chain's newest output with its recorded content; prints chain 0's path.
fn write_newest(work: &Path, runs: u64, chains: u64) -> Result<(), Box<dyn Error>> {
    for chain in 0..chains.min(runs) {
        let last = (runs - 1 - chain) / chains;
        let dir = work.join(format!("c{chain}"));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(out_path(work, chain, last), content(chain, last))?;
    }
    if runs > 0 {
        println!("{}", out_path(work, 0, (runs - 1) / chains).display());
    }
    Ok(())
}

fn out_path(work: &Path, chain: u64, step: u64) -> PathBuf {
    work.join(format!("c{chain}/s{step}.out"))
}

fn content(chain: u64, step: u64) -> String {
    format!("chain {chain} step {step}\n")
}

fn d(text: &str) -> Digest {
    Digest::of_bytes(text.as_bytes())
}

/// What every run of one fill shares.
struct Fill {
    work: PathBuf,
    system: Vec<Input>,
    config: Input,
    env: Digest,
}

impl Fill {
    fn new(work: &Path) -> Self {
        let file = |path: &str| Input {
            path: path.to_owned(),
            kind: InputKind::File,
            digest: Some(d(&format!("{path} v1"))),
            mode: None,
            exclude: Vec::new(),
            as_left: shark_lineage::AsLeft::No,
        };
        let mut system: Vec<Input> = SYSTEM_FILES.iter().map(|p| file(p)).collect();
        system.extend(ABSENT.iter().map(|p| Input {
            path: (*p).to_owned(),
            kind: InputKind::Absent,
            digest: None,
            mode: None,
            exclude: Vec::new(),
            as_left: shark_lineage::AsLeft::No,
        }));
        let config = file(&work.join("shared/config.toml").to_string_lossy());
        Fill {
            work: work.to_owned(),
            system,
            config,
            env: d("env"),
        }
    }

    fn path(&self, rel: &str) -> String {
        self.work.join(rel).to_string_lossy().into_owned()
    }

    /// The fields a step and its reuse share: command, cwd, key, start time.
    fn base(&self, chain: u64, step: u64, i: u64) -> NewRun {
        let command = format!("python3 step.py s{} s{step}.out", step.saturating_sub(1));
        let started = UNIX_EPOCH + Duration::from_secs(1_704_067_200 + 2 * i);
        let key = d(&format!("{chain} {command}"));
        NewRun {
            argv: command.split(' ').map(String::from).collect(),
            ..NewRun::new(
                command,
                self.path(&format!("c{chain}")),
                self.env,
                key,
                started,
            )
        }
    }

    /// Step `step` of `chain`, the `i`-th run recorded.
    fn step(&self, chain: u64, step: u64, i: u64) -> NewRun {
        let dir = format!("c{chain}");
        let previous = match step {
            0 => Input {
                path: self.path(&format!("{dir}/source.csv")),
                kind: InputKind::File,
                digest: Some(d(&format!("source {chain}"))),
                mode: None,
                exclude: Vec::new(),
                as_left: shark_lineage::AsLeft::No,
            },
            s => Input {
                path: out_path(&self.work, chain, s - 1)
                    .to_string_lossy()
                    .into_owned(),
                kind: InputKind::File,
                digest: Some(d(&content(chain, s - 1))),
                mode: None,
                exclude: Vec::new(),
                as_left: shark_lineage::AsLeft::No,
            },
        };
        let mut inputs = self.system.clone();
        inputs.extend([
            Input {
                path: self.path(&dir),
                kind: InputKind::Dir,
                digest: Some(d(&format!("listing {chain} {step}"))),
                mode: None,
                exclude: Vec::new(),
                as_left: shark_lineage::AsLeft::No,
            },
            Input {
                path: self.path(&format!("{dir}/step.py")),
                kind: InputKind::File,
                digest: Some(d(&format!("script {chain}"))),
                mode: None,
                exclude: Vec::new(),
                as_left: shark_lineage::AsLeft::No,
            },
            self.config.clone(),
            previous,
        ]);
        let file_out = |path: String, text: &str| Output {
            path,
            kind: OutputKind::File,
            digest: Some(d(text)),
            mode: Some(0o644),
            symlink_target: None,
        };
        let outputs = vec![
            file_out(
                out_path(&self.work, chain, step)
                    .to_string_lossy()
                    .into_owned(),
                &content(chain, step),
            ),
            file_out(self.path(&format!("{dir}/run.log")), "ok\n"),
        ];
        let base = self.base(chain, step, i);
        let accesses = inputs
            .iter()
            .map(|i| (2, i.path.clone(), "open".to_owned()))
            .chain(outputs.iter().map(|o| (2, o.path.clone(), "create".into())))
            .collect();
        NewRun {
            exit_code: Some(0),
            reusable: true,
            duration: Duration::from_millis(40 + i % 200),
            user_time: Duration::from_millis(30),
            sys_time: Duration::from_millis(8),
            max_rss_kib: 9_800,
            stdout: Some(d("")),
            stderr: Some(d("")),
            processes: vec![ProcessRecord {
                pid: 2,
                argv: base.argv.clone(),
            }],
            inputs,
            outputs,
            accesses,
            ..base
        }
    }
}

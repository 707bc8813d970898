//! The executor's side of the remote cache (see `shark_remote`): two hooks and a command.
//!
//! - [`Executor::remote_lookup`]: on a local miss, ask the remote for a run whose inputs hold
//!   here. A hit is fetched (every blob checked), checked once more against the filesystem
//!   with the local input check, and recorded as a local run whose reason names the server
//!   and the machine that ran it; the executor then reuses it like any local run, through
//!   the same restore.
//! - [`Executor::remote_upload`]: after a reusable local run is recorded, remember its
//!   portable key and upload it.
//! - [`push`]: `shark store push RUN|PATH`.
//!
//! A server that is down, slow or failing never fails a command: the first such error is
//! reported once, as a warning, and the remote is left alone for the rest of the process.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use shark_lineage::{NewRun, Run, RunId};
use shark_remote::{
    Client, DigestMap, Hit, Locations, RemoteCache, RemoteError, RunKey, Settings, Upload, WeakKey,
};

mod local;

use local::{local_state, portable_state, progress, LocalProbe};

use super::{inputs, key, reason::Reason, Executor, Invocation, Request};
use crate::error::CliError;

/// The remote cache as the executor uses it: settings, and the cache once opened.
#[derive(Debug, Default)]
pub(super) struct Remote {
    settings: Option<Settings>,
    cache: Option<RemoteCache>,
    /// Set after a failure: the server is not asked again by this process.
    off: bool,
}

impl Remote {
    /// The remote configured for `home`.
    pub(super) fn new(settings: Option<&Settings>) -> Remote {
        Remote {
            settings: settings.cloned(),
            ..Remote::default()
        }
    }
}

/// The remote settings from the command line, the environment and the config file.
pub fn settings(cli: &crate::cli::Cli) -> Result<Option<Settings>, CliError> {
    let overrides = shark_remote::Overrides {
        url: cli.remote.clone(),
        upload: cli.remote_upload,
        download: cli.remote_download,
    };
    let config = shark_remote::config::default_config_file();
    Settings::resolve(&overrides, config.as_deref()).map_err(|e| {
        let hint =
            "the remote is set by --remote URL, SHARK_REMOTE or remote.url in the config file";
        CliError::usage(crate::error::chain(&e), Some(hint.into()))
    })
}

impl Executor {
    /// Opens the remote cache on first use; false when there is none, it is off, or
    /// `wanted` (download or upload) is not enabled.
    fn open_remote(&mut self, wanted: fn(&Settings) -> bool) -> bool {
        let Some(settings) = self.remote.settings.as_ref().filter(|s| wanted(s)) else {
            return false;
        };
        if self.remote.off {
            return false;
        }
        if self.remote.cache.is_none() {
            let opened = Client::new(settings.clone()).and_then(|client| {
                let map = DigestMap::open(&self.home.root().join("remote.db"))?;
                Ok(RemoteCache::new(
                    client,
                    map,
                    self.store.clone(),
                    Box::new(progress),
                ))
            });
            match opened {
                Ok(cache) => self.remote.cache = Some(cache),
                Err(e) => {
                    self.remote_failed(&e);
                    return false;
                }
            }
        }
        true
    }

    /// Reports a remote failure. One that makes the server unusable is reported once and
    /// turns the remote off for this process.
    fn remote_failed(&mut self, e: &RemoteError) {
        let url = self.remote.settings.as_ref().map_or("", |s| s.url.as_str());
        if e.is_unavailable() || matches!(e, RemoteError::Credential { .. }) {
            if !self.remote.off {
                eprintln!(
                    "shark: warning: remote cache {url} is unavailable ({}); working locally",
                    crate::error::chain(e)
                );
            }
            self.remote.off = true;
        } else {
            eprintln!(
                "shark: warning: remote cache {url}: {}",
                crate::error::chain(e)
            );
        }
    }

    /// On a local miss: a run from the remote whose inputs hold here, recorded locally so
    /// that the executor reuses it; or why the remote's result was rejected.
    pub(super) fn remote_lookup(
        &mut self,
        req: &Request,
        inv: &Invocation,
    ) -> Option<Result<Run, Reason>> {
        let locations = self.locations(inv);
        let weak = weak_key(req, inv, &locations)?;
        let stdin = inv.stdin.digest();
        if !self.open_remote(|s| s.download) {
            return None;
        }
        let cache = self.remote.cache.as_ref()?;
        let url = cache.client().url().to_owned();
        let mut probe = LocalProbe {
            cache: &self.cache,
            stdin,
        };
        let found = cache
            .lookup(&weak, &locations, &mut probe)
            .and_then(|r| match r {
                Ok(hit) => cache.fetch(&hit).map(|state| Some((hit, state))),
                Err(_) => Ok(None),
            });
        let (hit, state) = match found {
            Ok(Some(found)) => found,
            Ok(None) => return None,
            Err(e @ RemoteError::Corrupt { .. }) => {
                let detail = crate::error::chain(&e);
                eprintln!(
                    "shark: warning: rejected a result from remote cache {url}: {detail}; running the command"
                );
                return Some(Err(Reason::RemoteRejected {
                    server: url,
                    detail,
                }));
            }
            Err(e) => {
                self.remote_failed(&e);
                return None;
            }
        };
        // The local check has the last word: the remote keys are only a way to find it. It is
        // strict: no unit of work of this machine left these paths.
        let no_unit_states = |_: &str| Vec::new();
        let ctx = inputs::CheckContext {
            cache: &self.cache,
            stdin: stdin.as_ref(),
            unit_states: &no_unit_states,
            whole_units: false,
        };
        if let Some(m) = hit.inputs.iter().find_map(|i| inputs::check(i, &ctx).err()) {
            let detail = format!("{} was {}, it is now {}", m.path, m.was, m.now);
            eprintln!("shark: warning: rejected a result from remote cache {url}: {detail}");
            return Some(Err(Reason::RemoteRejected {
                server: url,
                detail,
            }));
        }
        match self.import(req, inv, &hit, state.as_deref(), &locations, url) {
            Ok(run) => Some(Ok(run)),
            Err(e) => {
                eprintln!(
                    "shark: warning: cannot record a result from the remote cache: {}",
                    crate::error::chain(&e)
                );
                None
            }
        }
    }

    /// Records `hit` as a local run: computed elsewhere, with this machine's paths.
    fn import(
        &mut self,
        req: &Request,
        inv: &Invocation,
        hit: &Hit,
        state: Option<&[u8]>,
        locations: &Locations,
        server: String,
    ) -> Result<Run, CliError> {
        let d = &hit.description;
        let fail = |what: &'static str| move |e: shark_store::StoreError| CliError::failed(what, e);
        let shell_state = match state.and_then(|s| local_state(s, locations)) {
            Some(blob) => Some(
                self.store
                    .put_bytes(&blob)
                    .map_err(fail("cannot store the shell state"))?
                    .digest,
            ),
            None => None,
        };
        if !self.db.has_key(&inv.key).unwrap_or(false) {
            self.store
                .put_bytes(&key::env_blob(&inv.env))
                .map_err(fail("cannot store the environment"))?;
        }
        let local = |b: &Option<shark_remote::shared::BlobRef>| b.as_ref().and_then(|b| b.local());
        let run = NewRun {
            duration: Duration::from_millis(d.duration_ms),
            exit_code: Some(d.exit_code),
            stdout: local(&d.stdout),
            stderr: local(&d.stderr),
            reusable: true,
            reason: Some(
                Reason::Remote {
                    server,
                    host: d.host.clone(),
                    run: d.run,
                }
                .to_json(),
            ),
            shell_state,
            inputs: hit.inputs.clone(),
            outputs: hit.outputs.clone(),
            stdin_consumed: d.stdin_consumed,
            ..self.new_run(req, inv, SystemTime::now())
        };
        // Every blob the record names must be on disk before the record is.
        self.store
            .sync()
            .map_err(fail("cannot store the fetched outputs"))?;
        let id = self
            .db
            .record(&run)
            .map_err(|e| CliError::failed("cannot record the run", e))?;
        self.db
            .run(id)
            .map_err(|e| CliError::failed("cannot load the run", e))
    }

    /// After a reusable run `id` is recorded: remember its portable key, and upload it.
    pub(super) fn remote_upload(&mut self, req: &Request, inv: &Invocation, id: RunId) {
        if self.remote.settings.is_none() || self.remote.off {
            return;
        }
        let locations = self.locations(inv);
        let Some(weak) = weak_key(req, inv, &locations) else {
            return;
        };
        let key = RunKey {
            weak,
            locations: location_texts(inv, self.home.root()),
        };
        if !self.open_remote(|s| s.download || s.upload) {
            return;
        }
        let Some(cache) = self.remote.cache.as_ref() else {
            return;
        };
        let remembered = cache.map().put_run_key(id.0, &key);
        if let Err(e) = remembered {
            return self.remote_failed(&e);
        }
        if !self.remote.settings.as_ref().is_some_and(|s| s.upload) {
            return;
        }
        match self.db.run(id) {
            Ok(run) if run.is_candidate() => {
                if let Err(e) = self.upload_run(&run, &key) {
                    self.remote_failed(&e);
                }
            }
            _ => {}
        }
    }

    /// Uploads `run`, recorded with `key`; `Ok(Err(..))` when it cannot be shared.
    fn upload_run(
        &mut self,
        run: &Run,
        key: &RunKey,
    ) -> Result<Result<shark_remote::Sent, String>, RemoteError> {
        let [cwd, home, tmpdir, shark_home] = key
            .locations
            .clone()
            .map(|l| l.map(std::path::PathBuf::from));
        let cwd = cwd.unwrap_or_else(|| run.cwd.clone().into());
        let locations = Locations::new(
            &cwd,
            home.as_deref(),
            tmpdir.as_deref(),
            shark_home.as_deref(),
        );
        let state = match run.shell_state.map(|d| self.store.read_to_vec(&d)) {
            Some(Ok(blob)) => match portable_state(&blob, &locations) {
                Some(p) => Some(p),
                None => return Ok(Err("its shell state is not in the expected format".into())),
            },
            Some(Err(e)) => return Err(e.into()),
            None => None,
        };
        let host = hostname();
        if !self.open_remote(|_| true) {
            return Err(RemoteError::Config {
                what: "the remote cache is off".into(),
            });
        }
        let Some(cache) = self.remote.cache.as_ref() else {
            return Ok(Err("the remote cache is off".into()));
        };
        let up = Upload {
            weak: &key.weak,
            locations: &locations,
            run,
            host: &host,
            state,
        };
        Ok(cache.upload(&up)?.map_err(|why| why.to_string()))
    }

    /// This machine's locations for `inv`.
    fn locations(&self, inv: &Invocation) -> Locations {
        let [cwd, home, tmpdir, shark_home] =
            location_texts(inv, self.home.root()).map(|l| l.map(std::path::PathBuf::from));
        let cwd = cwd.unwrap_or_else(|| inv.cwd.clone());
        Locations::new(
            &cwd,
            home.as_deref(),
            tmpdir.as_deref(),
            shark_home.as_deref(),
        )
    }
}

/// The working directory, `HOME`, `TMPDIR` and shark home of `inv`, as text.
fn location_texts(inv: &Invocation, shark_home: &Path) -> [Option<String>; 4] {
    let var = |name: &str| {
        inv.env
            .iter()
            .find(|(k, _)| k.as_bytes() == name.as_bytes())
            .and_then(|(_, v)| v.to_str())
            .map(str::to_owned)
    };
    [
        inv.cwd.to_str().map(str::to_owned),
        var("HOME"),
        var("TMPDIR"),
        shark_home.to_str().map(str::to_owned),
    ]
}

/// The portable weak key of a command, `None` if some part is not UTF-8.
fn weak_key(req: &Request, inv: &Invocation, locs: &Locations) -> Option<WeakKey> {
    let text = |s: &[u8]| String::from_utf8(locs.encode(s)).ok();
    let argv = req
        .argv
        .iter()
        .map(|a| text(a.as_bytes()))
        .collect::<Option<Vec<_>>>()?;
    // The environment as keyed locally: volatile variables out, sorted by name.
    let env = key::decode_env(&key::env_blob(&inv.env))?
        .iter()
        .map(|(k, v): &(OsString, OsString)| Some((text(k.as_bytes())?, text(v.as_bytes())?)))
        .collect::<Option<Vec<_>>>()?;
    let roots = inv
        .roots
        .iter()
        .map(|r| text(r.as_os_str().as_bytes()))
        .collect::<Option<Vec<_>>>()?;
    let mut properties = vec![
        ("network".into(), req.network.to_string()),
        ("stdin".into(), inv.stdin.mode().to_owned()),
        (
            "stdout-tty".into(),
            std::io::stdout().is_terminal().to_string(),
        ),
        (
            "stderr-tty".into(),
            std::io::stderr().is_terminal().to_string(),
        ),
        ("uid".into(), nix::unistd::getuid().to_string()),
        ("gid".into(), nix::unistd::getgid().to_string()),
        ("umask".into(), umask()),
        ("writable-roots".into(), roots.join("\n")),
        ("layout".into(), locs.layout().join("\n")),
        ("arch".into(), std::env::consts::ARCH.into()),
    ];
    properties.sort();
    Some(WeakKey {
        argv,
        env,
        properties,
    })
}

/// The process's umask, as octal text (read from /proc: setting it to read it is racy).
fn umask() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:").map(|u| u.trim().to_owned()))
        })
        .unwrap_or_else(|| "unknown".into())
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

/// `shark store push RUN|PATH`: uploads a recorded run (or the run that produced a file's
/// current content) to the remote cache.
pub fn push(exec: &mut Executor, id: RunId) -> Result<String, CliError> {
    if exec.remote.settings.is_none() {
        return Err(CliError::usage(
            "no remote cache to push to",
            Some(
                "name one with --remote URL, SHARK_REMOTE or remote.url in the config file".into(),
            ),
        ));
    }
    let run = exec
        .db
        .run(id)
        .map_err(|e| CliError::failed(format!("cannot load run {id}"), e))?;
    let run = match run.reused_from {
        Some(from) => exec
            .db
            .run(from)
            .map_err(|e| CliError::failed(format!("cannot load run {from}"), e))?,
        None => run,
    };
    if !run.is_candidate() {
        return Err(CliError::usage(
            format!(
                "run {} cannot be shared: only successful, reusable runs are",
                run.id
            ),
            Some("`shark why` says why a run is not reusable".into()),
        ));
    }
    let remote_err = |e: RemoteError| CliError::failed("cannot push to the remote cache", e);
    if !exec.open_remote(|_| true) {
        return Err(CliError::usage("the remote cache cannot be used", None));
    }
    let Some(cache) = exec.remote.cache.as_ref() else {
        return Err(CliError::usage("the remote cache cannot be used", None));
    };
    let key = cache
        .map()
        .run_key(run.id.0)
        .map_err(remote_err)?
        .ok_or_else(|| {
            CliError::usage(
                format!(
                    "run {} was recorded while no remote cache was configured",
                    run.id
                ),
                Some(
                    "run the command again with --remote URL --fresh to record and upload it"
                        .into(),
                ),
            )
        })?;
    match exec.upload_run(&run, &key).map_err(remote_err)? {
        Ok(sent) => Ok(format!(
            "pushed run {} ({} blobs, {} bytes sent)\n",
            run.id, sent.blobs, sent.bytes
        )),
        Err(why) => Err(CliError::usage(
            format!("run {} cannot be shared: {why}", run.id),
            None,
        )),
    }
}

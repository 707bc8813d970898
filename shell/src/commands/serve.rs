//! `shark serve`: the read-only web view (the `shark-web` crate) over this shark home and a
//! folder, on the loopback interface unless `--bind` says otherwise.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;

use crate::cli::ServeArgs;
use crate::error::CliError;
use crate::exec::reason::Reason;
use crate::home::Home;

/// `shark serve [--port N] [--bind ADDR] [--dir DIR]`.
pub(crate) fn run(home: &Home, args: &ServeArgs) -> Result<i32, CliError> {
    let ip = args.bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    if !ip.is_loopback() {
        eprintln!(
            "shark: warning: serving on {ip}: anyone who can reach this address can read your \
             runs, their output and the files in the store"
        );
    }
    let folder = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir()
            .map_err(|e| CliError::failed("cannot read the current directory", e))?,
    };
    let folder = folder
        .canonicalize()
        .map_err(|e| CliError::usage(format!("cannot serve {}: {e}", folder.display()), None))?;
    let addr = SocketAddr::new(ip, args.port);
    let listener = TcpListener::bind(addr).map_err(|e| {
        CliError::usage(
            format!("cannot listen on {addr}: {e}"),
            Some("choose another port with --port N (0 picks a free one)".into()),
        )
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| CliError::failed("cannot read the listening address", e))?;
    let config = shark_web::Config {
        db_path: home.db_path(),
        store_dir: home.store_dir(),
        folder,
        documents: Arc::new(super::md::ShellDocuments::new(home)),
        describe_reason: Arc::new(|text| Reason::from_json(text).map(|r| r.describe())),
    };
    eprintln!("shark: serving http://{bound}/ (Ctrl-C to stop)");
    shark_web::serve(config, listener).map_err(|e| CliError::failed("the web view stopped", e))?;
    Ok(0)
}

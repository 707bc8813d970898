//! `shark serve` in a real browser (headless Chromium over WebDriver): every view loaded,
//! its content checked and a screenshot taken (in `target/screenshots/`), the lineage graph
//! clicked through, a GeoTIFF thumbnail decoded by the browser, and a document followed
//! while `shark md` runs it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::browser::{request, Browser};
use crate::common::{stderr, TestEnv};

/// A running `shark serve`, stopped on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(env: &TestEnv, args: &[&str]) -> Server {
        let mut child = env
            .shark()
            .args(["serve", "--port", "0"])
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Server { child, addr }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn get(&self, path: &str) -> crate::browser::Response {
        request(&self.addr, "GET", path, None)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ok(env: &TestEnv, args: &[&str]) {
    let out = env.run(args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
}

/// Runs that make a table, an image, a GeoTIFF, GeoJSON, text, a failure and a document.
fn history(env: &TestEnv) {
    env.write(
        "dem.asc",
        "ncols 4\nnrows 3\nxllcorner 0\nyllcorner 0\ncellsize 1\n1 2 3 4\n5 6 7 8\n9 10 11 12\n",
    );
    ok(env, &["-c", "gdal_translate -q -of GTiff dem.asc dem.tif"]);
    ok(
        env,
        &[
            "-c",
            "gdal_translate -q -of PNG -ot Byte -scale dem.tif dem.png",
        ],
    );
    ok(
        env,
        &[
            "-c",
            "printf 'name,value\\nalpha,1\\nbeta,2\\n' > table.csv",
        ],
    );
    ok(env, &["-c", "sort -r table.csv > sorted.csv"]);
    let geojson = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[1.0,43.0],[2.0,43.0],[2.0,44.0],[1.0,43.0]]]}}]}"#;
    ok(
        env,
        &["-c", &format!("printf '%s' '{geojson}' > regions.geojson")],
    );
    ok(env, &["-c", "seq 1 5 > notes.txt"]);
    assert_eq!(env.line("false").status.code(), Some(1));
    env.write(
        "doc.md",
        "# Report\n\nCount the *rows*.\n\n```shark-run\nwc -l table.csv\n```\n",
    );
    ok(env, &["md", "doc.md"]);
}

/// The id of the newest run whose command is `command`.
fn run_of(env: &TestEnv, command: &str) -> i64 {
    let log = env.log();
    let run = log.iter().rev().find(|r| r["command"] == command);
    run.unwrap_or_else(|| panic!("no run of {command}"))["id"]
        .as_i64()
        .unwrap()
}

fn digest(env: &TestEnv, file: &str) -> String {
    shark_store::Digest::of_file(&env.path(file))
        .unwrap()
        .to_hex()
}

/// Polls `f` until it is true, for at most `secs` seconds.
fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_view_loads_in_a_browser() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let env = TestEnv::new();
    history(&env);
    let server = Server::start(&env, &[]);
    let w = env.work.display().to_string();

    // The run log, whole and filtered.
    browser.open(&server.url("/"));
    let text = browser.text();
    assert!(
        text.contains("sort -r table.csv") && text.contains("seq 1 5"),
        "{text}"
    );
    browser.screenshot("log");
    browser.open(&server.url("/?q=sort&outcome=all"));
    let rows = browser
        .eval("return [...document.querySelectorAll('#runs tr')].slice(1).map(r => r.innerText);");
    let rows: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r.contains("sort")),
        "{rows:?}"
    );
    browser.open(&server.url("/?outcome=failed"));
    let text = browser.text();
    assert!(
        text.contains("false") && text.contains("exit 1") && !text.contains("seq 1 5"),
        "{text}"
    );

    // A run: command, inputs and outputs with digests; a document step's stdout.
    let sort = run_of(&env, "sort -r table.csv > sorted.csv");
    browser.open(&server.url(&format!("/run/{sort}")));
    let inputs = browser.eval("return document.querySelector('#inputs').innerText;");
    assert!(
        inputs.as_str().unwrap().contains(&format!("{w}/table.csv")),
        "{inputs}"
    );
    let outputs = browser.eval("return document.querySelector('#outputs').innerText;");
    assert!(
        outputs
            .as_str()
            .unwrap()
            .contains(&digest(&env, "sorted.csv")[..12]),
        "{outputs}"
    );
    browser.screenshot("run");
    let wc = run_of(&env, "wc -l table.csv");
    browser.open(&server.url(&format!("/run/{wc}")));
    let out = browser.eval("return document.querySelector('#stdout').innerText;");
    assert_eq!(out.as_str().unwrap().trim(), "3 table.csv");

    // A file: its versions, a table preview and a download of a version from the store.
    browser.open(&server.url(&format!("/file?path={w}/sorted.csv")));
    let versions = browser.eval("return document.querySelector('#versions').innerText;");
    assert!(
        versions.as_str().unwrap().contains(&format!("run {sort}")),
        "{versions}"
    );
    let cells =
        browser.eval("return [...document.querySelectorAll('#preview td')].map(c => c.innerText);");
    assert_eq!(cells, serde_json::json!(["beta", "2", "alpha", "1"]));
    browser.screenshot("file-csv");
    let d = digest(&env, "sorted.csv");
    let download = server.get(&format!("/blob/{d}?name=sorted.csv"));
    assert_eq!(
        download.body,
        std::fs::read(env.path("sorted.csv")).unwrap()
    );
    assert!(download
        .header("content-disposition")
        .unwrap()
        .contains("attachment"));

    // The lineage graph, from Graphviz where installed and drawn by shark, clicked through.
    for engine in ["", "&engine=shark"] {
        browser.open(&server.url(&format!("/graph?path={w}/sorted.csv&digest={d}{engine}")));
        let hrefs = browser.eval("return [...document.querySelectorAll('#graph a')].map(a => a.getAttribute('href') || a.getAttribute('xlink:href'));");
        let hrefs: Vec<&str> = hrefs
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h.as_str())
            .collect();
        assert!(
            hrefs.contains(&format!("/run/{sort}").as_str()),
            "{hrefs:?}"
        );
        assert!(
            hrefs
                .iter()
                .any(|h| h.starts_with("/file?path=") && h.contains("table.csv")),
            "{hrefs:?}"
        );
        let by_dot = browser.text().contains("Drawn by Graphviz dot");
        assert_eq!(
            by_dot,
            engine.is_empty() && which("dot"),
            "{}",
            browser.text()
        );
        browser.screenshot(if engine.is_empty() {
            "graph"
        } else {
            "graph-shark"
        });
    }
    browser.eval(&format!("[...document.querySelectorAll('#graph a')].find(a => (a.getAttribute('href') || '') == '/run/{sort}').dispatchEvent(new MouseEvent('click', {{bubbles: true}})); return 0;"));
    eventually(20, "the click on a run to navigate", || {
        browser.eval("return location.pathname;") == format!("/run/{sort}").as_str()
    });

    // Previews: a GeoTIFF thumbnail (GDAL), an image, GeoJSON on a map, text with line numbers.
    browser.open(&server.url(&format!("/file?path={w}/dem.tif")));
    eventually(30, "the thumbnail to load", || {
        browser.eval("const i = document.querySelector('img.thumbnail'); return i.complete;")
            == true
    });
    let size = browser.eval("const i = document.querySelector('img.thumbnail'); return [i.naturalWidth, i.naturalHeight];");
    assert_eq!(
        size,
        serde_json::json!([480, 360]),
        "the thumbnail did not decode"
    );
    browser.screenshot("file-geotiff");
    browser.open(&server.url(&format!("/file?path={w}/dem.png")));
    eventually(30, "the image to load", || {
        browser.eval("return document.querySelector('#preview').complete;") == true
    });
    assert_eq!(
        browser.eval("return document.querySelector('#preview').naturalWidth;"),
        4
    );
    browser.open(&server.url(&format!("/file?path={w}/regions.geojson")));
    assert_eq!(
        browser.eval("return document.querySelectorAll('#map polygon').length;"),
        1
    );
    browser.screenshot("file-geojson");
    browser.open(&server.url(&format!("/file?path={w}/notes.txt")));
    let numbers = browser
        .eval("return [...document.querySelectorAll('#preview td.n')].map(c => c.innerText);");
    assert_eq!(numbers, serde_json::json!(["1", "2", "3", "4", "5"]));

    // The folder, and the document with its block's result.
    browser.open(&server.url("/browse"));
    let listing = browser.eval("return document.querySelector('#listing').innerText;");
    assert!(
        listing.as_str().unwrap().contains("sorted.csv"),
        "{listing}"
    );
    browser.screenshot("browse");
    browser.open(&server.url("/docs"));
    assert!(
        browser.text().contains(&format!("{w}/doc.md")),
        "{}",
        browser.text()
    );
    browser.open(&server.url(&format!("/doc?path={w}/doc.md")));
    assert_eq!(
        browser.eval(
            "return document.querySelector('main h1 + p + h1, main h1:nth-of-type(2)').innerText;"
        ),
        "Report"
    );
    let output = browser.eval("return document.querySelector('pre.output').innerText;");
    assert_eq!(output.as_str().unwrap().trim(), "3 table.csv");
    assert!(
        browser.text().contains(&format!("run {wc}")),
        "{}",
        browser.text()
    );
    assert_eq!(
        browser.eval("return document.querySelectorAll('meta[http-equiv=refresh]').length;"),
        0
    );
    browser.screenshot("doc");
}

fn which(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_running_document_is_followed_until_it_stops() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let env = TestEnv::new();
    env.write(
        "slow.md",
        "Two steps.\n\n```shark-run\necho first > first.txt\n```\n\n```shark-run\nsleep 60\n```\n",
    );
    ok(&env, &["-c", "true"]);
    let server = Server::start(&env, &[]);
    let mut md = env
        .shark()
        .args(["md", "slow.md"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let page = format!("/doc?path={}/slow.md", env.work.display());
    // The first block's run is shown while the second runs.
    eventually(60, "the first block to be recorded", || {
        let body = server.get(&page).text();
        body.contains("running")
            && body.contains("echo first")
            && body.contains("class=\"command\"")
    });
    browser.open(&server.url(&page));
    assert_eq!(
        browser.eval("return document.querySelector('#status').innerText;"),
        "Last run: running"
    );
    assert_eq!(
        browser.eval("return document.querySelectorAll('meta[http-equiv=refresh]').length;"),
        1
    );
    browser.screenshot("doc-running");
    // `shark md` dies: the page, reloading itself, says the run stopped, and stops reloading.
    md.kill().unwrap();
    md.wait().unwrap();
    eventually(30, "the page to reload and show the stop", || {
        browser
            .eval("return document.querySelector('#status').innerText;")
            .as_str()
            .is_some_and(|s| s.contains("stopped"))
    });
    assert_eq!(
        browser.eval("return document.querySelectorAll('meta[http-equiv=refresh]').length;"),
        0
    );
}

#[test]
fn the_view_listens_on_loopback_unless_bound_elsewhere() {
    let env = TestEnv::new();
    ok(&env, &["-c", "true"]);
    let server = Server::start(&env, &[]);
    assert!(server.addr.starts_with("127.0.0.1:"), "{}", server.addr);
    let page = server.get("/run/1");
    assert_eq!(page.status, 200);
    assert_eq!(server.get("/run/99").status, 404);
    assert_eq!(server.get("/run/x").status, 400);
    drop(server);
    let mut child = env
        .shark()
        .args(["serve", "--port", "0", "--bind", "0.0.0.0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.contains("warning: serving on 0.0.0.0"), "{line}");
}

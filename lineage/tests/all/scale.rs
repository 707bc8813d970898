//! Query speed on a large database (`cargo test -p shark-lineage -- --ignored scale`).

use std::time::{Duration, Instant};

use shark_lineage::{LineageOptions, NewRun};

use crate::common::{d, file_in, file_out, fresh, ok_run};

/// How long `f` takes, best of three.
fn best_of_three<T>(mut f: impl FnMut() -> T) -> Duration {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
#[ignore = "slow: builds a database of 100,000 runs"]
fn queries_stay_fast_with_a_hundred_thousand_runs() {
    let (_dir, _path, mut db) = fresh();
    // A chain of 100,000 steps, each reading the previous step's output, a shared source and
    // the empty file (which every step also writes: a digest with very many producers).
    for i in 0..100_000u64 {
        let run = NewRun {
            inputs: vec![
                file_in(
                    &format!("/w/{}", i.saturating_sub(1)),
                    &format!("c{}", i.saturating_sub(1)),
                ),
                file_in("/src/config", "config"),
                file_in("/w/empty", ""),
            ],
            outputs: vec![
                file_out(&format!("/w/{i}"), &format!("c{i}")),
                file_out("/w/empty", ""),
            ],
            ..ok_run(&format!("step {i}"), &format!("k{}", i % 1000), i)
        };
        db.record(&run).unwrap();
    }
    let opts = LineageOptions {
        include_system: false,
        max_depth: 64,
    };
    // The goal is 50 ms in an optimised build; unoptimised SQLite is several times slower.
    let limit = Duration::from_millis(if cfg!(debug_assertions) { 200 } else { 50 });
    let log = best_of_three(|| db.recent(20).unwrap());
    let lookup = best_of_three(|| db.candidates(&d("k500"), 8).unwrap());
    let lineage = best_of_three(|| db.lineage("/w/99999", &d("c99999"), &opts).unwrap());
    let empty = best_of_three(|| db.lineage("/w/empty", &d(""), &opts).unwrap());
    let stats = best_of_three(|| db.stats().unwrap());
    let timings = [
        ("log", log),
        ("lookup", lookup),
        ("lineage", lineage),
        ("empty", empty),
        ("stats", stats),
    ];
    let slow = timings.iter().any(|(_, took)| *took >= limit);
    assert!(!slow, "over {limit:?}: {timings:?}");
}

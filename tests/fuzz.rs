//! Seeded mutations of the shipped scenarios (issue #11, must-hold 1): each
//! is refused with a message naming the file, or runs a tiny version of
//! itself to completion with a summary free of NaN and infinities — never a
//! panic, never a hang (each case is time-boxed), never an estimate past
//! the limits it was given.
//!
//! Every scenario in `scenarios/` is first shrunk (two seeds, two episodes,
//! short days, few sessions, catalogs of at most 1,000 items and short
//! logs), then mutated: a number replaced by an
//! extreme (0, −1, 1e−320, ±1e308, NaN, ∞, 2³²−1, −9.2e18, a thousand
//! times itself), a value by one of another type, an array emptied or
//! lengthened, a key removed.

use rand::RngExt;
use shoplab_env::seed::{SimRng, rng_from_seed};
use shoplab_harness::{budget::Limits, registry::Registry};
use std::{path::Path, sync::mpsc, time::Duration};
use toml::{Table, Value};

/// Mutated cases per shipped scenario.
const CASES: usize = 60;

/// Longest a case may take, validation and tiny run together.
const TIME_BOX: Duration = Duration::from_secs(60);

/// The shipped scenario at `path`, shrunk so that a run of it is tiny.
fn shrunk(path: &Path) -> Table {
    let mut doc: Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
    let run = doc["run"].as_table_mut().unwrap();
    run.insert("seeds".into(), Value::Array(vec![1.into(), 2.into()]));
    run.insert("episodes".into(), 2.into());
    run.insert("bootstrap_resamples".into(), 100.into());
    run.insert("curve_points".into(), 2.into());
    run.insert("eval_episodes".into(), 1.into());
    run.insert("eval_every".into(), 0.into());
    let cap = |table: &mut Table, key: &str, most: i64| {
        if let Some(v) = table.get(key).and_then(Value::as_integer) {
            table.insert(key.into(), v.min(most).into());
        }
    };
    if let Some(r) = doc.get_mut("recommendation").and_then(Value::as_table_mut) {
        cap(r, "ticks", 8);
        cap(r, "concurrent_sessions", 8);
        // A catalog of 100,000 items would spend each case's time box
        // ranking its items for the baseline.
        cap(r, "n_items", 1_000);
    }
    if let Some(o) = doc.get_mut("offline").and_then(Value::as_table_mut) {
        cap(o, "episodes", 20);
    }
    if let Some(a) = doc.get_mut("ads").and_then(Value::as_table_mut) {
        cap(a, "periods", 24);
        if let Some(d) = a.get_mut("day_variation").and_then(Value::as_table_mut) {
            cap(d, "peak_shift", 4);
        }
    }
    if let Some(policies) = doc.get_mut("policies").and_then(Value::as_array_mut) {
        for p in policies.iter_mut().filter_map(Value::as_table_mut) {
            // Days are shorter: decisions every period.
            p.remove("decide_every");
            cap(p, "learning_starts", 10);
            cap(p, "log_steps", 10);
            // An item of the smaller catalog.
            cap(p, "action", 999);
            if let Some(dqn) = p.get_mut("dqn").and_then(Value::as_table_mut) {
                cap(dqn, "learning_starts", 10);
            }
        }
    }
    doc
}

/// Paths to every value in `value`, as keys and indices.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn leaves(value: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match value {
        Value::Table(t) => {
            for (k, v) in t {
                if path.is_empty() && (k == "name" || k == "description") {
                    continue;
                }
                path.push(Step::Key(k.clone()));
                out.push(path.clone());
                leaves(v, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                path.push(Step::Index(i));
                out.push(path.clone());
                leaves(v, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The value at `path` and its parent's handle for removal.
fn at<'a>(root: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(root, |v, step| match step {
        Step::Key(k) => &mut v.as_table_mut().unwrap()[k],
        Step::Index(i) => &mut v.as_array_mut().unwrap()[*i],
    })
}

/// One mutation of `doc`, drawn from `rng`: mostly a number changed —
/// to an extreme, or scaled as a user might — else a value of another
/// type, an array emptied or lengthened, or a key removed.
fn mutate(doc: &mut Value, rng: &mut SimRng) {
    let mut paths = Vec::new();
    leaves(doc, &mut Vec::new(), &mut paths);
    let numbers: Vec<&Vec<Step>> = paths
        .iter()
        .filter(|p| matches!(at(doc, p), Value::Integer(_) | Value::Float(_)))
        .collect();
    let choice = rng.random_range(0..10);
    let path = if choice < 7 && !numbers.is_empty() {
        numbers[rng.random_range(0..numbers.len())].clone()
    } else {
        paths[rng.random_range(0..paths.len())].clone()
    };
    if choice == 9 {
        let (last, parent) = path.split_last().unwrap();
        match (last, at(doc, parent)) {
            (Step::Key(k), Value::Table(t)) => {
                t.remove(k);
            }
            (Step::Index(i), Value::Array(a)) => {
                a.remove(*i);
            }
            _ => unreachable!(),
        }
        return;
    }
    let extremes = [
        Value::Integer(0),
        Value::Integer(-1),
        Value::Integer(4_294_967_295),
        Value::Integer(i64::MAX),
        Value::Float(1e-320),
        Value::Float(1e308),
        Value::Float(-1e308),
        Value::Float(f64::NAN),
        Value::Float(f64::INFINITY),
        Value::Float(1e15),
        Value::Float(-9.2e18),
        Value::Float(0.5),
    ];
    let factors = [0.0, 0.5, 2.0, 10.0, 1000.0, -1.0];
    let target = at(doc, &path);
    *target = match (choice, &*target) {
        (0..=3, _) => extremes[rng.random_range(0..extremes.len())].clone(),
        (4..=6, Value::Float(f)) => Value::Float(f * factors[rng.random_range(0..factors.len())]),
        (4..=6, Value::Integer(i)) => {
            let factor = factors[rng.random_range(0..factors.len())];
            Value::Integer((*i as f64 * factor) as i64)
        }
        (7, Value::Array(a)) if !a.is_empty() => {
            let mut longer = a.clone();
            for _ in 0..rng.random_range(1..40) {
                longer.push(a[rng.random_range(0..a.len())].clone());
            }
            Value::Array(longer)
        }
        (7, _) => Value::Array(Vec::new()),
        (_, Value::String(_)) => Value::Integer(3),
        _ => Value::String("x".into()),
    };
}

/// What became of one case.
enum Outcome {
    Refused,
    Ran { failed_runs: usize },
}

/// Validates and, if accepted, runs the scenario `text` in `dir`.
fn play(text: &str, dir: &Path) -> Result<Outcome, String> {
    let file = dir.join("fuzz.toml");
    std::fs::write(&file, text).unwrap();
    let limits = Limits {
        max_memory: 2.0 * (1u64 << 30) as f64,
        max_work: 2e10,
        threads: 2,
    };
    let prepared = match shoplab_harness::load_with(&file, &Registry::default(), &limits) {
        Ok(p) => p,
        Err(e) => {
            let message = e.to_string();
            if !message.contains("fuzz.toml") || message.lines().count() != 1 {
                return Err(format!(
                    "the refusal is not one line naming the file: {message}"
                ));
            }
            return Ok(Outcome::Refused);
        }
    };
    let finished = shoplab_harness::execute(&prepared, &dir.join("results"), &|_| {})
        .map_err(|e| format!("the accepted scenario did not run: {e}"))?;
    let summary = std::fs::read_to_string(finished.dir.join("summary.csv")).unwrap();
    for token in summary.split([',', '\n']) {
        if token.parse::<f64>().is_ok_and(|v| !v.is_finite()) {
            return Err(format!("summary.csv holds {token}:\n{summary}"));
        }
    }
    Ok(Outcome::Ran {
        failed_runs: finished.report.failures.len(),
    })
}

#[test]
fn mutated_shipped_scenarios_are_refused_or_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut rng = rng_from_seed(20_261_129);
    let (mut refused, mut ran, mut failed_runs) = (0, 0, 0);
    for file in &files {
        let base = Value::Table(shrunk(file));
        for case in 0..CASES {
            let mut doc = base.clone();
            for _ in 0..1 + usize::from(rng.random_bool(0.25)) {
                mutate(&mut doc, &mut rng);
            }
            let text = toml::to_string(&doc).unwrap();
            let (tx, rx) = mpsc::channel();
            let job = text.clone();
            std::thread::spawn(move || {
                let dir = tempfile::tempdir().unwrap();
                let outcome = std::panic::catch_unwind(|| play(&job, dir.path()));
                tx.send(outcome).ok();
            });
            let label = format!("{} case {case}", file.display());
            match rx.recv_timeout(TIME_BOX) {
                Err(_) => panic!("{label}: no answer within {TIME_BOX:?}:\n{text}"),
                Ok(Err(_)) => panic!("{label}: panicked on:\n{text}"),
                Ok(Ok(Err(problem))) => panic!("{label}: {problem}\n{text}"),
                Ok(Ok(Ok(Outcome::Refused))) => refused += 1,
                Ok(Ok(Ok(Outcome::Ran { failed_runs: n }))) => {
                    ran += 1;
                    failed_runs += n;
                }
            }
        }
    }
    println!("{refused} refused, {ran} ran ({failed_runs} runs failed, reported)");
    // Both outcomes are exercised: the mutations are neither all fatal nor
    // all harmless.
    assert!(refused >= 20 && ran >= 20, "{refused} refused, {ran} ran");
}

//! The transformer policies (`kind = "reinforce"` and `kind = "dqn"` with
//! `encoder = "transformer"`, issue #17) end to end: a recommendation run
//! with slates of three gives the same bytes —
//! CSVs and checkpoints — on one thread and two (and with candle's own
//! elementwise pool at two threads), `reproduce` agrees, and
//! bad encoder settings are refused before any work with the file, the
//! key and the rule.

mod common;

use common::{TempDir, assert_names, refused, shoplab};

/// A small recommendation scenario with two REINFORCE policies (one
/// reading the context, one the history alone) and a transformer DQN.
fn small_text() -> String {
    let mut text = std::fs::read_to_string("scenarios/recommendation.toml").unwrap();
    text = common::replaced(
        &text,
        "seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]",
        "seeds = [1, 2]",
    );
    text = common::replaced(
        &text,
        "episodes = 40",
        "episodes = 3\neval_episodes = 1\neval_every = 3",
    );
    text = common::replaced(
        &text,
        "concurrent_sessions = 200",
        "concurrent_sessions = 30",
    );
    text = common::replaced(&text, "ticks = 100", "ticks = 12");
    text = common::replaced(&text, "slate_size = 1", "slate_size = 3");
    text = common::replaced(&text, "name = \"recommendation\"", "name = \"small-seq\"");
    let policies = text.find("[[policies]]").unwrap();
    text.truncate(policies);
    text.push_str(
        r#"[[policies]]
kind = "reinforce"
encoder = { dim = 16, heads = 2, layers = 2, history = 3 }
one_hot = ["segment"]
batch_size = 64

[[policies]]
kind = "reinforce"
encoder = { dim = 8, heads = 1, layers = 1, history = 2 }
context = false
top_k = 1
batch_size = 32

[[policies]]
kind = "dqn"
encoder = "transformer"
transformer = { dim = 8, heads = 2, layers = 1, history = 3 }
one_hot = ["segment"]
batch_size = 16
buffer_size = 2000
learning_starts = 100
train_freq = 8
target_update_interval = 200
"#,
    );
    text
}

#[test]
fn reinforce_runs_give_the_same_bytes_on_any_thread_count() {
    let tmp = TempDir::new("seq-repro");
    let file = tmp.path().join("small-seq.toml");
    std::fs::write(&file, small_text()).unwrap();
    let results = tmp.path().join("results");
    common::run_with_threads(&file, &results, "small-seq", &["1", "2"]);
    // Candle's own pool of threads for elementwise ops (one by default).
    let out = common::run_scenario(
        &file,
        &results,
        &[("RAYON_NUM_THREADS", "2"), ("CANDLE_NUM_THREADS", "2")],
    );
    common::assert_success(&out);
    let dirs = common::run_dirs(&results, "small-seq");
    assert_eq!(dirs.len(), 3);
    let mut files = vec![
        "episodes.csv".to_string(),
        "summary.csv".into(),
        "learning.csv".into(),
        "evaluations.csv".into(),
    ];
    let checkpoints: Vec<String> = std::fs::read_dir(dirs[0].join("checkpoints"))
        .unwrap()
        .map(|e| format!("checkpoints/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    assert_eq!(checkpoints.len(), 6, "{checkpoints:?}");
    files.extend(checkpoints);
    for name in &files {
        assert!(
            std::fs::read(dirs[0].join(name)).unwrap()
                == std::fs::read(dirs[1].join(name)).unwrap(),
            "{name} differs between thread counts"
        );
    }
    // Each policy learned: gradient steps were taken (learning.csv counts them).
    let learning = std::fs::read_to_string(dirs[0].join("learning.csv")).unwrap();
    for policy in ["reinforce", "reinforce_2", "dqn"] {
        assert!(
            learning.lines().skip(1).any(|l| {
                let cells: Vec<&str> = l.split(',').collect();
                cells[1] == policy && cells[4].parse::<u64>().unwrap_or(0) > 0
            }),
            "no updates by {policy}:\n{learning}"
        );
    }
    let out = shoplab(&["reproduce", dirs[0].to_str().unwrap(), "--quiet"], &[]);
    common::assert_success(&out);
}

#[test]
fn bad_encoder_settings_are_refused_with_file_key_and_rule() {
    let with = |from: &str, to: &str| common::replaced(&small_text(), from, to);
    let m = refused(&with("dim = 16, heads = 2", "dim = 16, heads = 3"), &[]);
    assert_names(&m, &["policies[0].encoder.heads", "must divide dim"]);
    let m = refused(
        &with("layers = 2, history = 3", "layers = 2, history = 0"),
        &[],
    );
    assert_names(&m, &["policies[0].encoder.history", "at least 1"]);
    let m = refused(&with("top_k = 1", "top_k = 0"), &[]);
    assert_names(&m, &["policies[1].top_k"]);
    let m = refused(
        &with("batch_size = 32", "batch_size = 32\ntemperature = -1"),
        &[],
    );
    assert_names(&m, &["policies[1].temperature"]);
    let m = refused(
        &with(
            "learning_starts = 100",
            "learning_starts = 100\ndueling = true",
        ),
        &[],
    );
    assert_names(&m, &["policies[2].dueling", "two-tower"]);
    let m = refused(
        &with(
            "dim = 8, heads = 2, layers = 1",
            "dim = 8, heads = 3, layers = 1",
        ),
        &[],
    );
    assert_names(&m, &["policies[2].transformer.heads", "must divide dim"]);
    // A family without a history to read.
    let pricing = common::small_pricing("no-history", 5);
    let m = refused(
        &format!("{pricing}\n[[policies]]\nkind = \"reinforce\"\n"),
        &[],
    );
    assert_names(&m, &["history_1"]);
    let m = refused(
        &format!("{pricing}\n[[policies]]\nkind = \"dqn\"\nencoder = \"transformer\"\n"),
        &[],
    );
    assert_names(&m, &["history_1"]);
}

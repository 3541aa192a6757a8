//! The cluster files run as shipped: the Slurm array script and the
//! Kubernetes Indexed Job's shard and merge scripts, driven with the
//! environment their schedulers set (plain processes here; a real one-node
//! Slurm cluster is `deploy/slurm/try-local.sh`), give a run folder whose
//! tables are byte-identical to the same scenario run in one process.
//!
//! Guards issue #16 (sweeps past one machine).

mod common;

use common::{TempDir, assert_success};
use std::{
    path::{Path, PathBuf},
    process::Command,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A small sweep: 2 configurations × 5 policies × 4 seeds.
fn scenario(dir: &Path) -> PathBuf {
    let text = common::small_pricing("deployed", 40)
        + "\n[sweep]\n[sweep.parameters]\n\"pricing.inventory\" = [8, 12]\n";
    let file = dir.join("deployed.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// The tables of the one run folder under `results/deployed`.
fn tables(results: &Path) -> Vec<(String, Vec<u8>)> {
    let run = std::fs::read_dir(results.join("deployed"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            !name.starts_with('.') && !name.starts_with("shard-")
        })
        .expect("a run folder");
    let mut out = Vec::new();
    let mut folders = vec![run.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "csv") {
                let name = path.strip_prefix(&run).unwrap().display().to_string();
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    assert!(out.len() >= 10, "{} tables", out.len());
    out
}

fn single_run(tmp: &TempDir, file: &Path) -> Vec<(String, Vec<u8>)> {
    let results = tmp.path().join("single");
    assert_success(&common::run_scenario(file, &results, &[]));
    tables(&results)
}

#[test]
fn the_slurm_array_script_shards_and_merges() {
    let tmp = TempDir::new("slurm-script");
    let file = scenario(tmp.path());
    let expected = single_run(&tmp, &file);
    let results = tmp.path().join("slurm");
    let script = root().join("deploy/slurm/sweep.sbatch");
    let bin = env!("CARGO_BIN_EXE_shoplab");
    // Array 5-7: task ids need not start at 1.
    for id in ["6", "5", "7"] {
        let out = Command::new("bash")
            .arg(&script)
            .arg(&file)
            .arg(&results)
            .env("SHOPLAB", bin)
            .env("SLURM_ARRAY_TASK_ID", id)
            .env("SLURM_ARRAY_TASK_MIN", "5")
            .env("SLURM_ARRAY_TASK_COUNT", "3")
            .env("SLURM_CPUS_PER_TASK", "2")
            .output()
            .unwrap();
        assert_success(&out);
    }
    let out = Command::new("bash")
        .arg(&script)
        .args([
            "--merge".as_ref(),
            file.as_os_str(),
            results.as_os_str(),
            "3".as_ref(),
        ])
        .env("SHOPLAB", bin)
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(tables(&results), expected);
    // Outside an array, the script says how to submit it.
    let out = Command::new("bash")
        .arg(&script)
        .arg(&file)
        .arg(&results)
        .env("SHOPLAB", bin)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--array=1-N"));
}

/// The block under `key: |` in the manifest, unindented.
fn block(manifest: &str, key: &str) -> String {
    let mut lines = manifest
        .lines()
        .skip_while(|l| l.trim() != format!("{key}: |"));
    let head = lines.next().expect("the block's key");
    let indent = head.len() - head.trim_start().len();
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .map(|l| l.get(indent + 2..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The value of `key: value` (the first such line).
fn value<'a>(manifest: &'a str, key: &str) -> &'a str {
    manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key}"))
        .trim_matches('"')
}

#[test]
fn the_kubernetes_indexed_job_shards_and_merges() {
    let manifest = std::fs::read_to_string(root().join("deploy/k8s/sweep.yaml")).unwrap();
    let shards = value(&manifest, "SHARDS");
    assert_eq!(value(&manifest, "completionMode"), "Indexed");
    assert_eq!(value(&manifest, "completions"), shards);
    assert_eq!(value(&manifest, "parallelism"), shards);
    let scenario_file = value(&manifest, "SCENARIO");
    let shipped = root().join(scenario_file.trim_start_matches("/shoplab/"));
    assert!(
        shipped.is_file(),
        "the manifest's scenario {scenario_file} is not shipped"
    );

    let tmp = TempDir::new("k8s-job");
    let file = scenario(tmp.path());
    let expected = single_run(&tmp, &file);
    let results = tmp.path().join("k8s");
    let bin = env!("CARGO_BIN_EXE_shoplab");
    let run = |script: &str, index: Option<usize>| {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(script)
            .env("SHOPLAB", bin)
            .env("SCENARIO", &file)
            .env("RESULTS", &results)
            .env("SHARDS", shards)
            .env("POLL_SECONDS", "1");
        if let Some(i) = index {
            command.env("JOB_COMPLETION_INDEX", i.to_string());
        }
        command.output().unwrap()
    };
    let n: usize = shards.parse().unwrap();
    // The merge waits for the shards; it is started first, as `kubectl
    // apply` starts both Jobs at once.
    let merge_script = block(&manifest, "merge.sh");
    let merge = std::thread::scope(|scope| {
        let merge = scope.spawn(|| run(&merge_script, None));
        std::thread::sleep(std::time::Duration::from_millis(300));
        let shard = block(&manifest, "shard.sh");
        for i in (0..n).rev() {
            assert_success(&run(&shard, Some(i)));
        }
        merge.join().unwrap()
    });
    assert_success(&merge);
    assert!(String::from_utf8_lossy(&merge.stdout).contains(&format!("merged {n} shards")));
    assert_eq!(tables(&results), expected);
}

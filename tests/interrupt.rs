//! Interrupted runs leave either a complete, verified run folder or nothing
//! visible, and never damage an earlier run (issue #11, class 4): SIGINT
//! and SIGTERM remove the folder being written and exit with 130; after a
//! SIGKILL the hidden partial folder is removed by the next run, which says
//! so. Each signal is sent at the moment that matters most — while the run
//! folder is being written (its partial folder exists) — and, for SIGINT,
//! also while the runs compute.
#![cfg(unix)]

mod common;

use common::{TempDir, assert_success, run_scenario};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const NAME: &str = "interrupted";

/// A pricing scenario whose run folder takes a while to write (many
/// episodes, so a large `episodes.csv`, and every chart).
fn scenario(tmp: &TempDir) -> PathBuf {
    let text = common::small_pricing(NAME, 3000)
        .replace("seeds = [1, 2, 3, 4]", "seeds = [1, 2, 3, 4, 5, 6]");
    let file = tmp.path().join(format!("{NAME}.toml"));
    std::fs::write(&file, text).unwrap();
    file
}

fn start(file: &Path, results: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_shoplab"))
        .args(["run", file.to_str().unwrap(), "--quiet", "--results"])
        .arg(results)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Entries of the scenario's results folder: (visible run folders, hidden
/// partial folders; the writability probe, created and removed at once
/// before the runs, is neither).
fn entries(results: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut visible = Vec::new();
    let mut hidden = Vec::new();
    if let Ok(list) = std::fs::read_dir(results.join(NAME)) {
        for e in list.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".partial") {
                hidden.push(e.path());
            } else if !name.starts_with('.') {
                visible.push(e.path());
            }
        }
    }
    visible.sort();
    (visible, hidden)
}

/// Waits until the run is writing its folder (the partial folder, which
/// holds the finished jobs from the start, has its scenario file).
fn wait_for_writing(results: &Path, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if entries(results)
            .1
            .iter()
            .any(|p| p.join("scenario.toml").is_file())
        {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    panic!("the run never started writing its folder");
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Every visible run folder verifies.
fn all_verify(results: &Path) {
    for dir in entries(results).0 {
        let out = common::shoplab(&["verify", dir.to_str().unwrap()], &[]);
        assert_success(&out);
    }
}

#[test]
fn signals_leave_whole_folders_or_nothing() {
    let tmp = TempDir::new("interrupt");
    let file = scenario(&tmp);
    let results = tmp.path().join("results");
    // An earlier, complete run that nothing may touch.
    assert_success(&run_scenario(&file, &results, &[]));
    let (earlier, _) = entries(&results);
    assert_eq!(earlier.len(), 1);

    // SIGINT early, while computing in a slow build (a fast one may have
    // finished): nothing is written, or the folder is whole.
    let child = start(&file, &results);
    std::thread::sleep(Duration::from_millis(150));
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    let (visible, hidden) = entries(&results);
    assert!(hidden.is_empty(), "{out:?}");
    if out.status.code() == Some(130) {
        assert_eq!(visible, earlier, "{out:?}");
    } else {
        assert!(out.status.success(), "{out:?}");
        all_verify(&results);
    }
    let (mut earlier, _) = entries(&results);

    // SIGINT and SIGTERM while writing: the partial folder is removed.
    let mut removed = 0;
    for name in ["INT", "TERM"] {
        let mut child = start(&file, &results);
        let writing = wait_for_writing(&results, &mut child);
        signal(&child, name);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let (visible, hidden) = entries(&results);
        assert!(hidden.is_empty(), "SIGTERM left {hidden:?}: {stderr}");
        if out.status.code() == Some(130) {
            assert!(writing);
            assert_eq!(visible, earlier, "{stderr}");
            assert!(
                stderr.contains("removed the unfinished run folder"),
                "{stderr}"
            );
            removed += 1;
        } else {
            // The signal came after the folder was published: it is whole.
            assert!(out.status.success(), "{stderr}");
            assert_eq!(visible.len(), earlier.len() + 1);
            earlier = visible;
        }
        all_verify(&results);
    }

    // Writing a folder takes about a second here; a signal sent while it
    // is under way is caught there (at least once of the two).
    assert!(
        removed >= 1,
        "no signal arrived while a folder was being written"
    );

    // SIGKILL while writing leaves a hidden partial folder holding every
    // finished job (unless it came in the last instant, once they were
    // cleared for the rename); a plain run keeps it and says how to resume
    // it, and `--resume` publishes it without running a job again.
    let mut child = start(&file, &results);
    wait_for_writing(&results, &mut child);
    signal(&child, "KILL");
    child.wait().unwrap();
    let (visible, hidden) = entries(&results);
    assert_eq!(
        hidden.len(),
        1,
        "SIGKILL while writing leaves its partial folder"
    );
    assert!(
        visible
            .iter()
            .all(|v| earlier.contains(v) || v.join("manifest.json").is_file())
    );
    all_verify(&results);
    let jobs = hidden[0].join(".jobs");
    let kept = std::fs::read_dir(&jobs).is_ok_and(|mut e| e.next().is_some());
    let out = run_scenario(&file, &results, &[]);
    assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = if kept { "kept" } else { "removed" };
    assert!(
        stderr.contains(&format!("{}: {said}", hidden[0].display()))
            && stderr.contains("interrupted run"),
        "{stderr}"
    );
    if !kept {
        assert!(entries(&results).1.is_empty());
        all_verify(&results);
        return;
    }
    assert!(stderr.contains("--resume"), "{stderr}");
    assert_eq!(entries(&results).1, hidden);
    let out = common::shoplab(
        &[
            "run",
            file.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--resume",
        ],
        &[],
    );
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("finished before, 0 to run"), "{stdout}");
    assert!(entries(&results).1.is_empty());
    all_verify(&results);
    assert!(earlier.iter().all(|e| entries(&results).0.contains(e)));
}

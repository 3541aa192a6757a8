//! Run folders on disk: claimed, built aside, published whole, and cleaned
//! up after an interruption.
//!
//! A run's files are written under a hidden `.<run-id>.partial/` folder,
//! which also claims the id (creating it fails if another process has it),
//! and renamed to `<run-id>/` when complete: a run folder appears whole or
//! not at all, and no earlier one is ever touched. An `.owner` file inside
//! the partial folder holds the writing process's id until the rename.
//!
//! What an interruption leaves behind:
//! - SIGINT or SIGTERM: the binary's handler calls [`interrupt`], which
//!   waits for the file being written, removes the partial folder and keeps
//!   every later write from starting, so the process exits leaving nothing;
//! - SIGKILL (or a power cut): the partial folder stays, hidden, with the
//!   results of the jobs that finished ([`crate::jobs`]). `--resume`
//!   takes it over ([`resume`]) and runs only the jobs left; otherwise the
//!   next run under the same results folder removes it once its owner is
//!   gone ([`clean_stale`]) — unless it holds finished jobs, which are kept
//!   for a resume — and says so.

use crate::HarnessError;
use std::{
    fs,
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard},
};

/// The partial folders being written by this process. Every write step
/// holds the lock, so [`interrupt`] never removes a folder mid-write.
static WRITING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The file naming the writing process inside a partial folder.
const OWNER_FILE: &str = ".owner";

/// The suffix of partial folders.
const PARTIAL: &str = ".partial";

/// The file of a partial folder naming the plan it runs
/// ([`crate::plan::Runs::identity`]) and the run's start time, so that a
/// resume continues only the same scenario.
pub(crate) const IDENTITY_FILE: &str = ".identity";

fn writing() -> MutexGuard<'static, Vec<PathBuf>> {
    WRITING.lock().unwrap_or_else(|e| e.into_inner())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HarnessError + '_ {
    move |source| HarnessError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A claimed run: its id, the partial folder being written and the folder
/// it becomes.
#[derive(Debug)]
pub(crate) struct Claim {
    /// The run id (`20261129-230000`, `-2`… when the second is taken).
    pub id: String,
    /// The hidden folder the files are written to.
    pub staging: PathBuf,
    /// The run folder it is renamed to.
    pub dir: PathBuf,
}

/// Claims the first free run id from `stamp` under `parent`: creates its
/// partial folder (with the owner file) where neither it nor the run
/// folder exists, and records it as the folder being written.
pub(crate) fn claim(parent: &Path, stamp: &str) -> Result<Claim, HarnessError> {
    fs::create_dir_all(parent).map_err(io(parent))?;
    for k in 1.. {
        let id = if k == 1 {
            stamp.to_string()
        } else {
            format!("{stamp}-{k}")
        };
        let dir = parent.join(&id);
        if fs::symlink_metadata(&dir).is_ok() {
            continue;
        }
        let staging = parent.join(format!(".{id}{PARTIAL}"));
        let mut guard = writing();
        match fs::create_dir(&staging) {
            Ok(()) => {
                let owner = staging.join(OWNER_FILE);
                fs::write(&owner, std::process::id().to_string()).map_err(io(&owner))?;
                guard.push(staging.clone());
                return Ok(Claim { id, staging, dir });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(&staging)(e)),
        }
    }
    unreachable!("the loop only ends by returning")
}

/// Takes over the partial folder under `parent` that an interrupted run of
/// the plan `identity` left (its owner gone): records this process as its
/// owner and returns the claim and the run's original start stamp. The
/// newest such folder is taken when there are several.
pub(crate) fn resume(
    parent: &Path,
    identity: &str,
) -> Result<Option<(Claim, String)>, HarnessError> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Ok(None);
    };
    let mut found: Vec<(String, PathBuf, String)> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let Some(id) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(PARTIAL))
            .filter(|_| path.is_dir())
        else {
            continue;
        };
        if owner_alive(&path) {
            continue;
        }
        let Ok(text) = fs::read_to_string(path.join(IDENTITY_FILE)) else {
            continue;
        };
        let mut lines = text.lines();
        if lines.next() != Some(identity) || fs::symlink_metadata(parent.join(id)).is_ok() {
            continue;
        }
        let stamp = lines.next().unwrap_or(id).to_string();
        found.push((id.to_string(), path, stamp));
    }
    found.sort();
    let Some((id, staging, stamp)) = found.pop() else {
        return Ok(None);
    };
    let mut guard = writing();
    let owner = staging.join(OWNER_FILE);
    fs::write(&owner, std::process::id().to_string()).map_err(io(&owner))?;
    guard.push(staging.clone());
    let dir = parent.join(&id);
    Ok(Some((Claim { id, staging, dir }, stamp)))
}

/// Whether the process named in `folder`'s owner file is running.
pub(crate) fn owner_alive(folder: &Path) -> bool {
    fs::read_to_string(folder.join(OWNER_FILE))
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .is_some_and(alive)
}

/// Records this process as the owner of `folder` (a shard folder), for
/// [`owner_alive`].
pub(crate) fn own(folder: &Path) -> Result<(), HarnessError> {
    let owner = folder.join(OWNER_FILE);
    fs::write(&owner, std::process::id().to_string()).map_err(io(&owner))
}

/// Removes `folder`'s owner file.
pub(crate) fn disown(folder: &Path) {
    let _ = fs::remove_file(folder.join(OWNER_FILE));
}

/// Finished job files in `folder`'s job folder.
fn finished_jobs(folder: &Path) -> usize {
    fs::read_dir(folder.join(crate::jobs::JOBS_DIR)).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".job"))
            .count()
    })
}

/// Runs `write` — one step of writing the folder being written — while no
/// interruption can remove the folder under it.
pub(crate) fn step<T>(write: impl FnOnce() -> T) -> T {
    let _guard = writing();
    write()
}

/// Publishes a complete partial folder: removes the owner file and renames
/// it to its run folder, at once and whole.
pub(crate) fn publish(claim: &Claim) -> Result<(), HarnessError> {
    let mut guard = writing();
    let owner = claim.staging.join(OWNER_FILE);
    fs::remove_file(&owner).map_err(io(&owner))?;
    fs::rename(&claim.staging, &claim.dir).map_err(io(&claim.dir))?;
    guard.retain(|p| p != &claim.staging);
    Ok(())
}

/// Removes a partial folder whose writing failed.
pub(crate) fn abandon(claim: &Claim) {
    let mut guard = writing();
    let _ = fs::remove_dir_all(&claim.staging);
    guard.retain(|p| p != &claim.staging);
}

/// For a signal handler: waits for the file being written, removes the
/// partial folders of this process, and keeps any later write from
/// starting (the lock is never released: the caller exits). Returns the
/// folders removed.
pub fn interrupt() -> Vec<PathBuf> {
    let mut guard = writing();
    let removed = std::mem::take(&mut *guard)
        .into_iter()
        .filter(|staging| {
            // A file may still be closing for an instant; try a few times.
            (0..5).any(|_| fs::remove_dir_all(staging).is_ok() || !staging.exists())
        })
        .collect();
    std::mem::forget(guard);
    removed
}

/// Whether process `pid` is running (on Linux, by `/proc`; elsewhere it is
/// assumed to be, so only folders without an owner are cleaned).
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

/// Removes the partial folders under `parent` left by interrupted runs —
/// those whose owner process is gone, or that have no owner file — and
/// returns them with what was done, for the caller to report. Folders of
/// runs still being written by another process are left alone, and so are
/// those holding finished jobs, for `--resume`.
pub fn clean_stale(parent: &Path) -> Vec<(PathBuf, String)> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut cleaned = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !(name.starts_with('.') && name.ends_with(PARTIAL) && path.is_dir()) {
            continue;
        }
        let owner = fs::read_to_string(path.join(OWNER_FILE))
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok());
        let why = match owner {
            Some(pid) if alive(pid) => continue,
            Some(pid) => format!("left by an interrupted run (process {pid} has ended)"),
            None => "left by an interrupted run (no owner recorded)".to_string(),
        };
        let jobs = finished_jobs(&path);
        if jobs > 0 {
            cleaned.push((
                path,
                format!(
                    "kept: {why}, with {jobs} finished job(s); `shoplab run … --resume` continues it"
                ),
            ));
        } else if fs::remove_dir_all(&path).is_ok() {
            cleaned.push((path, format!("removed: {why}")));
        }
    }
    cleaned.sort();
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_unique_and_stale_partials_are_cleaned() {
        let tmp = tempfile::tempdir().unwrap();
        let parent = tmp.path();
        // An existing run folder is never reused, nor touched.
        let earlier = parent.join("20260101-000000");
        std::fs::create_dir(&earlier).unwrap();
        std::fs::write(earlier.join("episodes.csv"), "earlier run").unwrap();
        let first = claim(parent, "20260101-000000").unwrap();
        assert_eq!(first.id, "20260101-000000-2");
        step(|| std::fs::write(first.staging.join("a.csv"), "x").unwrap());
        // A second claim in the same second takes the next id.
        let second = claim(parent, "20260101-000000").unwrap();
        assert_eq!(second.id, "20260101-000000-3");
        abandon(&second);
        assert!(!second.staging.exists());
        publish(&first).unwrap();
        assert!(first.dir.join("a.csv").is_file() && !first.dir.join(OWNER_FILE).exists());
        // Partial folders of ended processes (and without owners) go; one
        // of a live process stays.
        let dead = parent.join(".20260101-000001.partial");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join(OWNER_FILE), u32::MAX.to_string()).unwrap();
        let orphan = parent.join(".20260101-000002.partial");
        std::fs::create_dir(&orphan).unwrap();
        let live = parent.join(".20260101-000003.partial");
        std::fs::create_dir(&live).unwrap();
        std::fs::write(live.join(OWNER_FILE), std::process::id().to_string()).unwrap();
        let cleaned = clean_stale(parent);
        let paths: Vec<&PathBuf> = cleaned.iter().map(|(p, _)| p).collect();
        assert_eq!(paths, vec![&dead, &orphan], "{cleaned:?}");
        assert!(live.exists() && first.dir.exists());
        let kept = std::fs::read_to_string(earlier.join("episodes.csv")).unwrap();
        assert_eq!(kept, "earlier run");
    }
}

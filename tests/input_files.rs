//! Inputs are read only if they are regular files under a size limit:
//! devices, named pipes, directories and links to them are refused at once,
//! naming the path and what it is, as scenario files and as catalogs.
//!
//! Guards issue #11 (nothing hung, nothing lost), class 2.

mod common;

use common::{TempDir, assert_names, shoplab_within};

/// Refused quickly, with one line naming the path and what it is.
fn refused_quickly(args: &[&str], parts: &[&str]) {
    let out = shoplab_within(args, 20);
    assert!(!out.status.success(), "{args:?} was accepted");
    let message = String::from_utf8_lossy(&out.stderr);
    assert_names(&message, parts);
}

#[cfg(unix)]
#[test]
fn scenario_files_must_be_regular_files() {
    let tmp = TempDir::new("inputs");
    let link = tmp.path().join("zero.toml");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let link = link.to_str().unwrap();
    for command in ["validate", "run", "check"] {
        refused_quickly(
            &[command, "/dev/zero"],
            &["/dev/zero", "is a device, not a regular file"],
        );
        refused_quickly(&[command, link], &[link, "is a device, not a regular file"]);
    }
    refused_quickly(
        &["validate", tmp.path().to_str().unwrap()],
        &["is a directory, not a regular file"],
    );
    let fifo = tmp.path().join("pipe.toml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        refused_quickly(
            &["run", fifo.to_str().unwrap()],
            &["pipe.toml", "is a named pipe, not a regular file"],
        );
    }
    // A run folder whose resolved scenario is a link to /dev/zero: refused
    // by verification (which `reproduce` runs first), never read; without
    // a manifest, the missing manifest is named.
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::os::unix::fs::symlink("/dev/zero", run.join("scenario.toml")).unwrap();
    refused_quickly(
        &["reproduce", run.to_str().unwrap()],
        &["manifest.json", "cannot be read"],
    );
    std::fs::write(
        run.join("manifest.json"),
        r#"{"csv_files": [], "checkpoints": [], "charts": []}"#,
    )
    .unwrap();
    for command in ["verify", "reproduce"] {
        refused_quickly(
            &[command, run.to_str().unwrap()],
            &[
                "unreadable scenario.toml",
                "is a device, not a regular file",
            ],
        );
    }
}

#[cfg(unix)]
#[test]
fn catalogs_must_be_regular_files() {
    let tmp = TempDir::new("catalogs");
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/recommendation.toml"),
    )
    .unwrap();
    for device in ["/dev/urandom", "/dev/zero"] {
        let file = tmp.path().join("urandom.toml");
        std::fs::write(
            &file,
            text.replace(
                "[recommendation.catalog]",
                &format!("[recommendation.catalog]\npath = \"{device}\""),
            ),
        )
        .unwrap();
        refused_quickly(
            &["validate", file.to_str().unwrap()],
            &["recommendation.catalog.path` (line", device, "is a device"],
        );
    }
}

//! `shoplab report` in a real headless browser: the page of a run folder
//! (and of a sweep's) loads in Chromium, every chart the manifest lists
//! draws with a size, every table has rows, and a screenshot is kept in
//! `target/test-output/` — not a blank page.
//!
//! Chromium comes from the OS packages (`scripts/test` installs it when
//! missing); `SHOPLAB_BROWSER` names another Chromium-family binary.
//!
//! Guards issue #16 (a browser report).

mod common;

use common::{TempDir, assert_success, run_dirs, shoplab};
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// The headless browser: `SHOPLAB_BROWSER`, else Chromium on the PATH.
fn browser() -> PathBuf {
    if let Some(b) = std::env::var_os("SHOPLAB_BROWSER") {
        return PathBuf::from(b);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "no Chromium to test the HTML report in: scripts/test installs it \
         (apt-get install chromium), or set SHOPLAB_BROWSER to a Chromium binary"
    );
}

/// Runs the browser headless on `page` with `args`, within a minute; its
/// stdout and stderr (through files: a pipe nobody reads while waiting
/// would fill and stall it).
fn headless(page: &Path, args: &[&str]) -> (String, String) {
    let profile = TempDir::new("chromium-profile");
    let stdout = profile.path().join("stdout");
    let stderr = profile.path().join("stderr");
    let mut child = Command::new(browser())
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::from(std::fs::File::create(&stdout).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()))
        .spawn()
        .expect("the browser starts");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the browser did not finish in a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    (read(&stdout), read(&stderr))
}

/// Writes the report of `dir`, loads it, checks what rendered, and keeps a
/// screenshot as `target/test-output/<label>.png`.
fn check_in_browser(dir: &Path, out: &Path, label: &str) {
    let written = shoplab(
        &[
            "report",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_success(&written);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let svgs = manifest["charts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.as_str().unwrap().ends_with(".svg"))
        .count();
    assert!(svgs >= 3, "{svgs} charts");
    let (dom, _) = headless(out, &["--dump-dom"]);
    let start = dom.find("data-render=\"").expect("the page's check ran") + 13;
    let json = dom[start..start + dom[start..].find('"').unwrap()].replace("&quot;", "\"");
    let render: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(render["charts"], svgs, "{render}");
    assert_eq!(render["charts_drawn"], svgs, "{render}");
    assert!(render["tables"].as_u64().unwrap() >= 2, "{render}");
    assert_eq!(render["tables_filled"], render["tables"], "{render}");
    // The screenshot, kept for people, is not a blank page.
    let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-output");
    std::fs::create_dir_all(&keep).unwrap();
    let shot = keep.join(format!("{label}.png"));
    let _ = std::fs::remove_file(&shot);
    let (_, said) = headless(
        out,
        &[
            "--window-size=1300,2600",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    assert!(shot.is_file(), "{said}");
    let image = image::open(&shot).unwrap().to_rgb8();
    assert_eq!(image.dimensions(), (1300, 2600));
    let inked = image
        .pixels()
        .filter(|p| p.0.iter().any(|&c| c < 200))
        .count();
    let share = inked as f64 / (1300.0 * 2600.0);
    assert!(share > 0.02, "the screenshot is {:.1}% ink", 100.0 * share);
    println!("screenshot of the report: {}", shot.display());
}

fn with_evaluations(name: &str) -> String {
    common::small_pricing(name, 120).replace(
        "curve_points = 10",
        "curve_points = 10\neval_episodes = 20\neval_every = 60",
    )
}

#[test]
fn the_report_renders_in_chromium() {
    let tmp = TempDir::new("report");
    let file = tmp.path().join("reported.toml");
    std::fs::write(&file, with_evaluations("reported")).unwrap();
    let results = tmp.path().join("results");
    assert_success(&common::run_scenario(&file, &results, &[]));
    let dir = &run_dirs(&results, "reported")[0];
    let out = tmp.path().join("report.html");
    check_in_browser(dir, &out, "report-run");
    let page = std::fs::read_to_string(&out).unwrap();
    for part in [
        "<svg",
        "Summary",
        "Greedy evaluations",
        "[pricing]",
        "shoplab_version",
        "machine",
    ] {
        assert!(page.contains(part), "{part} missing from the page");
    }
    // Self-contained: nothing is fetched.
    assert!(!page.contains("src=\"http") && !page.contains("<link"));
    // Never over an existing file; a tampered folder gets no report.
    let again = shoplab(
        &[
            "report",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    std::fs::write(dir.join("summary.csv"), "scenario,policy\nx,<script>\n").unwrap();
    let refused = shoplab(
        &[
            "report",
            dir.to_str().unwrap(),
            "--out",
            tmp.path().join("other.html").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("does not match its manifest"));
}

#[test]
fn a_sweeps_report_renders_in_chromium() {
    let tmp = TempDir::new("sweep-report");
    let file = tmp.path().join("swept.toml");
    let text = with_evaluations("swept")
        + "\n[sweep]\n[sweep.parameters]\n\"pricing.inventory\" = [8, 12]\n";
    std::fs::write(&file, text).unwrap();
    let results = tmp.path().join("results");
    assert_success(&common::run_scenario(&file, &results, &[]));
    let dir = &run_dirs(&results, "swept")[0];
    let out = tmp.path().join("sweep.html");
    check_in_browser(dir, &out, "report-sweep");
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(page.contains("Sweep: final score") && page.contains("configs/c02"));
}

//! `shoplab report`: a run folder as one self-contained HTML page.
//!
//! The page holds everything inline — the charts as SVG, the summary and
//! evaluation tables, the scenario, the manifest, the machine and version —
//! so it opens offline, from anywhere, as one file. The run folder is
//! verified against its manifest first, and a chart is only inlined when it
//! is plain SVG (no script, no foreign objects, no links out), so a tampered
//! folder cannot put code into the page. A short script at the end of the
//! page checks, in the browser, that every chart and table has drawn with a
//! size, and records the count on the page (`data-render` on `<html>`),
//! which is what the headless-browser test reads.

use crate::{HarnessError, SCENARIO_FILE, verify::MANIFEST_FILE};
use std::{collections::BTreeMap, fmt::Write, path::Path};

/// Rows a table of the page shows at most (the CSV has them all).
const MAX_ROWS: usize = 500;

/// A sweep's configurations whose summaries the page shows.
const MAX_CONFIG_TABLES: usize = 50;

/// The HTML page of run folder `dir`.
pub fn render(dir: &Path) -> Result<String, HarnessError> {
    let refuse = |reason: String| HarnessError::Manifest {
        path: dir.to_path_buf(),
        reason,
    };
    let found = crate::verify::verify(dir)?;
    if !found.ok() {
        return Err(refuse(format!(
            "the run folder does not match its manifest ({}); the report shows only verified folders",
            found.problems.join("; ")
        )));
    }
    let read = |name: &str| {
        shoplab_env::input::read_text_file(&dir.join(name), shoplab_env::input::MAX_DATA_BYTES)
            .map_err(|e| refuse(format!("{name}: {e}")))
    };
    let manifest_text = read(MANIFEST_FILE)?;
    let manifest: serde_json::Value = serde_json::from_str(&manifest_text)
        .map_err(|e| refuse(format!("{MANIFEST_FILE}: {e}")))?;
    let field = |key: &str| match &manifest[key] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "not recorded".into(),
        other => other.to_string(),
    };
    let scenario_text = read(SCENARIO_FILE)?;
    let description = scenario_text
        .parse::<toml::Table>()
        .ok()
        .and_then(|t| {
            t.get("description")
                .and_then(|d| d.as_str())
                .map(String::from)
        })
        .unwrap_or_default();
    let name = field("scenario");
    let run_id = field("run_id");
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>shoplab report: {} {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&name),
        escape(&run_id)
    );
    let _ = write!(
        page,
        "<header><h1>{}</h1><p>{}</p>\n<dl>",
        escape(&name),
        escape(&description)
    );
    let machine = match &manifest["machine"] {
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}: {}",
                    v.as_str().map_or_else(|| v.to_string(), String::from)
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => "not recorded (a run from before machines were recorded)".into(),
    };
    for (label, value) in [
        ("run", run_id.clone()),
        ("created (UTC)", field("created_utc")),
        ("shoplab", field("shoplab_version")),
        ("threads", field("threads")),
        ("run seconds", field("run_seconds")),
        ("machine", machine),
        ("seeds", field("seeds")),
        ("episodes per run", field("episodes")),
        ("reproduce", field("reproduce")),
    ] {
        let _ = write!(
            page,
            "<dt>{}</dt><dd>{}</dd>",
            escape(label),
            escape(&value)
        );
    }
    page.push_str("</dl></header>\n<nav>");
    let csv_names: Vec<String> = manifest["csv_files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .filter_map(|f| f["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let has = |n: &str| csv_names.iter().any(|c| c == n);
    let mut sections: Vec<(&str, &str)> = Vec::new();
    if has("sweep_summary.csv") {
        sections.push(("sweep", "Sweep"));
    }
    if has("summary.csv") {
        sections.push(("summary", "Summary"));
    }
    if has("evaluations.csv") {
        sections.push(("evaluation", "Evaluation"));
    }
    sections.extend([
        ("charts", "Charts"),
        ("scenario", "Scenario"),
        ("manifest", "Manifest"),
    ]);
    for (id, title) in &sections {
        let _ = write!(page, "<a href=\"#{id}\">{title}</a> ");
    }
    page.push_str("</nav>\n<main>\n");
    let warnings: Vec<String> = ["failures", "warnings"]
        .iter()
        .flat_map(|k| manifest[*k].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    if !warnings.is_empty() {
        page.push_str("<section class=\"warnings\"><h2>Failures and warnings</h2><ul>");
        for w in &warnings {
            let _ = write!(page, "<li>{}</li>", escape(w));
        }
        page.push_str("</ul></section>\n");
    }
    if has("sweep_summary.csv") {
        let (header, rows) = csv_table(&read("sweep_summary.csv")?)?;
        section_table(
            &mut page,
            "sweep",
            "Sweep: final score per configuration and policy",
            &header,
            &rows,
        );
    }
    // A sweep's configurations, each with its own summary.
    let config_summaries: Vec<&String> = csv_names
        .iter()
        .filter(|n| n.starts_with("configs/") && n.ends_with("/summary.csv"))
        .collect();
    for name in config_summaries.iter().take(MAX_CONFIG_TABLES) {
        let id = name
            .trim_start_matches("configs/")
            .trim_end_matches("/summary.csv");
        let values = manifest["sweep"]["configurations"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["id"] == id))
            .map(|c| c["values"].to_string())
            .unwrap_or_default();
        let (header, rows) = csv_table(&read(name)?)?;
        let title = format!("Configuration {id} {values}: final performance over seeds");
        section_table(&mut page, &format!("summary-{id}"), &title, &header, &rows);
    }
    if config_summaries.len() > MAX_CONFIG_TABLES {
        let _ = write!(
            page,
            "<p>The summaries of the first {MAX_CONFIG_TABLES} of {} configurations; \
             the others are in their folders under configs/.</p>",
            config_summaries.len()
        );
    }
    if has("summary.csv") {
        let (header, rows) = csv_table(&read("summary.csv")?)?;
        section_table(
            &mut page,
            "summary",
            "Summary: final performance over seeds",
            &header,
            &rows,
        );
    }
    if has("evaluations.csv") {
        let (header, rows) = evaluation_table(&read("evaluations.csv")?)?;
        section_table(
            &mut page,
            "evaluation",
            "Greedy evaluations: means over seeds and episodes at each point",
            &header,
            &rows,
        );
    }
    page.push_str("<section id=\"charts\"><h2>Charts</h2>\n");
    let charts: Vec<String> = manifest["charts"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|v| v.as_str())
                .filter(|n| n.ends_with(".svg"))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    // The run's own charts (a sweep's sensitivity) before its configurations'.
    let mut charts = charts;
    charts.sort_by_key(|c| c.contains('/'));
    let mut group = String::new();
    for chart in &charts {
        let folder = chart.rsplit_once('/').map_or("", |(f, _)| f).to_string();
        if folder != group {
            let _ = writeln!(page, "<h3>{}</h3>", escape(&folder));
            group = folder;
        }
        let svg = read(chart)?;
        let svg = plain_svg(&svg).map_err(|why| refuse(format!("{chart}: {why}")))?;
        let _ = writeln!(
            page,
            "<figure class=\"chart\" data-name=\"{}\">{svg}<figcaption>{}</figcaption></figure>",
            escape(chart),
            escape(chart)
        );
    }
    page.push_str("</section>\n");
    let _ = write!(
        page,
        "<section id=\"scenario\"><h2>Scenario</h2><pre>{}</pre></section>\n\
         <section id=\"manifest\"><h2>Manifest</h2><pre>{}</pre></section>\n",
        escape(&scenario_text),
        escape(&manifest_text)
    );
    let _ = write!(
        page,
        "</main>\n<script>{CHECK}</script>\n</body>\n</html>\n"
    );
    Ok(page)
}

/// A table section.
fn section_table(
    page: &mut String,
    id: &str,
    title: &str,
    header: &[String],
    rows: &[Vec<String>],
) {
    let _ = write!(page, "<section id=\"{id}\"><h2>{}</h2>", escape(title));
    if rows.len() > MAX_ROWS {
        let _ = write!(
            page,
            "<p>The first {MAX_ROWS} of {} rows; the CSV file has them all.</p>",
            rows.len()
        );
    }
    page.push_str("<div class=\"scroll\"><table class=\"data\"><thead><tr>");
    for h in header {
        let _ = write!(page, "<th>{}</th>", escape(h));
    }
    page.push_str("</tr></thead><tbody>");
    for row in rows.iter().take(MAX_ROWS) {
        page.push_str("<tr>");
        for cell in row {
            let shown = number(cell);
            let numeric = cell.parse::<f64>().is_ok();
            let class = if numeric { " class=\"num\"" } else { "" };
            let _ = write!(
                page,
                "<td{class} title=\"{}\">{}</td>",
                escape(cell),
                escape(&shown)
            );
        }
        page.push_str("</tr>");
    }
    page.push_str("</tbody></table></div></section>\n");
}

type Table = (Vec<String>, Vec<Vec<String>>);

fn csv_table(text: &str) -> Result<Table, HarnessError> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers()?.iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| r.map(|r| r.iter().map(String::from).collect()))
        .collect::<Result<_, _>>()?;
    Ok((header, rows))
}

/// `evaluations.csv` (one row per evaluation episode) summed up per policy
/// and evaluation point: seeds, mean return and score, and — where the
/// oracle and the baseline played the same episodes — their mean scores
/// and the policy's paired share of the oracle's.
fn evaluation_table(text: &str) -> Result<Table, HarnessError> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers()?.iter().map(String::from).collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(policy), Some(seed), Some(after), Some(ret), Some(score)) = (
        col("policy"),
        col("seed"),
        col("after_episodes"),
        col("return"),
        col("score"),
    ) else {
        return Ok((vec!["evaluations.csv has other columns".into()], Vec::new()));
    };
    let (oracle, baseline) = (col("oracle_score"), col("baseline_score"));
    #[derive(Default)]
    struct Sums {
        seeds: std::collections::BTreeSet<String>,
        n: f64,
        ret: f64,
        score: f64,
        oracle: f64,
        baseline: f64,
    }
    let mut order: Vec<(String, u64)> = Vec::new();
    let mut sums: BTreeMap<(String, u64), Sums> = BTreeMap::new();
    let value = |r: &csv::StringRecord, i: Option<usize>| {
        i.and_then(|i| r.get(i)).and_then(|v| v.parse::<f64>().ok())
    };
    for record in reader.records() {
        let r = record?;
        let key = (
            r.get(policy).unwrap_or("").to_string(),
            r.get(after).and_then(|v| v.parse().ok()).unwrap_or(0),
        );
        if !sums.contains_key(&key) {
            order.push(key.clone());
        }
        let s = sums.entry(key).or_default();
        s.seeds.insert(r.get(seed).unwrap_or("").to_string());
        s.n += 1.0;
        s.ret += value(&r, Some(ret)).unwrap_or(f64::NAN);
        s.score += value(&r, Some(score)).unwrap_or(f64::NAN);
        s.oracle += value(&r, oracle).unwrap_or(f64::NAN);
        s.baseline += value(&r, baseline).unwrap_or(f64::NAN);
    }
    let out_header = [
        "policy",
        "after_episodes",
        "seeds",
        "episodes",
        "mean_return",
        "mean_score",
        "oracle_mean_score",
        "baseline_mean_score",
        "paired_pct_of_oracle",
    ]
    .map(String::from)
    .to_vec();
    let cell = |v: f64| {
        if v.is_finite() {
            v.to_string()
        } else {
            String::new()
        }
    };
    let rows = order
        .iter()
        .map(|key| {
            let s = &sums[key];
            vec![
                key.0.clone(),
                key.1.to_string(),
                s.seeds.len().to_string(),
                s.n.to_string(),
                cell(s.ret / s.n),
                cell(s.score / s.n),
                cell(s.oracle / s.n),
                cell(s.baseline / s.n),
                cell(100.0 * s.score / s.oracle),
            ]
        })
        .collect();
    Ok((out_header, rows))
}

/// A number cell shown with five significant digits (integers as they are).
fn number(cell: &str) -> String {
    match cell.parse::<f64>() {
        Ok(v) if v.is_finite() && cell.contains(['.', 'e', 'E']) => {
            if v == 0.0 {
                "0".into()
            } else if (1e-3..1e7).contains(&v.abs()) {
                let digits = (4 - v.abs().log10().floor() as i32).clamp(0, 8) as usize;
                format!("{v:.digits$}")
            } else {
                format!("{v:.4e}")
            }
        }
        _ => cell.to_string(),
    }
}

/// The chart's SVG element, refused unless it is plain drawing: no script,
/// no event handler, no foreign object, no reference to another resource.
fn plain_svg(svg: &str) -> Result<&str, String> {
    let start = svg.find("<svg").ok_or("not an SVG file")?;
    let body = &svg[start..];
    let lower = body.to_ascii_lowercase();
    for banned in [
        "<script",
        "<foreignobject",
        "javascript:",
        "href",
        "<iframe",
        "<image",
        "@import",
        "url(",
    ] {
        if lower.contains(banned) {
            return Err(format!("holds `{banned}`: not a chart shoplab drew"));
        }
    }
    let onattr = lower
        .split(|c: char| c.is_whitespace())
        .any(|w| w.starts_with("on") && w.contains('='));
    if onattr {
        return Err("holds an event handler: not a chart shoplab drew".into());
    }
    Ok(body.trim_end())
}

/// Text as HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1280px; padding: 0 1.5em 3em; color: #1b1b1b; }
header dl { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; font-size: .92em; }
header dt { font-weight: 600; }
header dd { margin: 0; word-break: break-all; }
nav { position: sticky; top: 0; background: #fff; padding: .5em 0; border-bottom: 1px solid #ddd; }
nav a { margin-right: 1em; }
section { margin-top: 2em; }
.scroll { overflow-x: auto; }
table.data { border-collapse: collapse; font-size: .85em; }
table.data th, table.data td { border: 1px solid #ccc; padding: .25em .5em; white-space: nowrap; }
table.data th { background: #f1f3f5; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure.chart { margin: 1.5em 0; }
figure.chart svg { max-width: 100%; height: auto; display: block; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #555; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; font-size: .85em; }
.warnings { background: #fff4e5; padding: .5em 1em; }
";

/// Checks, in the browser, that every chart and table drew with a size.
const CHECK: &str = "
(function () {
  var charts = document.querySelectorAll('figure.chart svg');
  var tables = document.querySelectorAll('table.data');
  var drawn = 0, filled = 0, missing = [];
  charts.forEach(function (svg) {
    var box = svg.getBoundingClientRect();
    var inner = svg.getBBox();
    if (box.width > 100 && box.height > 100 && inner.width > 0 && svg.querySelectorAll('text').length > 0) {
      drawn += 1;
    } else {
      missing.push(svg.parentNode.getAttribute('data-name'));
    }
  });
  tables.forEach(function (t) {
    if (t.getBoundingClientRect().height > 0 && t.tBodies[0].rows.length > 0) { filled += 1; }
  });
  document.documentElement.setAttribute('data-render', JSON.stringify({
    charts: charts.length, charts_drawn: drawn, tables: tables.length, tables_filled: filled, missing: missing
  }));
})();
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_with_code_or_links_are_refused() {
        let ok = "<?xml?>\n<svg width=\"10\"><rect x=\"0\"/><text>a &lt; b</text></svg>\n";
        assert!(plain_svg(ok).unwrap().starts_with("<svg"));
        for bad in [
            "<svg><script>alert(1)</script></svg>",
            "<svg><a href=\"https://x\">x</a></svg>",
            "<svg><rect onload=\"x()\"/></svg>",
            "<svg><foreignObject/></svg>",
            "<svg><image xlink:href=\"x.png\"/></svg>",
            "<html>no svg</html>",
        ] {
            assert!(plain_svg(bad).is_err(), "{bad}");
        }
        assert_eq!(
            escape("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
        assert_eq!(number("85.98655000000002"), "85.987");
        assert_eq!(number("0.000012345"), "1.2345e-5");
        assert_eq!(number("5000"), "5000");
        assert_eq!(number("fixed_price_3"), "fixed_price_3");
    }

    #[test]
    fn evaluations_are_summed_per_policy_and_point() {
        let text = "scenario,policy,seed,after_episodes,eval_episode,return,score,regret,oracle_score,baseline_score\n\
                    s,a,1,10,0,1,1,0,2,1\ns,a,1,10,1,3,3,0,2,1\ns,a,2,10,0,2,2,0,4,1\ns,a,1,20,0,4,4,0,4,1\n";
        let (header, rows) = evaluation_table(text).unwrap();
        assert_eq!(header[8], "paired_pct_of_oracle");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][..6], ["a", "10", "2", "3", "2", "2"]);
        // Σ score / Σ oracle = 6 / 8.
        assert_eq!(rows[0][8], "75");
        assert_eq!(rows[1][1], "20");
    }
}

//! Charts of a run, as PNG and SVG: learning curves with confidence bands,
//! regret, final performance with intervals, and learned-policy heatmaps.
//!
//! Text is drawn with DejaVu Sans, shipped with the crate and registered with
//! plotters' `ab_glyph` backend before the first chart, so charts render the
//! same on a machine with no font libraries.

use crate::{
    report::{BaselineValue, Curve, CurvePoint, LearningPoint, PolicyTable, Report},
    stats::Estimate,
};
use plotters::{coord::Shift, prelude::*, style::text_anchor::Pos};
use std::{path::Path, sync::Once};

mod compare;
mod keys;
mod offline;
mod ope;
mod plots;
mod sweep;
pub use compare::ProfileChart;
use keys::*;
pub use ope::{OpeChart, StudyChart};
use plots::*;
pub use sweep::SensitivityChart;

/// Why a chart could not be written: the file and what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// Drawing failed (for PNGs, writing the image is part of drawing).
    #[error("{path}: could not draw the chart: {reason}")]
    Draw {
        /// The chart file.
        path: std::path::PathBuf,
        /// What the drawing library said.
        reason: String,
    },
    /// The SVG file could not be written.
    #[error("{path}: could not write the chart: {source}")]
    Write {
        /// The chart file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The result of drawing one chart; the error is the drawing library's message.
type Drawn = Result<(), String>;

static FONT: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The font is a valid TrueType file shipped with the crate.
            let _ = plotters::style::register_font("sans-serif", style, FONT);
        }
    });
}

/// Distinct colours for up to twenty policies, then repeating (Tableau 10,
/// then its lighter companions).
const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(199, 199, 199),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

const SIZE: (u32, u32) = (1200, 750);

/// The charts of a run.
#[derive(Debug, Clone, Copy)]
enum Chart {
    /// Return per episode, mean and band per policy.
    Reward,
    /// Regret per episode against the oracle.
    Regret,
    /// Final performance with intervals.
    Final,
    /// Greedy action heatmaps of state-dependent policies.
    Tables,
    /// Greedy evaluation return against training episodes.
    Evaluation,
    /// Training loss and mean Q of learners that report them.
    Convergence,
    /// Offline learners' online value against gradient steps.
    Offline,
}

/// The x axis of charts against training episodes.
const EPISODES: &str = "training episode";

/// A report's oracle and baseline levels.
fn references(report: &Report) -> References<'_> {
    References {
        oracle: report
            .optimal_value
            .map(|v| (v, format!("oracle expected return V* = {v:.2}"))),
        baseline: report.baseline.as_ref(),
        lines: &[],
    }
}

/// What a report's regret is measured against: the oracle's expected
/// return where the family solves it, else each episode's hindsight
/// optimum (the best allocation known once the episode is over).
/// Curves of the return by episode titled `title`, with the run's
/// reference levels and, when asked for, each seed's trace.
fn return_curves<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    report: &Report,
    series: &[Curve],
    title: &str,
) -> Drawn {
    let style = CurveStyle {
        seed_traces: report.seed_traces,
        ..CurveStyle::default()
    };
    let axes = (title, EPISODES, report.return_label);
    curves(area, series, axes, references(report), style)
}

fn reference_name(report: &Report) -> &'static str {
    if report.optimal_value.is_some() {
        "the oracle's expected return V*"
    } else {
        "the hindsight optimum"
    }
}

impl Chart {
    fn file_stem(self) -> &'static str {
        match self {
            Self::Reward => "reward_curve",
            Self::Regret => "regret_curve",
            Self::Final => "final_comparison",
            Self::Tables => "policy_tables",
            Self::Evaluation => "evaluation_curve",
            Self::Convergence => "convergence",
            Self::Offline => "offline_curve",
        }
    }

    fn size(self, report: &Report) -> (u32, u32) {
        // Past MAX_OVERLAID policies, curves come as small multiples, four
        // to a row.
        let faceted = |curves: &[Curve]| {
            let n = curves.iter().filter(|c| !c.points.is_empty()).count();
            if n > MAX_OVERLAID {
                (SIZE.0 + KEY_WIDTH, 70 + 240 * n.div_ceil(4) as u32)
            } else {
                (SIZE.0 + KEY_WIDTH, SIZE.1)
            }
        };
        match self {
            Self::Tables => (520 * report.tables.len() as u32 + 140, 620),
            Self::Convergence => {
                let n = report
                    .learning
                    .iter()
                    .filter(|(_, p)| !p.is_empty())
                    .count();
                let half = if n > MAX_OVERLAID {
                    70 + 240 * n.div_ceil(4) as u32
                } else {
                    550
                };
                (SIZE.0 + KEY_WIDTH, 2 * half)
            }
            Self::Reward | Self::Regret => faceted(&report.curves),
            Self::Evaluation => faceted(&report.eval_curves),
            Self::Offline => (SIZE.0 + KEY_WIDTH, SIZE.1),
            Self::Final => (SIZE.0 + KEY_WIDTH, SIZE.1),
        }
    }

    fn render<DB: DrawingBackend>(self, report: &Report, area: DrawingArea<DB, Shift>) -> Drawn {
        let level = format!("{:.0}%", report.confidence * 100.0);
        let name = &report.scenario;
        match self {
            Self::Reward => return_curves(
                area,
                report,
                &report.curves,
                &format!(
                    "{name}: {} (mean over seeds, {level} band)",
                    report.return_label
                ),
            ),
            Self::Regret => curves(
                area,
                &report.curves,
                (
                    &format!(
                        "{name}: regret per episode vs {} ({level} band)",
                        reference_name(report)
                    ),
                    EPISODES,
                    &format!(
                        "regret: {} − {}",
                        if report.optimal_value.is_some() {
                            "V*"
                        } else {
                            "hindsight optimum"
                        },
                        report.return_label
                    ),
                ),
                References {
                    oracle: Some((0.0, format!("zero regret ({})", reference_name(report)))),
                    ..References::default()
                },
                CurveStyle {
                    regret: true,
                    ..CurveStyle::default()
                },
            ),
            Self::Final => final_comparison(
                area,
                report,
                &format!(
                    "{name}: final performance (last episodes, mean over seeds, {level} interval)"
                ),
            ),
            Self::Tables => heatmaps(
                area,
                &report.tables,
                &format!("{name}: greedy action of each policy by state"),
            ),
            Self::Evaluation => return_curves(
                area,
                report,
                &report.eval_curves,
                &format!(
                    "{name}: greedy evaluation during training (mean over seeds, {level} band)"
                ),
            ),
            Self::Offline => offline::curve(report, area),
            Self::Convergence => {
                area.fill(&WHITE).map_err(err)?;
                let half = area.dim_in_pixel().1 / 2;
                let (top, bottom) = area.split_vertically(half);
                let as_curves = |pick: fn(&LearningPoint) -> Estimate| -> Vec<Curve> {
                    report
                        .learning
                        .iter()
                        .map(|(name, points)| Curve {
                            name: name.clone(),
                            points: points
                                .iter()
                                .map(|p| CurvePoint {
                                    episode_start: p.episode_start,
                                    episode_end: p.episode_end,
                                    ret: pick(p),
                                    regret: None,
                                    per_seed: Vec::new(),
                                })
                                .collect(),
                        })
                        .collect()
                };
                curves(
                    top,
                    &as_curves(|p| p.loss),
                    (
                        &format!(
                            "{name}: training loss (mean over seeds, {level} band; log scale)"
                        ),
                        EPISODES,
                        "loss per update (log scale; DQN: Huber, reward units)",
                    ),
                    References::default(),
                    CurveStyle {
                        log_y: true,
                        ..CurveStyle::default()
                    },
                )?;
                curves(
                    bottom,
                    &as_curves(|p| p.mean_q),
                    (
                        &format!("{name}: mean predicted Q of sampled pairs ({level} band)"),
                        EPISODES,
                        "mean Q (reward units)",
                    ),
                    References::default(),
                    CurveStyle::default(),
                )
            }
        }
    }
}

/// Draws every chart of `report` into `dir`, as `<name>.png` and `<name>.svg`;
/// returns the file names written.
pub fn draw_all(report: &Report, dir: &Path) -> Result<Vec<String>, ChartError> {
    register_font();
    let mut charts = vec![Chart::Reward];
    let has_regret = report
        .curves
        .iter()
        .any(|c| c.points.iter().any(|p| p.regret.is_some()));
    if has_regret {
        charts.push(Chart::Regret);
    }
    charts.push(Chart::Final);
    if !report.tables.is_empty() {
        charts.push(Chart::Tables);
    }
    if report.eval_curves.iter().any(|c| !c.points.is_empty()) {
        charts.push(Chart::Evaluation);
    }
    if report.learning.iter().any(|(_, points)| !points.is_empty()) {
        charts.push(Chart::Convergence);
    }
    if report.offline.is_some() {
        charts.push(Chart::Offline);
    }
    let mut written = Vec::new();
    for chart in charts {
        let size = chart.size(report);
        written.extend(save(&(chart, report), size, dir, chart.file_stem())?);
    }
    if let Some(section) = &report.offline
        && let Some(chart) = offline::estimates(report, section)
    {
        written.extend(save(&chart, SIZE, dir, "offline_ope")?);
    }
    Ok(written)
}

/// Something drawn on any backend: a chart written as PNG and SVG.
trait Draw {
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> Drawn;
}

impl Draw for (Chart, &Report) {
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> Drawn {
        self.0.render(self.1, area)
    }
}

/// Draws `chart` at `size` into `dir` as `<stem>.png` and `<stem>.svg`;
/// returns the two file names.
fn save(
    chart: &impl Draw,
    size: (u32, u32),
    dir: &Path,
    stem: &str,
) -> Result<Vec<String>, ChartError> {
    register_font();
    let png = format!("{stem}.png");
    let drawn = |path: &Path| {
        let path = path.to_path_buf();
        move |reason| ChartError::Draw { path, reason }
    };
    let png_path = dir.join(&png);
    // Drawn in memory and encoded here, so a failed write (a full disk) is
    // reported as an I/O error naming the file.
    let mut pixels = vec![0u8; size.0 as usize * size.1 as usize * 3];
    chart
        .draw(BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area())
        .map_err(drawn(&png_path))?;
    let mut encoded = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut encoded),
        &pixels,
        size.0,
        size.1,
        image::ColorType::Rgb8,
    )
    .map_err(|e| ChartError::Draw {
        path: png_path.clone(),
        reason: e.to_string(),
    })?;
    std::fs::write(&png_path, encoded).map_err(|source| ChartError::Write {
        path: png_path.clone(),
        source,
    })?;
    let mut svg = String::new();
    let svg_name = format!("{stem}.svg");
    let svg_path = dir.join(&svg_name);
    chart
        .draw(SVGBackend::with_string(&mut svg, size).into_drawing_area())
        .map_err(drawn(&svg_path))?;
    std::fs::write(&svg_path, svg).map_err(|source| ChartError::Write {
        path: svg_path.clone(),
        source,
    })?;
    Ok(vec![png, svg_name])
}

//! Charts of a run, as PNG and SVG: learning curves with confidence bands,
//! regret, final performance with intervals, and learned-policy heatmaps.
//!
//! Text is drawn with DejaVu Sans, shipped with the crate and registered with
//! plotters' `ab_glyph` backend before the first chart, so charts render the
//! same on a machine with no font libraries.

use crate::{
    report::{Curve, CurvePoint, LearningPoint, PolicyTable, Report},
    stats::Estimate,
};
use plotters::{
    coord::{Shift, types::RangedCoordf64},
    prelude::*,
    style::text_anchor::Pos,
};
use std::{path::Path, sync::Once};

/// What went wrong while drawing a chart.
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

static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
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
        }
    }

    fn size(self, report: &Report) -> (u32, u32) {
        match self {
            Self::Tables => (520 * report.tables.len() as u32 + 140, 620),
            Self::Convergence => (SIZE.0, 1100),
            _ => SIZE,
        }
    }

    fn render<DB: DrawingBackend>(self, report: &Report, area: DrawingArea<DB, Shift>) -> Drawn {
        let level = format!("{:.0}%", report.confidence * 100.0);
        let name = &report.scenario;
        match self {
            Self::Reward => curves(
                area,
                &report.curves,
                &format!(
                    "{name}: {} (mean over seeds, {level} bootstrap band)",
                    report.return_label
                ),
                report.return_label,
                report.optimal_value,
                false,
            ),
            Self::Regret => curves(
                area,
                &report.curves,
                &format!(
                    "{name}: regret per episode vs the oracle's expected return ({level} band)"
                ),
                "regret (V* − return)",
                Some(0.0),
                true,
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
            Self::Evaluation => curves(
                area,
                &report.eval_curves,
                &format!(
                    "{name}: greedy evaluation during training (mean over seeds, {level} band)"
                ),
                report.return_label,
                report.optimal_value,
                false,
            ),
            Self::Convergence => {
                area.fill(&WHITE).map_err(err)?;
                let (top, bottom) = area.split_vertically(550);
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
                                })
                                .collect(),
                        })
                        .collect()
                };
                curves(
                    top,
                    &as_curves(|p| p.loss),
                    &format!("{name}: training loss (mean over seeds, {level} band)"),
                    "mean Huber loss per update",
                    None,
                    false,
                )?;
                curves(
                    bottom,
                    &as_curves(|p| p.mean_q),
                    &format!("{name}: mean predicted Q of replayed pairs ({level} band)"),
                    "mean Q (reward units)",
                    None,
                    false,
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
    let mut written = Vec::new();
    for chart in charts {
        let size = chart.size(report);
        let png = format!("{}.png", chart.file_stem());
        let drawn = |path: &Path| {
            let path = path.to_path_buf();
            move |reason| ChartError::Draw { path, reason }
        };
        let png_path = dir.join(&png);
        chart
            .render(
                report,
                BitMapBackend::new(&png_path, size).into_drawing_area(),
            )
            .map_err(drawn(&png_path))?;
        let mut svg = String::new();
        let svg_name = format!("{}.svg", chart.file_stem());
        let svg_path = dir.join(&svg_name);
        chart
            .render(
                report,
                SVGBackend::with_string(&mut svg, size).into_drawing_area(),
            )
            .map_err(drawn(&svg_path))?;
        std::fs::write(&svg_path, svg).map_err(|source| ChartError::Write {
            path: svg_path.clone(),
            source,
        })?;
        written.push(png);
        written.push(svg_name);
    }
    Ok(written)
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// A chart with `f64` axes.
type Chart2d<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A dashed black line from `from` to `to`, in the legend as `label`.
fn reference_line<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart2d<'a, DB>,
    from: (f64, f64),
    to: (f64, f64),
    label: String,
) -> Drawn {
    chart
        .draw_series(DashedLineSeries::new(
            vec![from, to],
            10,
            6,
            BLACK.stroke_width(2),
        ))
        .map_err(err)?
        .label(label)
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    Ok(())
}

/// The legend box, at `position`.
fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart2d<'a, DB>,
    position: SeriesLabelPosition,
) -> Drawn {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(err)
}

/// Mean ± band curves, one per policy, with an optional reference line.
fn curves<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    curves: &[Curve],
    title: &str,
    y_label: &str,
    reference: Option<f64>,
    regret: bool,
) -> Drawn {
    area.fill(&WHITE).map_err(err)?;
    // Regret charts show only the policies whose regret is known.
    let shown = |c: &Curve| !c.points.is_empty() && (!regret || c.points[0].regret.is_some());
    let pick = |p: &crate::report::CurvePoint| match (regret, p.regret) {
        (true, Some(r)) => r,
        _ => p.ret,
    };
    let points = curves
        .iter()
        .filter(|c| shown(c))
        .flat_map(|c| c.points.iter());
    let x_max = points.clone().map(|p| p.episode_end).max().unwrap_or(1) as f64;
    let (mut lo, mut hi) = points
        .clone()
        .map(pick)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), e| {
            (l.min(e.low), h.max(e.high))
        });
    if let Some(r) = reference {
        lo = lo.min(r);
        hi = hi.max(r);
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max, (lo - pad)..(hi + pad))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| format!("{x:.0}"))
        .x_desc("training episode")
        .y_desc(y_label)
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    for (i, c) in curves.iter().enumerate() {
        if !shown(c) {
            continue;
        }
        let mid = |p: &crate::report::CurvePoint| f64::from(p.episode_start + p.episode_end) / 2.0;
        let band: Vec<(f64, f64)> = c
            .points
            .iter()
            .map(|p| (mid(p), pick(p).high))
            .chain(c.points.iter().rev().map(|p| (mid(p), pick(p).low)))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(
                band,
                colour(i).mix(0.2).filled(),
            )))
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                c.points.iter().map(|p| (mid(p), pick(p).mean)),
                colour(i).stroke_width(2),
            ))
            .map_err(err)?
            .label(c.name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour(i).stroke_width(3))
            });
    }
    if let Some(r) = reference {
        let label = if regret {
            "zero regret (oracle)".to_string()
        } else {
            format!("oracle expected return V* = {r:.2}")
        };
        reference_line(&mut chart, (0.0, r), (x_max, r), label)?;
    }
    legend(
        &mut chart,
        if regret {
            SeriesLabelPosition::UpperRight
        } else {
            SeriesLabelPosition::LowerRight
        },
    )?;
    area.present().map_err(err)
}

/// Final performance per policy: mean with interval whiskers, oracle line.
fn final_comparison<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    report: &Report,
    title: &str,
) -> Drawn {
    area.fill(&WHITE).map_err(err)?;
    let n = report.summaries.len();
    let estimates: Vec<_> = report.summaries.iter().map(|s| s.final_return).collect();
    let (mut lo, mut hi) = estimates
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), e| {
            (l.min(e.low), h.max(e.high))
        });
    if let Some(v) = report.optimal_value {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(1e-9);
    // Policies top to bottom, in scenario order; long names fit on the left.
    let names: Vec<String> = report.summaries.iter().map(|s| s.name.clone()).collect();
    let longest = names.iter().map(|s| s.chars().count()).max().unwrap_or(6) as u32;
    let row = |i: usize| (n - 1 - i) as f64;
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(20 + 8 * longest)
        .build_cartesian_2d((lo - pad)..(hi + pad), -0.5..(n as f64 - 0.5))
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n.max(1))
        .y_label_formatter(&|y| {
            let r = y.round();
            if (y - r).abs() < 1e-6 && r >= 0.0 && (r as usize) < n {
                names[n - 1 - r as usize].clone()
            } else {
                String::new()
            }
        })
        .x_desc(format!("{}, final episodes", report.return_label))
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    for (i, e) in estimates.iter().enumerate() {
        if let Some(e) = e {
            let y = row(i);
            chart
                .draw_series(std::iter::once(ErrorBar::new_horizontal(
                    y,
                    e.low,
                    e.mean,
                    e.high,
                    colour(i).stroke_width(2),
                    12,
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Circle::new(
                    (e.mean, y),
                    4,
                    colour(i).filled(),
                )))
                .map_err(err)?;
        }
    }
    if let Some(v) = report.optimal_value {
        let label = format!("oracle expected return V* = {v:.2}");
        reference_line(&mut chart, (v, -0.5), (v, n as f64 - 0.5), label)?;
        legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
    }
    area.present().map_err(err)
}

/// A tick label: whole numbers as such, others with two decimals.
fn tick(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A blue-to-yellow colour for `t` in `[0, 1]` (a coarse viridis).
fn viridis(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let x = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |u: f64, v: f64| (u + (v - u) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// One heatmap per policy table, side by side, sharing a colour scale.
fn heatmaps<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    tables: &[PolicyTable],
    title: &str,
) -> Drawn {
    area.fill(&WHITE).map_err(err)?;
    let area = area.titled(title, ("sans-serif", 24)).map_err(err)?;
    let (panels, legend) = area.split_horizontally(area.dim_in_pixel().0 - 140);
    let (lo, hi) = tables
        .iter()
        .flat_map(|t| t.table.values.iter().flatten())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    let span = (hi - lo).max(1e-9);
    for (panel, t) in panels.split_evenly((1, tables.len())).iter().zip(tables) {
        let g = &t.table;
        let (nr, nc) = (g.rows.len(), g.cols.len());
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("{} (mean over {} seeds)", t.name, t.seeds),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..nc as f64, 0.0..nr as f64)
            .map_err(err)?;
        let cols = g.cols.clone();
        let rows = g.rows.clone();
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(g.col_name)
            .y_desc(g.row_name)
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 13))
            .x_label_formatter(&|x| {
                cols.get(x.floor() as usize)
                    .map(|&v| tick(v))
                    .unwrap_or_default()
            })
            .y_label_formatter(&|y| {
                rows.get(y.floor() as usize)
                    .map(|&v| tick(v))
                    .unwrap_or_default()
            })
            .draw()
            .map_err(err)?;
        chart
            .draw_series(g.values.iter().enumerate().flat_map(|(i, row)| {
                row.iter().enumerate().map(move |(j, &v)| {
                    Rectangle::new(
                        [(j as f64, i as f64), (j as f64 + 1.0, i as f64 + 1.0)],
                        viridis((v - lo) / span).filled(),
                    )
                })
            }))
            .map_err(err)?;
    }
    // Colour bar with its scale.
    let (_, h) = legend.dim_in_pixel();
    let (top, bottom, left) = (60i32, h as i32 - 60, 20i32);
    let steps = 100;
    for k in 0..steps {
        let y0 = bottom - (bottom - top) * k / steps;
        let y1 = bottom - (bottom - top) * (k + 1) / steps;
        legend
            .draw(&Rectangle::new(
                [(left, y1), (left + 30, y0)],
                viridis(f64::from(k) / f64::from(steps)).filled(),
            ))
            .map_err(err)?;
    }
    let style = TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(
        plotters::style::text_anchor::HPos::Left,
        plotters::style::text_anchor::VPos::Center,
    ));
    for k in 0..=4 {
        let v = lo + span * f64::from(k) / 4.0;
        let y = bottom - (bottom - top) * k / 4;
        legend
            .draw(&Text::new(format!("{v:.2}"), (left + 38, y), style.clone()))
            .map_err(err)?;
    }
    legend
        .draw(&Text::new(
            tables[0].table.value_name,
            (left, top - 25),
            ("sans-serif", 15).into_font(),
        ))
        .map_err(err)?;
    Ok(())
}

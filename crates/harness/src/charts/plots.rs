//! The drawing of each kind of chart: curves with bands, final comparisons
//! with intervals, heatmaps of learned tables.

use super::*;

pub(super) fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// A chart with `f64` axes.
pub(super) type Chart2d<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A dashed black line from `from` to `to`, in the legend as `label`.
pub(super) fn reference_line<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart2d<'a, DB>,
    from: (f64, f64),
    to: (f64, f64),
    label: String,
    colour: RGBColor,
) -> Drawn {
    chart
        .draw_series(DashedLineSeries::new(
            vec![from, to],
            10,
            6,
            colour.stroke_width(2),
        ))
        .map_err(err)?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    Ok(())
}

/// The label of a horizontal chart's row at `y`: rows are `names` top to
/// bottom at y = n − 1 … 0; between rows, nothing.
pub(super) fn row_label<S: AsRef<str>>(names: &[S], y: f64) -> String {
    let (n, r) = (names.len(), y.round());
    if (y - r).abs() < 1e-6 && r >= 0.0 && (r as usize) < n {
        names[n - 1 - r as usize].as_ref().to_string()
    } else {
        String::new()
    }
}

/// Colour of the baseline's reference line (the oracle's is black).
/// The colour of a behaviour policy's level.
pub(super) const BEHAVIOUR: RGBColor = RGBColor(160, 82, 45);

pub(super) const BASELINE_GREY: RGBColor = RGBColor(130, 130, 130);

/// The legend box, at `position`.
pub(super) fn legend<'a, DB: DrawingBackend + 'a>(
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

/// Mean ± band curves, one per policy, with optional reference lines:
/// the oracle's value (or zero regret), and the baseline's value.
/// The reference lines of a curves chart: the oracle's value, the
/// baseline's, and other labelled levels (a behaviour policy's value).
#[derive(Default)]
pub(super) struct References<'a> {
    pub oracle: Option<f64>,
    pub baseline: Option<&'a BaselineValue>,
    pub lines: &'a [(String, f64)],
}

pub(super) fn curves<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    curves: &[Curve],
    (title, x_label, y_label): (&str, &str, &str),
    references: References<'_>,
    regret: bool,
) -> Drawn {
    let (reference, baseline) = (references.oracle, references.baseline);
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
    let levels = references.lines.iter().map(|l| l.1);
    for r in reference
        .into_iter()
        .chain(baseline.map(|b| b.value))
        .chain(levels)
    {
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
        .x_desc(x_label)
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
        reference_line(&mut chart, (0.0, r), (x_max, r), label, BLACK)?;
    }
    if let Some(b) = baseline {
        let label = format!("{}: {:.2}", b.name, b.value);
        let line = ((0.0, b.value), (x_max, b.value));
        reference_line(&mut chart, line.0, line.1, label, BASELINE_GREY)?;
    }
    for (name, level) in references.lines {
        let label = format!("{name}: {level:.2}");
        reference_line(&mut chart, (0.0, *level), (x_max, *level), label, BEHAVIOUR)?;
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
pub(super) fn final_comparison<DB: DrawingBackend>(
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
    for v in report
        .optimal_value
        .into_iter()
        .chain(report.baseline.as_ref().map(|b| b.value))
    {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(1e-9);
    // Policies top to bottom, in scenario order; long names fit on the left.
    // Each policy's name, with its share of the gap from the baseline to
    // the reference (greedy where evaluated, else while exploring).
    let gap = |s: &crate::report::PolicySummary| s.eval_gap_closed.or(s.gap_closed);
    let gaps = report.summaries.iter().any(|s| gap(s).is_some());
    let names: Vec<String> = report
        .summaries
        .iter()
        .map(|s| match gap(s) {
            Some(g) => format!("{} (gap {:.0}%)", s.name, g.mean),
            None => s.name.clone(),
        })
        .collect();
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
        .y_label_formatter(&|y| row_label(&names, *y))
        .x_desc(if gaps {
            // "gap": the share of the baseline-to-oracle gap closed,
            // greedy where evaluated.
            format!(
                "{}, final episodes · gap closed (greedy)",
                report.return_label
            )
        } else {
            format!("{}, final episodes", report.return_label)
        })
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
        reference_line(&mut chart, (v, -0.5), (v, n as f64 - 0.5), label, BLACK)?;
    }
    if let Some(b) = &report.baseline {
        let label = format!("{}: {:.2}", b.name, b.value);
        let line = ((b.value, -0.5), (b.value, n as f64 - 0.5));
        reference_line(&mut chart, line.0, line.1, label, BASELINE_GREY)?;
    }
    if report.optimal_value.is_some() || report.baseline.is_some() {
        legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
    }
    area.present().map_err(err)
}

/// A tick label: whole numbers as such, others with two decimals.
pub(super) fn tick(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A blue-to-yellow colour for `t` in `[0, 1]` (a coarse viridis).
pub(super) fn viridis(t: f64) -> RGBColor {
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
pub(super) fn heatmaps<DB: DrawingBackend>(
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
            .x_desc(g.col_name.as_str())
            .y_desc(g.row_name.as_str())
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
            tables[0].table.value_name.as_str(),
            (left, top - 25),
            ("sans-serif", 15).into_font(),
        ))
        .map_err(err)?;
    Ok(())
}

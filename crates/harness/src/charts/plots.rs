//! The drawing of each kind of chart: curves with bands, final comparisons
//! with intervals, heatmaps of learned tables.

use super::*;

pub(super) fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
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

/// A linear `f64` axis.
type Coord = plotters::coord::types::RangedCoordf64;

/// A chart of one row per name (the first at the top, labelled on the
/// left in `label_width` pixels) over `x` on the horizontal axis, titled
/// `x_desc`, its mesh drawn.
pub(super) fn row_chart<'a, DB: DrawingBackend, S: AsRef<str>>(
    plot: &'a DrawingArea<DB, Shift>,
    names: &[S],
    (x, label_width): (std::ops::Range<f64>, u32),
    x_desc: &str,
) -> Result<ChartContext<'a, DB, Cartesian2d<Coord, Coord>>, String> {
    let n = names.len();
    let mut chart = ChartBuilder::on(plot)
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(label_width)
        .build_cartesian_2d(x, -0.5..(n as f64 - 0.5))
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n.max(1))
        .y_label_formatter(&|y| row_label(names, *y))
        .x_desc(x_desc)
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// Colour of the baseline's reference line (the oracle's is black).
/// The colour of a behaviour policy's level.
pub(super) const BEHAVIOUR: RGBColor = RGBColor(160, 82, 45);

pub(super) const BASELINE_GREY: RGBColor = RGBColor(130, 130, 130);

/// The fill of a table's cells the learner never visited.
pub(super) const UNVISITED: RGBColor = RGBColor(225, 225, 225);

/// The reference lines of a curves chart: the oracle's value (or zero
/// regret), the baseline's, and other labelled levels (a behaviour
/// policy's value).
#[derive(Default)]
pub(super) struct References<'a> {
    /// The reference level and its label (`oracle expected return V* =
    /// 87.87`, `zero regret`).
    pub oracle: Option<(f64, String)>,
    pub baseline: Option<&'a BaselineValue>,
    pub lines: &'a [(String, f64)],
}

/// How a curves chart draws its values.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CurveStyle {
    /// Draw each point's regret instead of its return.
    pub regret: bool,
    /// A logarithmic y axis (values ≤ 0 are left out).
    pub log_y: bool,
    /// Each seed's curve as a thin line under the mean.
    pub seed_traces: bool,
}

/// The value a curves chart draws of a point.
fn pick(style: CurveStyle, p: &CurvePoint) -> Estimate {
    let mut e = match (style.regret, p.regret) {
        (true, Some(r)) => r,
        _ => p.ret,
    };
    if style.log_y {
        let log = |v: f64| if v > 0.0 { v.log10() } else { f64::NAN };
        // A band reaching zero or below is cut at a tenth of the mean.
        let low = if e.low > 0.0 { e.low } else { e.mean / 10.0 };
        e.low = log(low);
        e.mean = log(e.mean);
        e.high = log(e.high);
    }
    e
}

/// Mean ± band curves, one per policy (or, past [`MAX_OVERLAID`], one
/// panel each), with the reference lines; the legend outside, to the right.
pub(super) fn curves<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    curves: &[Curve],
    (title, x_label, y_label): (&str, &str, &str),
    references: References<'_>,
    style: CurveStyle,
) -> Drawn {
    area.fill(&WHITE).map_err(err)?;
    let area = area.titled(title, ("sans-serif", 22)).map_err(err)?;
    let (width, _) = area.dim_in_pixel();
    let (plot, strip) = area.split_horizontally(width.saturating_sub(KEY_WIDTH));
    // Regret charts show only the policies whose regret is known.
    let shown: Vec<(usize, &Curve)> = curves
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.points.is_empty() && (!style.regret || c.points[0].regret.is_some()))
        .collect();
    let x_max = shown
        .iter()
        .flat_map(|(_, c)| c.points.iter())
        .map(|p| p.episode_end)
        .max()
        .unwrap_or(1) as f64;
    let (mut lo, mut hi) = shown
        .iter()
        .flat_map(|(_, c)| c.points.iter())
        .map(|p| pick(style, p))
        .filter(|e| e.low.is_finite() && e.high.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), e| {
            (l.min(e.low), h.max(e.high))
        });
    let mut levels: Vec<(f64, String, RGBColor)> = Vec::new();
    if let Some((v, label)) = &references.oracle {
        levels.push((*v, label.clone(), BLACK));
    }
    if let Some(b) = references.baseline {
        levels.push((
            b.value,
            format!("{}: {:.2}", b.name, b.value),
            BASELINE_GREY,
        ));
    }
    for (name, level) in references.lines {
        levels.push((*level, format!("{name}: {level:.2}"), BEHAVIOUR));
    }
    if style.log_y {
        levels.retain(|l| l.0 > 0.0);
        for l in &mut levels {
            l.0 = l.0.log10();
        }
    }
    for (v, _, _) in &levels {
        lo = lo.min(*v);
        hi = hi.max(*v);
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    let y_range = (lo - pad)..(hi + pad);
    let facets = shown.len() > MAX_OVERLAID;
    let panels: Vec<DrawingArea<DB, Shift>> = if facets {
        let columns = 4;
        plot.split_evenly((shown.len().div_ceil(columns), columns))
    } else {
        vec![plot]
    };
    let log_tick = |y: &f64| {
        if style.log_y {
            let v = 10f64.powf(*y);
            format!("{v:.1e}")
        } else {
            format!("{y:.1}")
        }
    };
    let mut keys = Vec::new();
    for (k, panel) in panels.iter().enumerate() {
        let mine: Vec<&(usize, &Curve)> = if facets {
            shown.get(k).into_iter().collect()
        } else {
            shown.iter().collect()
        };
        if facets && mine.is_empty() {
            continue;
        }
        let mut builder = ChartBuilder::on(panel);
        builder
            .margin(if facets { 8 } else { 15 })
            .x_label_area_size(if facets { 30 } else { 50 })
            .y_label_area_size(if facets { 60 } else { 80 });
        if facets {
            builder.caption(&mine[0].1.name, ("sans-serif", 15));
        }
        let mut chart = builder
            .build_cartesian_2d(0.0..x_max, y_range.clone())
            .map_err(err)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&log_tick)
            .axis_desc_style(("sans-serif", 18))
            .label_style(("sans-serif", if facets { 11 } else { 15 }));
        if facets {
            mesh.x_labels(4).y_labels(5);
        } else {
            mesh.x_desc(x_label).y_desc(y_label);
        }
        mesh.draw().map_err(err)?;
        for &&(i, c) in &mine {
            let mid = |p: &CurvePoint| f64::from(p.episode_start + p.episode_end) / 2.0;
            let finite =
                |e: &Estimate| e.mean.is_finite() && e.low.is_finite() && e.high.is_finite();
            let points: Vec<(f64, Estimate)> = c
                .points
                .iter()
                .map(|p| (mid(p), pick(style, p)))
                .filter(|(_, e)| finite(e))
                .collect();
            let spans: Vec<(f64, f64, f64)> =
                points.iter().map(|(x, e)| (*x, e.low, e.high)).collect();
            chart
                .draw_series(std::iter::once(band(&spans, colour(i))))
                .map_err(err)?;
            let seeds = c.points.first().map_or(0, |p| p.per_seed.len());
            for k in (0..seeds).filter(|_| style.seed_traces && !style.regret && !style.log_y) {
                chart
                    .draw_series(LineSeries::new(
                        c.points
                            .iter()
                            .filter_map(|p| Some((mid(p), *p.per_seed.get(k)?)))
                            .filter(|(_, v)| v.is_finite()),
                        colour(i).mix(0.35).stroke_width(1),
                    ))
                    .map_err(err)?;
            }
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|(x, e)| (*x, e.mean)),
                    colour(i).stroke_width(2),
                ))
                .map_err(err)?;
            if !facets {
                keys.push(Key {
                    label: c.name.clone(),
                    colour: colour(i),
                    dashed: false,
                });
            }
        }
        for (v, _, c) in &levels {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(0.0, *v), (x_max, *v)],
                    10,
                    6,
                    c.stroke_width(2),
                ))
                .map_err(err)?;
        }
    }
    if facets {
        strip
            .draw(&Text::new(
                "one panel per policy (mean, band)",
                (8, 30),
                ("sans-serif", 14).into_font(),
            ))
            .map_err(err)?;
        strip
            .draw(&Text::new(
                format!("y: {y_label}"),
                (8, 50),
                ("sans-serif", 13).into_font(),
            ))
            .map_err(err)?;
    }
    keys.extend(levels.into_iter().map(|(_, label, colour)| Key {
        label,
        colour,
        dashed: true,
    }));
    side_legend(&strip, if facets { 80 } else { 30 }, &keys)?;
    area.present().map_err(err)
}

/// Final performance per policy: mean with interval whiskers, oracle line.
pub(super) fn final_comparison<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    report: &Report,
    title: &str,
) -> Drawn {
    area.fill(&WHITE).map_err(err)?;
    let area = area.titled(title, ("sans-serif", 22)).map_err(err)?;
    let (width, _) = area.dim_in_pixel();
    let (plot, strip) = area.split_horizontally(width.saturating_sub(KEY_WIDTH));
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
    // "gap": the share of the baseline-to-oracle gap closed, greedy where
    // evaluated.
    let x_desc = if gaps {
        format!(
            "{}, final episodes · gap closed (greedy)",
            report.return_label
        )
    } else {
        format!("{}, final episodes", report.return_label)
    };
    let x = (lo - pad)..(hi + pad);
    let mut chart = row_chart(&plot, &names, (x, 20 + 8 * longest), &x_desc)?;
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
    let mut keys = Vec::new();
    let mut levels = Vec::new();
    if let Some(v) = report.optimal_value {
        levels.push((v, format!("oracle expected return V* = {v:.2}"), BLACK));
    }
    if let Some(b) = &report.baseline {
        levels.push((
            b.value,
            format!("{}: {:.2}", b.name, b.value),
            BASELINE_GREY,
        ));
    }
    for (v, label, colour) in levels {
        chart.draw_series(level_line(v, n, colour)).map_err(err)?;
        keys.push(Key {
            label,
            colour,
            dashed: true,
        });
    }
    side_legend(&strip, 30, &keys)?;
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
    // The colour scale spans the visited cells' values.
    let seen = |t: &PolicyTable| -> Vec<f64> {
        t.table
            .values
            .iter()
            .enumerate()
            .flat_map(|(i, row)| {
                row.iter().enumerate().filter_map(move |(j, &v)| {
                    t.table
                        .visited
                        .as_ref()
                        .is_none_or(|f| f[i][j])
                        .then_some(v)
                })
            })
            .collect()
    };
    let values: Vec<f64> = tables.iter().flat_map(seen).collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
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
        // States the learner never visited show its untrained default,
        // not a choice: masked in light grey.
        let visited = |i: usize, j: usize| g.visited.as_ref().is_none_or(|v| v[i][j]);
        chart
            .draw_series(g.values.iter().enumerate().flat_map(|(i, row)| {
                row.iter().enumerate().map(move |(j, &v)| {
                    let fill = if visited(i, j) {
                        viridis((v - lo) / span).filled()
                    } else {
                        UNVISITED.filled()
                    };
                    Rectangle::new(
                        [(j as f64, i as f64), (j as f64 + 1.0, i as f64 + 1.0)],
                        fill,
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
    // Ticks at the action values themselves (a price grid) when there are
    // few of them, else at five even steps; each with a tick mark.
    let mut distinct: Vec<f64> = values.clone();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup_by(|a, b| (*a - *b).abs() <= 1e-9 * span);
    let whole = distinct.iter().all(|v| (v * 100.0).fract().abs() < 1e-6);
    let ticks: Vec<f64> = if whole && (2..=12).contains(&distinct.len()) {
        distinct
    } else {
        (0..=4).map(|k| lo + span * f64::from(k) / 4.0).collect()
    };
    for v in ticks {
        let y = bottom - (f64::from(bottom - top) * (v - lo) / span).round() as i32;
        legend
            .draw(&PathElement::new(
                vec![(left + 30, y), (left + 36, y)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
        legend
            .draw(&Text::new(tick(v), (left + 40, y), style.clone()))
            .map_err(err)?;
    }
    if tables.iter().any(|t| {
        t.table
            .visited
            .as_ref()
            .is_some_and(|v| v.iter().flatten().any(|s| !s))
    }) {
        legend
            .draw(&Rectangle::new(
                [(left, bottom + 18), (left + 30, bottom + 34)],
                UNVISITED.filled(),
            ))
            .map_err(err)?;
        legend
            .draw(&Text::new(
                "never visited",
                (left, bottom + 40),
                ("sans-serif", 13).into_font(),
            ))
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

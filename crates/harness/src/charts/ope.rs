//! Charts of off-policy evaluation: a log's estimates with their
//! intervals against the truth, and an OPE study's bias, RMSE and
//! coverage against log size, each with its band.

use super::*;
use crate::ope_study::StudyRow;

/// One log's estimates (`shoplab ope`): each estimator's estimate with its
/// 95% interval, and the target's true value with its 95% interval where
/// the log came from a scenario.
#[derive(Debug, Clone)]
pub struct OpeChart {
    /// The chart's title.
    pub title: String,
    /// The x axis' description.
    pub x_label: String,
    /// (estimator, estimate, lower, upper), top to bottom.
    pub estimates: Vec<(String, f64, f64, f64)>,
    /// The truth: (value, lower, upper).
    pub truth: Option<(f64, f64, f64)>,
}

impl OpeChart {
    /// Draws it into `dir` as `estimates.png` and `estimates.svg`.
    pub fn save(&self, dir: &Path) -> Result<Vec<String>, ChartError> {
        self.save_as(dir, "estimates")
    }

    /// Draws it into `dir` as `<stem>.png` and `<stem>.svg`.
    pub fn save_as(&self, dir: &Path, stem: &str) -> Result<Vec<String>, ChartError> {
        save(self, (SIZE.0 + KEY_WIDTH, SIZE.1), dir, stem)
    }
}

impl Draw for OpeChart {
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> Drawn {
        area.fill(&WHITE).map_err(err)?;
        let area = area.titled(&self.title, ("sans-serif", 22)).map_err(err)?;
        let (width, _) = area.dim_in_pixel();
        let (plot, strip) = area.split_horizontally(width.saturating_sub(KEY_WIDTH));
        let n = self.estimates.len();
        let (mut lo, mut hi) = self
            .estimates
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), e| {
                (l.min(e.2).min(e.1), h.max(e.3).max(e.1))
            });
        if let Some((_, l, h)) = self.truth {
            (lo, hi) = (lo.min(l), hi.max(h));
        }
        if !(lo.is_finite() && hi.is_finite()) {
            (lo, hi) = (0.0, 1.0);
        }
        let pad = ((hi - lo) * 0.08).max(1e-12);
        let row = |i: usize| (n - 1 - i) as f64;
        let names: Vec<&str> = self.estimates.iter().map(|e| e.0.as_str()).collect();
        let x = (lo - pad)..(hi + pad);
        let mut chart = row_chart(&plot, &names, (x, 120), &self.x_label)?;
        if let Some((v, l, h)) = self.truth {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(l, -0.5), (h, n as f64 - 0.5)],
                    BLACK.mix(0.12).filled(),
                )))
                .map_err(err)?;
            chart.draw_series(level_line(v, n, BLACK)).map_err(err)?;
            let key = Key {
                label: format!("true value {v:.6} (95% interval shaded)"),
                colour: BLACK,
                dashed: true,
            };
            side_legend(&strip, 30, &[key])?;
        }
        for (i, (_, mean, low, high)) in self.estimates.iter().enumerate() {
            let y = row(i);
            chart
                .draw_series(std::iter::once(ErrorBar::new_horizontal(
                    y,
                    *low,
                    *mean,
                    *high,
                    colour(i).stroke_width(2),
                    12,
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Circle::new(
                    (*mean, y),
                    4,
                    colour(i).filled(),
                )))
                .map_err(err)?;
        }
        area.present().map_err(err)
    }
}

/// An OPE study's summary: per estimator, against log size (decisions,
/// log scale), its bias (±2 standard errors), RMSE (95% bootstrap band
/// over logs) and interval coverage (Wilson 95% band, the nominal 0.95
/// dashed).
#[derive(Debug, Clone)]
pub struct StudyChart<'a> {
    /// The chart's title.
    pub title: String,
    /// The study's rows.
    pub rows: &'a [StudyRow],
}

impl StudyChart<'_> {
    /// Draws it into `dir` as `study.png` and `study.svg`.
    pub fn save(&self, dir: &Path) -> Result<Vec<String>, ChartError> {
        save(self, (1800 + KEY_WIDTH, 650), dir, "study")
    }
}

/// One panel's point: x, value, band low, band high.
type Point = (f64, f64, f64, f64);

impl Draw for StudyChart<'_> {
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> Drawn {
        area.fill(&WHITE).map_err(err)?;
        let area = area.titled(&self.title, ("sans-serif", 24)).map_err(err)?;
        let (width, _) = area.dim_in_pixel();
        let (plots, strip) = area.split_horizontally(width.saturating_sub(KEY_WIDTH));
        let panels = plots.split_evenly((1, 3));
        let mut names: Vec<&str> = Vec::new();
        for r in self.rows {
            if !names.contains(&r.estimator.as_str()) {
                names.push(&r.estimator);
            }
        }
        let series = |pick: &dyn Fn(&StudyRow) -> (f64, f64, f64)| -> Vec<(String, Vec<Point>)> {
            names
                .iter()
                .map(|name| {
                    let points = self
                        .rows
                        .iter()
                        .filter(|r| r.estimator == *name)
                        .map(|r| {
                            let (v, l, h) = pick(r);
                            (r.decisions.max(1.0).log10(), v, l, h)
                        })
                        .collect();
                    ((*name).to_string(), points)
                })
                .collect()
        };
        let bias = series(&|r| (r.bias, r.bias - 2.0 * r.bias_se, r.bias + 2.0 * r.bias_se));
        let rmse = series(&|r| {
            let log = |v: f64| v.max(1e-300).log10();
            (log(r.rmse), log(r.rmse_low), log(r.rmse_high))
        });
        let coverage = series(&|r| (r.coverage, r.coverage_low, r.coverage_high));
        panel(
            &panels[0],
            &bias,
            "bias (estimate − truth), ±2 s.e.",
            Some(0.0),
            false,
        )?;
        panel(
            &panels[1],
            &rmse,
            "RMSE (log scale), 95% band over logs",
            None,
            true,
        )?;
        panel(
            &panels[2],
            &coverage,
            "coverage of the 95% interval (Wilson band)",
            Some(0.95),
            false,
        )?;
        let keys: Vec<Key> = names
            .iter()
            .enumerate()
            .map(|(i, name)| Key {
                label: (*name).to_string(),
                colour: colour(i),
                dashed: false,
            })
            .collect();
        side_legend(&strip, 40, &keys)?;
        area.present().map_err(err)
    }
}

/// One panel: a line and band per estimator against log10(decisions);
/// `reference` a dashed horizontal line; `log_y` labels y as 10^y.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &[(String, Vec<Point>)],
    title: &str,
    reference: Option<f64>,
    log_y: bool,
) -> Drawn {
    let points = series.iter().flat_map(|s| s.1.iter());
    let (x0, x1) = points
        .clone()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| {
            (l.min(p.0), h.max(p.0))
        });
    let (mut y0, mut y1) = points
        .clone()
        .filter(|p| p.2.is_finite() && p.3.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| {
            (l.min(p.2), h.max(p.3))
        });
    if let Some(r) = reference {
        (y0, y1) = (y0.min(r), y1.max(r));
    }
    if !(y0.is_finite() && y1.is_finite()) {
        (y0, y1) = (0.0, 1.0);
    }
    let (x0, x1) = if x0.is_finite() && x1 > x0 {
        (x0 - 0.15, x1 + 0.15)
    } else {
        (x0 - 1.0, x0 + 1.0)
    };
    let pad = ((y1 - y0) * 0.08).max(1e-12);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
        .map_err(err)?;
    let power = |v: &f64| {
        let p = 10f64.powf(*v);
        if !(0.01..1000.0).contains(&p) {
            format!("{p:.0e}")
        } else {
            format!("{p:.3}")
        }
    };
    let plain = |v: &f64| format!("{v:.3}");
    chart
        .configure_mesh()
        // Labels at whole powers of ten only.
        .x_label_formatter(&|v| {
            if (v - v.round()).abs() < 1e-9 {
                format!("{:.0}", 10f64.powf(v.round()))
            } else {
                String::new()
            }
        })
        .y_label_formatter(if log_y { &power } else { &plain })
        .x_desc("decisions in the log")
        .axis_desc_style(("sans-serif", 15))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    if let Some(r) = reference {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x0, r), (x1, r)],
                8,
                5,
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
    }
    for (i, (_, points)) in series.iter().enumerate() {
        let c = colour(i);
        let band: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (p.0, p.2))
            .chain(points.iter().rev().map(|p| (p.0, p.3)))
            .filter(|p| p.1.is_finite())
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(band, c.mix(0.15).filled())))
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.0, p.1)),
                c.stroke_width(2),
            ))
            .map_err(err)?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.0, p.1), 3, c.filled())),
            )
            .map_err(err)?;
    }
    Ok(())
}

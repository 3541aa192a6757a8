//! A sweep's sensitivity chart: the final score against each swept value.
//!
//! One panel per swept key. The x axis is the key's value — numeric
//! (logarithmic when the values are positive and span a factor of 8 or
//! more) or, for text values, the values in order. In a grid each series
//! is one policy at one combination of the other keys' values, joined
//! across the key's values; in a random sweep every configuration is a
//! point. Each point is the mean over seeds with its confidence interval
//! as whiskers. Colour is the policy, the marker the other keys' values;
//! the legend sits outside the plotting area, to the right.

use super::*;
use crate::report::sweep::SweepReport;

/// Width of the legend strip to the right of the panels.
const LEGEND_WIDTH: u32 = 360;
/// Height of one panel.
const PANEL_HEIGHT: u32 = 420;

/// The sensitivity chart of a sweep.
pub struct SensitivityChart<'a> {
    /// What the sweep measured.
    pub sweep: &'a SweepReport,
    /// Whether configurations form a grid (series joined by lines).
    pub grid: bool,
}

impl SensitivityChart<'_> {
    /// Draws it into `dir` as `sensitivity.png` and `sensitivity.svg`.
    pub fn save(&self, dir: &Path) -> Result<Vec<String>, ChartError> {
        let size = (
            900 + LEGEND_WIDTH,
            PANEL_HEIGHT * self.sweep.keys.len().max(1) as u32 + 50,
        );
        save(self, size, dir, "sensitivity")
    }
}

/// A key's values on the x axis: numbers where every value is one.
enum Axis {
    Linear(Vec<f64>),
    Log(Vec<f64>),
    Categories(Vec<String>),
}

impl Axis {
    fn of(values: &[&toml::Value]) -> Self {
        let numbers: Option<Vec<f64>> = values
            .iter()
            .map(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)))
            .collect();
        match numbers {
            Some(x) => {
                let (lo, hi) = x
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                        (a.min(v), b.max(v))
                    });
                if lo > 0.0 && hi / lo >= 8.0 {
                    Axis::Log(x)
                } else {
                    Axis::Linear(x)
                }
            }
            None => {
                let mut names: Vec<String> = Vec::new();
                for v in values {
                    let name = crate::sweep::display_value(v);
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
                Axis::Categories(names)
            }
        }
    }

    /// Where value `v` (the i-th of those the axis was built from) goes.
    fn position(&self, i: usize, v: &toml::Value) -> f64 {
        match self {
            Axis::Linear(x) => x[i],
            Axis::Log(x) => x[i].log10(),
            Axis::Categories(names) => {
                let name = crate::sweep::display_value(v);
                names.iter().position(|n| *n == name).unwrap_or(0) as f64
            }
        }
    }

    fn range(&self) -> (f64, f64) {
        let (lo, hi) = match self {
            Axis::Linear(x) => x
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                }),
            Axis::Log(x) => x
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v.log10()), b.max(v.log10()))
                }),
            Axis::Categories(names) => (0.0, names.len().saturating_sub(1) as f64),
        };
        let pad = ((hi - lo) * 0.08).max(0.5 * f64::from(u8::from(hi == lo)));
        (lo - pad, hi + pad)
    }

    fn label(&self, x: f64) -> String {
        match self {
            Axis::Linear(_) => short(x),
            Axis::Log(_) => {
                let v = 10f64.powf(x);
                short(format!("{v:.1e}").parse().unwrap_or(v))
            }
            Axis::Categories(names) => {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            }
        }
    }
}

/// A number with at most four significant digits.
fn short(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let text = format!("{x:.3e}");
    let value: f64 = text.parse().unwrap_or(x);
    if (1e-3..1e5).contains(&value.abs()) {
        let digits = (3 - value.abs().log10().floor() as i32).clamp(0, 6) as usize;
        let s = format!("{value:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        text
    }
}

/// Marker `m` at `(x, y)`.
fn marker<DB: DrawingBackend>(
    m: usize,
    (x, y): (i32, i32),
    colour: RGBColor,
) -> DynElement<'static, DB, (i32, i32)> {
    let style = colour.filled();
    match m % 4 {
        0 => Circle::new((x, y), 5, style).into_dyn(),
        1 => TriangleMarker::new((x, y), 6, style).into_dyn(),
        2 => Rectangle::new([(x - 4, y - 4), (x + 4, y + 4)], style).into_dyn(),
        _ => Cross::new((x, y), 5, colour.stroke_width(2)).into_dyn(),
    }
}

impl Draw for SensitivityChart<'_> {
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> Drawn {
        area.fill(&WHITE).map_err(err)?;
        let s = self.sweep;
        let (width, _) = area.dim_in_pixel();
        let area = area
            .titled(
                &format!("{}: {} against each swept key", s.scenario, s.score_label),
                ("sans-serif", 18),
            )
            .map_err(err)?;
        let (plots, side) = area.split_horizontally(width - LEGEND_WIDTH);
        let panels = plots.split_evenly((s.keys.len().max(1), 1));
        let sides = side.split_evenly((s.keys.len().max(1), 1));
        for (k, (key, panel)) in s.keys.iter().zip(&panels).enumerate() {
            let mut entries: Vec<(String, RGBColor, usize)> = Vec::new();
            let values: Vec<&toml::Value> =
                s.configurations.iter().map(|c| &c.values[k].1).collect();
            let axis = Axis::of(&values);
            // The other keys' values of each configuration: its series.
            let others = |c: usize| -> String {
                s.configurations[c]
                    .values
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != k)
                    .map(|(_, (key, v))| {
                        let short_key = key.rsplit('.').next().unwrap_or(key);
                        format!("{short_key}={}", crate::sweep::display_value(v))
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let mut groups: Vec<String> = Vec::new();
            for c in 0..s.configurations.len() {
                let g = if self.grid { others(c) } else { String::new() };
                if !groups.contains(&g) {
                    groups.push(g);
                }
            }
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for e in s.scores.iter().flatten().flatten() {
                lo = lo.min(e.low.min(e.mean));
                hi = hi.max(e.high.max(e.mean));
            }
            if !lo.is_finite() {
                (lo, hi) = (0.0, 1.0);
            }
            let pad = ((hi - lo) * 0.08).max(1e-6);
            let (x0, x1) = axis.range();
            let mut chart = ChartBuilder::on(panel)
                .margin(12)
                .x_label_area_size(48)
                .y_label_area_size(80)
                .build_cartesian_2d(x0..x1, (lo - pad)..(hi + pad))
                .map_err(err)?;
            let x_desc = match axis {
                Axis::Log(_) => format!("{key} (log scale)"),
                _ => key.clone(),
            };
            let ticks = match &axis {
                Axis::Categories(names) => names.len(),
                _ => 8,
            };
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc(s.axis_label.as_str())
                .x_labels(ticks)
                .x_label_formatter(&|x| axis.label(*x))
                .axis_desc_style(("sans-serif", 16))
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(err)?;
            if s.normalised && lo - pad < 100.0 && hi + pad > 100.0 {
                chart
                    .draw_series(LineSeries::new(
                        [(x0, 100.0), (x1, 100.0)],
                        BLACK.stroke_width(1),
                    ))
                    .map_err(err)?;
            }
            for (p, policy) in s.policies.iter().enumerate() {
                let colour = colour(p);
                for (g, group) in groups.iter().enumerate() {
                    let mut points: Vec<(f64, &crate::stats::Estimate)> = s
                        .configurations
                        .iter()
                        .enumerate()
                        .filter(|(c, _)| !self.grid || others(*c) == *group)
                        .filter_map(|(c, conf)| {
                            let e = s.scores[c][p].as_ref()?;
                            Some((axis.position(c, &conf.values[k].1), e))
                        })
                        .collect();
                    points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    if points.is_empty() {
                        continue;
                    }
                    if self.grid && points.len() > 1 {
                        chart
                            .draw_series(LineSeries::new(
                                points.iter().map(|(x, e)| (*x, e.mean)),
                                colour.stroke_width(2),
                            ))
                            .map_err(err)?;
                    }
                    chart
                        .draw_series(points.iter().map(|(x, e)| {
                            ErrorBar::new_vertical(
                                *x,
                                e.low,
                                e.mean,
                                e.high,
                                colour.stroke_width(2),
                                8,
                            )
                        }))
                        .map_err(err)?;
                    chart
                        .draw_series(points.iter().map(|(x, e)| {
                            EmptyElement::at((*x, e.mean)) + marker(g, (0, 0), colour)
                        }))
                        .map_err(err)?;
                    let label = if group.is_empty() {
                        policy.clone()
                    } else {
                        format!("{policy} · {group}")
                    };
                    if !entries.iter().any(|(l, _, _)| *l == label) {
                        entries.push((label, colour, g));
                    }
                }
            }
            // This panel's legend, outside it, to the right.
            let side = &sides[k];
            let font = ("sans-serif", 13).into_font();
            side.draw(&Text::new(
                format!("mean over seeds, {:.0}% interval", 100.0 * s.confidence),
                (10, 6),
                font.clone(),
            ))
            .map_err(err)?;
            if s.normalised {
                side.draw(&PathElement::new(
                    vec![(10, 33), (26, 33)],
                    BLACK.stroke_width(1),
                ))
                .map_err(err)?;
                side.draw(&Text::new("100%: the reference", (34, 26), font.clone()))
                    .map_err(err)?;
            }
            let room = ((PANEL_HEIGHT as i32 - 80) / 20).max(1) as usize;
            for (i, (label, colour, g)) in entries.iter().enumerate().take(room) {
                let y = 56 + 20 * i as i32;
                let text = if i + 1 == room && entries.len() > room {
                    format!("… and {} more series", entries.len() - i)
                } else {
                    label.clone()
                };
                side.draw(&(EmptyElement::at((18, y)) + marker(*g, (0, 0), *colour)))
                    .map_err(err)?;
                side.draw(&Text::new(text, (34, y - 7), font.clone()))
                    .map_err(err)?;
            }
        }
        area.present().map_err(err)
    }
}

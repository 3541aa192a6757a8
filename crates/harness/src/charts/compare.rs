//! The chart of `shoplab compare`: performance profiles with their bands.

use super::*;

/// Each policy's fraction of runs scoring above each threshold, with its
/// interval band.
#[derive(Debug, Clone)]
pub struct ProfileChart<'a> {
    /// The chart's title.
    pub title: String,
    /// The x axis' description (the score, normalised or not).
    pub x_label: String,
    /// The thresholds.
    pub taus: &'a [f64],
    /// Per policy: `(fraction, low, high)` at each threshold.
    pub profiles: &'a [(String, crate::compare::Profile)],
}

impl ProfileChart<'_> {
    /// Draws it into `dir` as `profile.png` and `profile.svg`.
    pub fn save(&self, dir: &Path) -> Result<Vec<String>, ChartError> {
        save(self, (SIZE.0 + KEY_WIDTH, SIZE.1), dir, "profile")
    }
}

impl Draw for ProfileChart<'_> {
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> Drawn {
        area.fill(&WHITE).map_err(err)?;
        let area = area.titled(&self.title, ("sans-serif", 22)).map_err(err)?;
        let (width, _) = area.dim_in_pixel();
        let (plot, strip) = area.split_horizontally(width.saturating_sub(KEY_WIDTH));
        let (x0, x1) = (
            self.taus.first().copied().unwrap_or(0.0),
            self.taus.last().copied().unwrap_or(1.0),
        );
        let pad = ((x1 - x0) * 0.02).max(1e-9);
        let mut chart = ChartBuilder::on(&plot)
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d((x0 - pad)..(x1 + pad), 0.0..1.02)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc("fraction of runs with score > τ")
            .axis_desc_style(("sans-serif", 18))
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(err)?;
        let mut keys = Vec::new();
        for (i, (name, points)) in self.profiles.iter().enumerate() {
            let spans: Vec<(f64, f64, f64)> = self
                .taus
                .iter()
                .zip(points)
                .map(|(&t, p)| (t, p.1, p.2))
                .collect();
            chart
                .draw_series(std::iter::once(band(&spans, colour(i))))
                .map_err(err)?;
            chart
                .draw_series(LineSeries::new(
                    self.taus.iter().zip(points).map(|(&t, p)| (t, p.0)),
                    colour(i).stroke_width(2),
                ))
                .map_err(err)?;
            keys.push(Key {
                label: name.clone(),
                colour: colour(i),
                dashed: false,
            });
        }
        side_legend(&strip, 30, &keys)?;
        area.present().map_err(err)
    }
}

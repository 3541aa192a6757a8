//! What every chart shares: the legend drawn outside the plotting area,
//! and the shaded band of an interval.

use super::*;

/// Width of the legend strip to the right of a chart's plotting area.
pub(super) const KEY_WIDTH: u32 = 320;

/// Policies a curves chart overlays; with more, one small panel each.
pub(super) const MAX_OVERLAID: usize = 8;

/// One entry of a legend drawn outside the plotting area.
pub(super) struct Key {
    pub label: String,
    pub colour: RGBColor,
    pub dashed: bool,
}

/// Draws `keys` down the strip `area` (outside the plot), from `top`.
pub(super) fn side_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    top: i32,
    keys: &[Key],
) -> Drawn {
    let font = ("sans-serif", 14).into_font();
    let (_, height) = area.dim_in_pixel();
    let room = ((height as i32 - top - 10) / 22).max(1) as usize;
    for (i, key) in keys.iter().enumerate().take(room) {
        let y = top + 22 * i as i32;
        let style = key.colour.stroke_width(3);
        if key.dashed {
            area.draw(&PathElement::new(vec![(8, y), (16, y)], style))
                .map_err(err)?;
            area.draw(&PathElement::new(vec![(22, y), (30, y)], style))
                .map_err(err)?;
        } else {
            area.draw(&PathElement::new(vec![(8, y), (30, y)], style))
                .map_err(err)?;
        }
        let mut label: String = key.label.chars().take(40).collect();
        if key.label.chars().count() > 40 {
            label.push('…');
        }
        if i + 1 == room && keys.len() > room {
            label = format!("… and {} more", keys.len() - i);
        }
        area.draw(&Text::new(label, (38, y - 8), font.clone()))
            .map_err(err)?;
    }
    Ok(())
}

/// The shaded band of `(x, low, high)` points, in a series' colour.
pub(super) fn band(points: &[(f64, f64, f64)], colour: RGBColor) -> Polygon<(f64, f64)> {
    let outline = points
        .iter()
        .map(|&(x, _, high)| (x, high))
        .chain(points.iter().rev().map(|&(x, low, _)| (x, low)))
        .collect::<Vec<_>>();
    Polygon::new(outline, colour.mix(0.2).filled())
}

/// A dashed vertical line at `x` across the `rows` rows of a horizontal
/// interval plot (rows at 0, 1, …, with half a row's margin either side).
pub(super) fn level_line(
    x: f64,
    rows: usize,
    colour: RGBColor,
) -> DashedLineSeries<std::array::IntoIter<(f64, f64), 2>, i32> {
    let top = rows as f64 - 0.5;
    DashedLineSeries::new([(x, -0.5), (x, top)], 10, 6, colour.stroke_width(2))
}

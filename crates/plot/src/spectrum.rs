//! Singular values against their index, on a log scale, with an upper bound.

use crate::image::{Image, Rect, Rgb, CHAR, GRID, INK};
use crate::{PlotError, PlotOptions};

/// The values' line and markers.
pub const SERIES: Rgb = [31, 100, 180];
/// The upper bound's dashed line.
pub const BOUND: Rgb = [220, 38, 38];

/// Aspect ratio (width / height) of a plot sized by its longer side.
const ASPECT: f64 = 1.6;
/// Values are marked with dots when there are at most this many.
const MARKED: usize = 100;

/// The y axis: log10 of the values, from `lo` to `hi` (whole decades).
struct LogAxis {
    lo: f64,
    hi: f64,
}

impl LogAxis {
    fn new(values: &[f64], bound: Option<f64>) -> Self {
        let positive = values.iter().chain(bound.iter()).copied().filter(|v| *v > 0.0);
        let (min, max) = positive.fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
        if max == 0.0 {
            return LogAxis { lo: -1.0, hi: 1.0 };
        }
        let (mut lo, mut hi) = (min.log10().floor(), max.log10().ceil());
        if hi <= lo {
            // one value, an exact power of 10
            lo -= 1.0;
            hi += 1.0;
        }
        LogAxis { lo, hi }
    }

    /// Pixel row of `v` in `area` (zero and tiny values sit on the bottom edge).
    fn y(&self, v: f64, area: Rect) -> i64 {
        let t = if v > 0.0 { ((v.log10() - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0) } else { 0.0 };
        (area.bottom() - 1) as i64 - (t * (area.height - 1) as f64).round() as i64
    }
}

/// The pixel column of value `i` (0-based) of `n`.
fn x_of(i: usize, n: usize, area: Rect) -> i64 {
    if n == 1 {
        return (area.x + area.width / 2) as i64;
    }
    area.x as i64 + (i as f64 / (n - 1) as f64 * (area.width - 1) as f64).round() as i64
}

/// A step of 1, 2 or 5 times a power of 10, at least `raw`.
fn nice_step(raw: f64) -> usize {
    let mut step = 1usize;
    loop {
        for m in [1, 2, 5] {
            if (step * m) as f64 >= raw {
                return step * m;
            }
        }
        step *= 10;
    }
}

/// `1e-3`, `1e0`, `1e12`: a decade's label.
fn decade(k: i64) -> String {
    format!("1e{k}")
}

/// Plots `values` (singular values, any order; drawn in the order given) against their index 1..n on a
/// log-scale y axis with decade ticks, and `bound` (e.g. the circular upper bound) as a dashed
/// horizontal line. Values of 0 sit on the bottom edge.
///
/// # Errors
/// No values, a value (or bound) that is negative or not finite, or a size out of range.
pub fn spectrum_plot(values: &[f64], bound: Option<f64>, options: &PlotOptions) -> Result<Image, PlotError> {
    if values.is_empty() {
        return Err(PlotError::Empty("no singular values"));
    }
    for (what, index, &value) in
        values.iter().enumerate().map(|(i, v)| ("singular value", i, v)).chain(bound.iter().map(|b| ("bound", 0, b)))
    {
        if !(value.is_finite() && value >= 0.0) {
            return Err(PlotError::Value { what, index, value });
        }
    }
    let (width, height) = options.size.check()?.resolve(ASPECT);
    let labels = options.labels && width.min(height) >= 160;
    let area = if labels {
        Rect { x: 56, y: 28, width: width - 56 - 16, height: height - 28 - 30 }
    } else {
        Rect { x: 0, y: 0, width, height }
    };
    let axis = LogAxis::new(values, bound);
    let mut image = Image::new(width, height);
    let n = values.len();

    // y: decades (labelled at least 14 pixels apart), with 2..9 minor ticks when there is room
    let decades = (axis.hi - axis.lo) as i64;
    let per_decade = (area.height - 1) as f64 / decades as f64;
    let label_every = ((14.0 / per_decade).ceil() as i64).max(1);
    for k in 0..=decades {
        let e = axis.lo as i64 + k;
        let y = axis.y(10f64.powi(e as i32), area);
        let labelled = k % label_every == 0;
        if labels && labelled {
            image.hline(area.x, area.right() - 1, y as u32, GRID);
            image.hline(area.x - 5, area.x - 1, y as u32, INK);
            let text = decade(e);
            let x = area.x as i64 - 7 - Image::text_width(&text) as i64;
            image.text(x, y - CHAR as i64 / 2, &text, INK);
        } else if labels {
            image.hline(area.x - 3, area.x - 1, y as u32, INK);
        }
        if labels && per_decade >= 24.0 && k < decades {
            for m in 2..10 {
                let y = axis.y(m as f64 * 10f64.powi(e as i32), area);
                image.hline(area.x - 2, area.x - 1, y as u32, INK);
            }
        }
    }
    // x: index 1..n at steps of 1, 2, 5 x 10^k, labels at least 6 characters apart
    if labels {
        let most = (area.width / (6 * CHAR)).max(1) as f64;
        let step = nice_step((n as f64 - 1.0).max(1.0) / most);
        let mut ticks: Vec<usize> = std::iter::once(1).chain((step..=n).step_by(step)).collect();
        ticks.dedup();
        for i in ticks {
            let x = x_of(i - 1, n, area);
            image.vline(x as u32, area.bottom(), area.bottom() + 4, INK);
            let text = i.to_string();
            let w = Image::text_width(&text) as i64;
            image.text((x - w / 2).clamp(0, width as i64 - w), (area.bottom() + 7) as i64, &text, INK);
        }
    }
    // the bound, dashed
    if let Some(b) = bound {
        let y = axis.y(b, area);
        for x in (area.x..area.right()).filter(|x| (x - area.x) % 8 < 5) {
            image.put(x as i64, y, BOUND);
            image.put(x as i64, y + 1, BOUND);
        }
        if labels {
            let text = format!("circular bound {b:.4e}");
            let x = area.right() as i64 - Image::text_width(&text) as i64 - 2;
            let above = if y - area.y as i64 > 12 { y - 11 } else { y + 4 };
            image.text(x, above, &text, BOUND);
        }
    }
    // the values: a line through them, and dots when there are few
    let points: Vec<(i64, i64)> =
        values.iter().enumerate().map(|(i, &v)| (x_of(i, n, area), axis.y(v, area))).collect();
    for w in points.windows(2) {
        image.line(w[0], w[1], SERIES);
    }
    if n <= MARKED {
        for &(x, y) in &points {
            for dy in -1..=1 {
                for dx in -1..=1 {
                    image.put(x + dx, y + dy, SERIES);
                }
            }
        }
    }
    if labels {
        image.outline(Rect { x: area.x - 1, y: area.y - 1, width: area.width + 2, height: area.height + 2 }, INK);
        let title = options.title.clone().unwrap_or_else(|| format!("{n} singular values"));
        let max = ((width - 8) / CHAR) as usize;
        let title: String = if title.chars().count() > max {
            title.chars().take(max.saturating_sub(3)).chain("...".chars()).collect()
        } else {
            title
        };
        image.text(4, 4, &title, INK);
        image.text(4, 16, "sigma (log scale)", INK);
        let caption = "index";
        image.text((area.right() - Image::text_width(caption)) as i64, (area.bottom() + 19) as i64, caption, INK);
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Size;

    #[test]
    fn decades_and_positions() {
        let area = Rect { x: 0, y: 0, width: 101, height: 101 };
        let axis = LogAxis::new(&[50.0, 0.02], None);
        assert_eq!((axis.lo, axis.hi), (-2.0, 2.0));
        assert_eq!(axis.y(100.0, area), 0);
        assert_eq!(axis.y(1.0, area), 50);
        assert_eq!(axis.y(0.01, area), 100);
        assert_eq!(axis.y(0.0, area), 100);
        let one = LogAxis::new(&[1.0], None);
        assert_eq!((one.lo, one.hi), (-1.0, 1.0));
        let with_bound = LogAxis::new(&[3.0, 2.0], Some(20.0));
        assert_eq!((with_bound.lo, with_bound.hi), (0.0, 2.0));
        assert_eq!(
            (nice_step(0.3), nice_step(1.5), nice_step(3.0), nice_step(7.0), nice_step(4100.0)),
            (1, 2, 5, 10, 5000)
        );
    }

    #[test]
    fn the_bound_is_a_dashed_line_at_its_height() {
        let opts = PlotOptions::default().with_size(Size::Exact { width: 200, height: 101 }).with_labels(false);
        let image = spectrum_plot(&[8.0, 4.0, 2.0, 1.0], Some(10.0), &opts).unwrap();
        // log axis 1e0..1e1 over 101 rows: 10 at the top row, 1 at the bottom
        let bound_row: Vec<u32> = (0..200).filter(|&x| image.pixel(x, 0) == Some(BOUND)).collect();
        assert!(bound_row.len() > 100 && bound_row.len() < 150, "{}", bound_row.len());
        // 8 at index 1: x = 0, y = 100 - round(log10(8) * 100) = 10
        assert_eq!(image.pixel(0, 10), Some(SERIES));
        assert_eq!(image.pixel(199, 100), Some(SERIES));
        assert_eq!(image.pixel(100, 90), Some(crate::WHITE));
    }

    #[test]
    fn bad_values_are_errors() {
        let opts = PlotOptions::default();
        assert_eq!(spectrum_plot(&[], None, &opts).unwrap_err(), PlotError::Empty("no singular values"));
        assert!(matches!(
            spectrum_plot(&[1.0, f64::NAN], None, &opts),
            Err(PlotError::Value { what: "singular value", index: 1, .. })
        ));
        assert!(matches!(spectrum_plot(&[1.0], Some(-1.0), &opts), Err(PlotError::Value { what: "bound", .. })));
        let image = spectrum_plot(&[1.0, 0.0], None, &opts).unwrap();
        assert_eq!((image.width(), image.height()), (800, 500));
    }
}

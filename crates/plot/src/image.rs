//! An RGB raster with the few drawing operations the plots need, written as PNG.

use std::io::Write;

use crate::font::GLYPHS;
use crate::PlotError;

/// The largest width or height of a picture, in pixels.
pub const MAX_SIDE: u32 = 16_384;
/// The smallest width or height of a picture, in pixels.
pub const MIN_SIDE: u32 = 16;

/// An 8-bit RGB colour.
pub type Rgb = [u8; 3];

/// A rectangle of pixels: left, top, width, height.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    /// Leftmost column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
}

impl Rect {
    /// One past the rightmost column.
    pub fn right(&self) -> u32 {
        self.x + self.width
    }
    /// One past the bottom row.
    pub fn bottom(&self) -> u32 {
        self.y + self.height
    }
}

/// How big a picture is: the longer side (the other follows the content's shape), or both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Size {
    /// The longer side, in pixels; the shorter side follows the content's aspect ratio (within 4:1).
    Longest(u32),
    /// Exactly `width` x `height` pixels.
    Exact {
        /// Pixels across.
        width: u32,
        /// Pixels down.
        height: u32,
    },
}

impl Default for Size {
    fn default() -> Self {
        Size::Longest(800)
    }
}

impl Size {
    /// Checks both sides are within [`MIN_SIDE`]..=[`MAX_SIDE`].
    pub(crate) fn check(self) -> Result<Self, PlotError> {
        let sides = match self {
            Size::Longest(n) => [n, n],
            Size::Exact { width, height } => [width, height],
        };
        for side in sides {
            if !(MIN_SIDE..=MAX_SIDE).contains(&side) {
                return Err(PlotError::Size { side, min: MIN_SIDE, max: MAX_SIDE });
            }
        }
        Ok(self)
    }

    /// Width and height for content `aspect` = width / height (used with [`Size::Longest`]).
    pub(crate) fn resolve(self, aspect: f64) -> (u32, u32) {
        match self {
            Size::Exact { width, height } => (width, height),
            Size::Longest(n) => {
                let aspect = aspect.clamp(0.25, 4.0);
                let short = |r: f64| ((n as f64 * r).round() as u32).max(MIN_SIDE);
                if aspect >= 1.0 {
                    (n, short(1.0 / aspect))
                } else {
                    (short(aspect), n)
                }
            }
        }
    }
}

impl std::str::FromStr for Size {
    type Err = PlotError;

    /// `800` (the longer side) or `800x600` (width x height).
    fn from_str(s: &str) -> Result<Self, PlotError> {
        let bad = || PlotError::SizeText(s.to_string());
        let num = |t: &str| t.trim().parse::<u32>().map_err(|_| bad());
        let size = match s.split_once(['x', 'X']) {
            Some((w, h)) => Size::Exact { width: num(w)?, height: num(h)? },
            None => Size::Longest(num(s)?),
        };
        size.check()
    }
}

/// An RGB picture, white when created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    width: u32,
    height: u32,
    pixels: Vec<Rgb>,
}

/// The background.
pub const WHITE: Rgb = [255, 255, 255];
/// Text, axes and frames.
pub const INK: Rgb = [40, 40, 40];
/// Grid lines of plots.
pub const GRID: Rgb = [225, 225, 225];

/// Width and height of one character of text, in pixels.
pub const CHAR: u32 = 8;

impl Image {
    /// A white `width` x `height` picture.
    pub fn new(width: u32, height: u32) -> Self {
        Image { width, height, pixels: vec![WHITE; width as usize * height as usize] }
    }

    /// Pixels across.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Pixels down.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The colour at (`x`, `y`); `None` outside the picture.
    pub fn pixel(&self, x: u32, y: u32) -> Option<Rgb> {
        (x < self.width && y < self.height).then(|| self.pixels[(y * self.width + x) as usize])
    }

    /// Sets one pixel (nothing outside the picture).
    pub fn put(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as u64) < self.width as u64 && (y as u64) < self.height as u64 {
            self.pixels[(y as u64 * self.width as u64 + x as u64) as usize] = c;
        }
    }

    /// Fills `r` (clipped to the picture).
    pub fn fill(&mut self, r: Rect, c: Rgb) {
        for y in r.y..r.bottom().min(self.height) {
            for x in r.x..r.right().min(self.width) {
                self.pixels[(y * self.width + x) as usize] = c;
            }
        }
    }

    /// A horizontal line from `x0` to `x1` (inclusive) at `y`.
    pub fn hline(&mut self, x0: u32, x1: u32, y: u32, c: Rgb) {
        self.fill(Rect { x: x0, y, width: x1.saturating_sub(x0) + 1, height: 1 }, c);
    }

    /// A vertical line from `y0` to `y1` (inclusive) at `x`.
    pub fn vline(&mut self, x: u32, y0: u32, y1: u32, c: Rgb) {
        self.fill(Rect { x, y: y0, width: 1, height: y1.saturating_sub(y0) + 1 }, c);
    }

    /// The 1-pixel outline just inside `r`.
    pub fn outline(&mut self, r: Rect, c: Rgb) {
        if r.width == 0 || r.height == 0 {
            return;
        }
        self.hline(r.x, r.right() - 1, r.y, c);
        self.hline(r.x, r.right() - 1, r.bottom() - 1, c);
        self.vline(r.x, r.y, r.bottom() - 1, c);
        self.vline(r.right() - 1, r.y, r.bottom() - 1, c);
    }

    /// A straight line between two points (Bresenham), clipped to the picture.
    pub fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.put(x, y, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Draws `text` (printable ASCII; anything else shows as `?`) with its top-left corner at
    /// (`x`, `y`), one [`CHAR`] x [`CHAR`] cell per character, clipped to the picture.
    pub fn text(&mut self, x: i64, y: i64, text: &str, c: Rgb) {
        for (i, ch) in text.chars().enumerate() {
            let code = if (' '..='~').contains(&ch) { ch as usize } else { '?' as usize };
            let glyph = GLYPHS[code - 0x20];
            let left = x + (i as i64) * CHAR as i64;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if (bits >> col) & 1 == 1 {
                        self.put(left + col, y + row as i64, c);
                    }
                }
            }
        }
    }

    /// Pixels `text` takes across.
    pub fn text_width(text: &str) -> u32 {
        text.chars().count() as u32 * CHAR
    }

    /// Encodes the picture as an 8-bit RGB PNG into `w`.
    ///
    /// # Errors
    /// Writing to `w` fails.
    pub fn write_png<W: Write>(&self, w: W) -> std::io::Result<()> {
        let mut encoder = png::Encoder::new(w, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(into_io)?;
        writer.write_image_data(self.pixels.as_flattened()).map_err(into_io)?;
        writer.finish().map_err(into_io)
    }

    /// The PNG file's bytes.
    pub fn png_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_png(&mut out).expect("writing to a Vec cannot fail");
        out
    }
}

fn into_io(e: png::EncodingError) -> std::io::Error {
    match e {
        png::EncodingError::IoError(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}

/// Linear interpolation through colour `stops` at `t` in [0, 1].
pub(crate) fn ramp(stops: &[Rgb], t: f64) -> Rgb {
    let t = t.clamp(0.0, 1.0) * (stops.len() - 1) as f64;
    let i = (t.floor() as usize).min(stops.len() - 2);
    let f = t - i as f64;
    std::array::from_fn(|k| (stops[i][k] as f64 * (1.0 - f) + stops[i + 1][k] as f64 * f).round() as u8)
}

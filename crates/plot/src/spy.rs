//! The sparsity pattern of a matrix, shaded by magnitude, with its channel blocks outlined.

use convmat_matrix::{Conv, ConvLayer, MatrixOptions};

use crate::image::{ramp, Image, Rect, Rgb, CHAR, INK, MIN_SIDE};
use crate::{PlotError, PlotOptions};

/// Block boundaries.
pub const LINE: Rgb = [220, 38, 38];
/// A stored entry whose value is exactly zero (the pattern is the geometry's, the weight is 0).
pub const STORED_ZERO: Rgb = [228, 228, 228];
/// |a| from small to the largest (light yellow-green to dark blue).
const PALETTE: [Rgb; 6] =
    [[199, 233, 180], [127, 205, 187], [65, 182, 196], [29, 145, 192], [34, 94, 168], [8, 29, 88]];

/// Boundaries closer than this many pixels are thinned out (only every k-th is drawn).
const MIN_LINE_GAP: f64 = 4.0;
/// Entries a chunk of rows may hold while a layer's rows are walked.
const CHUNK_ENTRIES: usize = 1 << 22;
/// The most stored entries [`spy`] visits: 2^34 (1.7e10), a minute or two at the build rate of
/// this project's machine; beyond, a picture would take hours.
const MAX_ENTRIES: u128 = 1 << 34;

/// The colour of an entry with `|a| = magnitude` when the largest is `max`.
pub fn magnitude_colour(magnitude: f64, max: f64) -> Rgb {
    if magnitude == 0.0 || max == 0.0 {
        STORED_ZERO
    } else {
        ramp(&PALETTE, magnitude / max)
    }
}

/// A matrix's size and its split into equal blocks (e.g. one row block per output channel, one column
/// block per input channel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockShape {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Equal row blocks (`rows` is a multiple).
    pub row_blocks: usize,
    /// Equal column blocks (`cols` is a multiple).
    pub col_blocks: usize,
}

impl BlockShape {
    /// Checks the matrix is not empty and splits evenly.
    fn check(self) -> Result<Self, PlotError> {
        let splits = |n: usize, b: usize| b > 0 && n.is_multiple_of(b);
        if self.rows == 0 || self.cols == 0 {
            return Err(PlotError::Empty("the matrix has no rows or no columns"));
        }
        if !splits(self.rows, self.row_blocks) || !splits(self.cols, self.col_blocks) {
            return Err(PlotError::Blocks {
                rows: self.rows,
                cols: self.cols,
                row_blocks: self.row_blocks,
                col_blocks: self.col_blocks,
            });
        }
        Ok(self)
    }
}

/// A drawn spy picture and what it shows.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Spy {
    /// The picture.
    pub image: Image,
    /// Where the matrix is drawn in it (entry (0, 0) at its top-left corner).
    pub area: Rect,
    /// The matrix and its blocks.
    pub shape: BlockShape,
    /// Stored entries (explicit zeros included).
    pub nnz: usize,
    /// The largest |a|.
    pub max_abs: f64,
    /// Matrix rows and columns per pixel (1.0 or less: no pooling).
    pub entries_per_pixel: (f64, f64),
    /// Every how many row / column block boundaries a line is drawn (1 = all).
    pub lines_every: (usize, usize),
}

/// Max |a| per cell of a grid of at most the area's size.
struct Pool {
    shape: BlockShape,
    gh: usize,
    gw: usize,
    /// -1 = no stored entry.
    cells: Vec<f64>,
    nnz: usize,
}

impl Pool {
    fn new(shape: BlockShape, area: Rect) -> Self {
        let (gh, gw) = (shape.rows.min(area.height as usize), shape.cols.min(area.width as usize));
        Pool { shape, gh, gw, cells: vec![-1.0; gh * gw], nnz: 0 }
    }

    fn add(&mut self, row: usize, col: usize, value: f64) -> Result<(), PlotError> {
        let BlockShape { rows, cols, .. } = self.shape;
        if row >= rows || col >= cols {
            return Err(PlotError::Entry { row, col, rows, cols });
        }
        if !value.is_finite() {
            return Err(PlotError::Value { what: "matrix entry", index: row * cols + col, value });
        }
        let (i, j) = (cell(row, self.gh, rows), cell(col, self.gw, cols));
        let c = &mut self.cells[i * self.gw + j];
        *c = c.max(value.abs());
        self.nnz += 1;
        Ok(())
    }
}

/// The grid cell of matrix index `k` of `n`, on a grid of `g <= n` cells.
fn cell(k: usize, g: usize, n: usize) -> usize {
    (k as u128 * g as u128 / n as u128) as usize
}

/// The first of `pixels` pixels showing grid cell `c` of `g`.
fn first_pixel(c: usize, g: usize, pixels: u32) -> u32 {
    (c as u128 * pixels as u128).div_ceil(g as u128) as u32
}

/// The pixel (within the area) where matrix index `k` of `n` starts.
fn pixel_of(k: usize, n: usize, pixels: u32) -> u32 {
    let g = n.min(pixels as usize);
    first_pixel(cell(k, g, n), g, pixels)
}

/// As [`spy`], for a resolved layer; the title defaults to the layer's PyTorch expression.
///
/// # Errors
/// As [`spy`].
pub fn spy_layer(layer: &ConvLayer, options: &PlotOptions) -> Result<Spy, PlotError> {
    let mut options = options.clone();
    if options.title.is_none() {
        options.title = Some(layer.description());
    }
    // A alone: the bias is not part of the matrix
    let conv = Conv::new(layer.geometry().clone(), layer.weight().to_vec(), None)?;
    spy(&conv, &options)
}

/// Draws a layer's matrix `A` (rows: `(C_out, *out)`, columns `(C_in, *in)`), one row block per output
/// channel and one column block per input channel.
///
/// The rows are built in chunks of at most ~4M entries ([`Conv::csr_with`] on a row range) and
/// max-pooled into the picture's pixels, so memory stays bounded for any layer.
///
/// # Errors
/// A size out of range ([`PlotError::Size`]); a layer of more than 2^34 (1.7e10) stored entries
/// ([`PlotError::TooLarge`]: each is visited); building the rows fails.
pub fn spy(conv: &Conv<f64>, options: &PlotOptions) -> Result<Spy, PlotError> {
    let g = conv.geometry();
    let shape = BlockShape {
        rows: conv.rows(),
        cols: conv.cols(),
        row_blocks: g.output_shape()[0],
        col_blocks: g.input_shape()[0],
    };
    let spec = g.spec();
    let per_row = (g.input_shape()[0] / spec.groups()).max(1) * spec.kernel_len().max(1);
    let entries = shape.rows as u128 * per_row as u128;
    if entries > MAX_ENTRIES {
        // every entry is visited: refuse what would run for hours rather than hang
        return Err(PlotError::TooLarge { entries, max: MAX_ENTRIES });
    }
    let chunk = (CHUNK_ENTRIES / per_row).max(1);
    spy_entries(shape, options, |add| {
        let mut start = 0;
        while start < shape.rows {
            let end = (start + chunk).min(shape.rows);
            let part = conv.csr_with::<usize, usize>(&MatrixOptions::default().rows(start..end))?;
            for (r, row) in part.outer_iterator().enumerate() {
                for (c, &v) in row.iter() {
                    add(start + r, c, v)?;
                }
            }
            start = end;
        }
        Ok(())
    })
}

/// Draws the matrix whose stored entries `entries` passes to its callback as `(row, col, value)`
/// (any order; repeated entries keep the largest |value|).
///
/// # Errors
/// An empty matrix or blocks that do not divide it, an entry outside it or not finite, a size out of
/// range, or an error of `entries`.
pub fn spy_entries<F>(shape: BlockShape, options: &PlotOptions, entries: F) -> Result<Spy, PlotError>
where
    F: FnOnce(&mut dyn FnMut(usize, usize, f64) -> Result<(), PlotError>) -> Result<(), PlotError>,
{
    let shape = shape.check()?;
    let size = options.size.check()?;
    let (width, height) = size.resolve(shape.cols as f64 / shape.rows as f64);
    let labels = options.labels && width.min(height) >= 160;
    let area = layout(width, height, shape, labels);
    let mut pool = Pool::new(shape, area);
    entries(&mut |r, c, v| pool.add(r, c, v))?;
    let max_abs = pool.cells.iter().copied().fold(0.0, f64::max);

    let mut image = Image::new(width, height);
    // cells to pixels (pixel row y shows grid row y * gh / height, as `cell` maps entries)
    let (gh, gw) = (pool.gh, pool.gw);
    for y in 0..area.height {
        let i = cell(y as usize, gh, area.height as usize);
        for x in 0..area.width {
            let m = pool.cells[i * gw + cell(x as usize, gw, area.width as usize)];
            if m >= 0.0 {
                image.put((area.x + x) as i64, (area.y + y) as i64, magnitude_colour(m, max_abs));
            }
        }
    }
    let lines_every = (
        draw_lines(&mut image, area, shape.rows, shape.row_blocks, true),
        draw_lines(&mut image, area, shape.cols, shape.col_blocks, false),
    );
    let spy = Spy {
        area,
        shape,
        nnz: pool.nnz,
        max_abs,
        entries_per_pixel: (shape.rows as f64 / area.height as f64, shape.cols as f64 / area.width as f64),
        lines_every,
        image,
    };
    Ok(if labels { annotate(spy, options.title.as_deref()) } else { spy })
}

const TOP: u32 = 42;
const BOTTOM: u32 = 26;
const RIGHT: u32 = 10;

fn layout(width: u32, height: u32, shape: BlockShape, labels: bool) -> Rect {
    if !labels {
        return Rect { x: 0, y: 0, width, height };
    }
    let left = Image::text_width(&(shape.row_blocks - 1).to_string()).max(2 * CHAR) + 8;
    Rect { x: left, y: TOP, width: width - left - RIGHT, height: height - TOP - BOTTOM }
}

/// Lines at the first pixel of every block but the first (thinned to every k-th when closer than
/// [`MIN_LINE_GAP`] pixels); returns k.
fn draw_lines(image: &mut Image, area: Rect, n: usize, blocks: usize, horizontal: bool) -> usize {
    let pixels = if horizontal { area.height } else { area.width };
    let gap = pixels as f64 / blocks as f64;
    let every = if gap >= MIN_LINE_GAP { 1 } else { (MIN_LINE_GAP / gap).ceil() as usize };
    let per = n / blocks;
    for b in (every..blocks).step_by(every) {
        let p = pixel_of(b * per, n, pixels);
        if horizontal {
            image.hline(area.x, area.right() - 1, area.y + p, LINE);
        } else {
            image.vline(area.x + p, area.y, area.bottom() - 1, LINE);
        }
    }
    every
}

/// Title, captions, channel numbers, a frame and the colour scale around the matrix.
fn annotate(mut spy: Spy, title: Option<&str>) -> Spy {
    let (area, shape) = (spy.area, spy.shape);
    let image = &mut spy.image;
    let fit = |text: String, room: u32| -> String {
        let max = (room / CHAR) as usize;
        if text.chars().count() <= max {
            text
        } else {
            text.chars().take(max.saturating_sub(3)).chain("...".chars()).collect()
        }
    };
    let room = image.width() - 8;
    if let Some(t) = title {
        image.text(4, 3, &fit(t.to_string(), room), INK);
    }
    let pooled = spy.entries_per_pixel.0 > 1.0 || spy.entries_per_pixel.1 > 1.0;
    let caption = format!(
        "{} x {}, {} stored; rows: {} out ch, cols: {} in ch{}",
        shape.rows,
        shape.cols,
        spy.nnz,
        shape.row_blocks,
        shape.col_blocks,
        if pooled { "; max |a| per pixel" } else { "" }
    );
    image.text(4, 15, &fit(caption, room), INK);
    // frame, one pixel outside the matrix
    image.outline(Rect { x: area.x - 1, y: area.y - 1, width: area.width + 2, height: area.height + 2 }, INK);
    // channel numbers at block centres, where they fit
    let (row_gap, col_gap) =
        (area.height as f64 / shape.row_blocks as f64, area.width as f64 / shape.col_blocks as f64);
    for b in 0..shape.col_blocks {
        let label = b.to_string();
        let w = Image::text_width(&label);
        if col_gap * (spy.lines_every.1 as f64) >= (w + 4) as f64 && b % spy.lines_every.1 == 0 {
            let centre = area.x as f64 + (b as f64 + 0.5) * col_gap;
            image.text(centre as i64 - w as i64 / 2, (TOP - 12) as i64, &label, INK);
        }
    }
    for b in 0..shape.row_blocks {
        if row_gap * (spy.lines_every.0 as f64) >= (CHAR + 2) as f64 && b % spy.lines_every.0 == 0 {
            let label = b.to_string();
            let centre = area.y as f64 + (b as f64 + 0.5) * row_gap;
            let x = area.x as i64 - 4 - Image::text_width(&label) as i64;
            image.text(x, centre as i64 - CHAR as i64 / 2, &label, INK);
        }
    }
    // colour scale: |a| from 0 to the largest
    let y = (area.bottom() + 9) as i64;
    image.text(area.x as i64, y, "|a|: 0", INK);
    let bar = Rect { x: area.x + 7 * CHAR, y: y as u32, width: (area.width / 3).max(MIN_SIDE), height: CHAR };
    for x in 0..bar.width {
        let c = ramp(&PALETTE, (x as f64 + 0.5) / bar.width as f64);
        image.vline(bar.x + x, bar.y, bar.bottom() - 1, c);
    }
    image.text((bar.right() + 4) as i64, y, &format!("{:.3e}", spy.max_abs), INK);
    spy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Size;

    fn bare(width: u32, height: u32) -> PlotOptions {
        PlotOptions::default().with_size(Size::Exact { width, height }).with_labels(false)
    }

    #[test]
    fn identity_blocks_upscaled() {
        // a 4 x 4 identity in 2 x 2 blocks at 4 pixels per entry
        let shape = BlockShape { rows: 4, cols: 4, row_blocks: 2, col_blocks: 2 };
        let s = spy_entries(shape, &bare(16, 16), |add| (0..4).try_for_each(|i| add(i, i, 1.0))).unwrap();
        assert_eq!((s.nnz, s.max_abs, s.lines_every), (4, 1.0, (1, 1)));
        let dark = magnitude_colour(1.0, 1.0);
        for i in 0..4u32 {
            for j in 0..4u32 {
                // the pixel (4i+1, 4j+1) is inside entry (i, j) and never on a line
                let want = if i == j { dark } else { crate::WHITE };
                assert_eq!(s.image.pixel(4 * j + 1, 4 * i + 1), Some(want), "entry ({i}, {j})");
            }
        }
        // the boundary between blocks is the first pixel of entry 2
        for k in 0..16 {
            assert_eq!(s.image.pixel(k, 8), Some(LINE));
            assert_eq!(s.image.pixel(8, k), Some(LINE));
        }
        assert_eq!(s.image.pixel(3, 7), Some(crate::WHITE));
    }

    #[test]
    fn pooling_keeps_the_largest_magnitude() {
        // 8 x 8 entries onto 2 x 2 pixels: each pixel is the max |a| of a 4 x 4 square
        let shape = BlockShape { rows: 8, cols: 8, row_blocks: 1, col_blocks: 1 };
        let s = spy_entries(shape, &bare(16, 16).with_size(Size::Exact { width: 2, height: 2 }), |_| Ok(()));
        assert_eq!(s.unwrap_err(), PlotError::Size { side: 2, min: MIN_SIDE, max: crate::MAX_SIDE });
        let shape = BlockShape { rows: 64, cols: 64, row_blocks: 1, col_blocks: 1 };
        let s = spy_entries(shape, &bare(16, 16), |add| {
            add(0, 0, -4.0)?;
            add(1, 2, 1.0)?;
            add(63, 63, 0.0)?;
            add(40, 3, 2.0)
        })
        .unwrap();
        assert_eq!((s.nnz, s.max_abs, s.entries_per_pixel), (4, 4.0, (4.0, 4.0)));
        assert_eq!(s.image.pixel(0, 0), Some(magnitude_colour(4.0, 4.0)));
        assert_eq!(s.image.pixel(0, 10), Some(magnitude_colour(2.0, 4.0)));
        assert_eq!(s.image.pixel(15, 15), Some(STORED_ZERO));
        assert_eq!(s.image.pixel(5, 5), Some(crate::WHITE));
        assert_ne!(magnitude_colour(2.0, 4.0), magnitude_colour(4.0, 4.0));
    }

    #[test]
    fn lines_thin_out_when_blocks_are_narrower_than_a_few_pixels() {
        // 64 blocks on 32 pixels: every 8th boundary (4 pixels apart)
        let shape = BlockShape { rows: 64, cols: 64, row_blocks: 64, col_blocks: 64 };
        let s = spy_entries(shape, &bare(32, 32), |_| Ok(())).unwrap();
        assert_eq!(s.lines_every, (8, 8));
        let line_rows: Vec<u32> = (0..32).filter(|&y| s.image.pixel(1, y) == Some(LINE)).collect();
        assert_eq!(line_rows, [4, 8, 12, 16, 20, 24, 28]);
    }

    #[test]
    fn bad_input_is_an_error() {
        let opts = bare(16, 16);
        let shape = BlockShape { rows: 6, cols: 4, row_blocks: 4, col_blocks: 2 };
        assert!(matches!(spy_entries(shape, &opts, |_| Ok(())), Err(PlotError::Blocks { row_blocks: 4, .. })));
        let shape = BlockShape { rows: 4, cols: 4, row_blocks: 1, col_blocks: 1 };
        assert_eq!(
            spy_entries(shape, &opts, |add| add(4, 0, 1.0)).unwrap_err(),
            PlotError::Entry { row: 4, col: 0, rows: 4, cols: 4 }
        );
        assert!(matches!(spy_entries(shape, &opts, |add| add(1, 1, f64::NAN)), Err(PlotError::Value { index: 5, .. })));
    }
}

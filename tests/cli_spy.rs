//! `convmat spy` and `convmat svd --plot` as a user runs them: the PNG files they leave, decoded with the
//! png crate's decoder, pixel by pixel.

use std::path::Path;

use convmat::io::{write_npy, AtomicFile};

/// Block lines (convmat_plot::LINE), the singular values (SERIES) and the bound (BOUND), restated here so
/// a change of colour is a visible decision.
const LINE: [u8; 3] = [220, 38, 38];
const SERIES: [u8; 3] = [31, 100, 180];
const WHITE: [u8; 3] = [255, 255, 255];

mod common;
use common::{bad, ok, Dir};

impl Dir {
    /// A weight of `shape` with values -1..1, none zero.
    fn weight(&self, name: &str, shape: &[usize]) -> String {
        let n: usize = shape.iter().product();
        let data: Vec<f64> = (0..n).map(|i| ((i * 7919 % 17) as f64 - 8.5) / 8.5).collect();
        let mut f = AtomicFile::create(&self.p(name)).unwrap();
        write_npy(f.writer(), shape, data.iter().copied()).unwrap();
        f.commit().unwrap();
        self.s(name)
    }
    fn files(&self) -> Vec<String> {
        self.listing()
    }
}

/// A decoded RGB picture.
struct Png {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Png {
    fn read(path: &Path) -> Self {
        let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
        let mut reader = png::Decoder::new(file).read_info().unwrap();
        let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut rgb).unwrap();
        assert_eq!((info.color_type, info.bit_depth), (png::ColorType::Rgb, png::BitDepth::Eight));
        rgb.truncate(info.buffer_size());
        Png { width: info.width, height: info.height, rgb }
    }
    fn at(&self, x: u32, y: u32) -> [u8; 3] {
        let i = 3 * (y * self.width + x) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
    fn row_is(&self, y: u32, c: [u8; 3]) -> bool {
        (0..self.width).all(|x| self.at(x, y) == c)
    }
    fn col_is(&self, x: u32, c: [u8; 3]) -> bool {
        (0..self.height).all(|y| self.at(x, y) == c)
    }
    fn count(&self, c: [u8; 3]) -> usize {
        self.rgb.chunks(3).filter(|p| *p == c).count()
    }
}

/// `convmat spy` of a Conv2d(2, 3, 3) weight on 2x8x8 with `extra` flags, bare, 2 pixels per entry
/// (rows 3 x 64 / out spatial, columns 2 x 64).
fn spy_2_to_3(dir: &Dir, name: &str, extra: &[&str], rows: u32) -> Png {
    let w = dir.weight("w.npy", &[3, 2, 3, 3]);
    let size = format!("256x{}", 2 * rows);
    let out = dir.s(name);
    let mut args = vec!["spy", "--weight", &w, "--input-shape", "2,8,8", "--size", &size, "--no-labels", "-o", &out];
    args.extend_from_slice(extra);
    ok(&args);
    let png = Png::read(&dir.p(name));
    assert_eq!((png.width, png.height), (256, 2 * rows));
    png
}

#[test]
fn block_lines_separate_the_channels() {
    let dir = Dir::new();
    let png = spy_2_to_3(&dir, "A.png", &["--padding", "1"], 192);
    // rows: output channels start at rows 64 and 128 (pixels 128, 256); columns: input channel 1 at
    // column 64 (pixel 128)
    let line_rows: Vec<u32> = (0..png.height).filter(|&y| png.row_is(y, LINE)).collect();
    let line_cols: Vec<u32> = (0..png.width).filter(|&x| png.col_is(x, LINE)).collect();
    assert_eq!(line_rows, [128, 256]);
    assert_eq!(line_cols, [128]);
    // a 3x3 kernel with padding 1: 4 to 9 entries per row and input channel; the first row (output
    // pixel (0, 0)) reads input (0..2, 0..2): columns 0, 1, 8, 9 of each channel block
    let entry = |r: u32, c: u32| png.at(2 * c + 1, 2 * r + 1);
    let stored: Vec<u32> = (0..128).filter(|&c| entry(0, c) != WHITE).collect();
    assert_eq!(stored, [0, 1, 8, 9, 64, 65, 72, 73]);
    // the band of a doubly-block-Toeplitz block: nothing farther than 9 columns from the diagonal
    for r in 0..64 {
        for c in 0..64 {
            if (r as i64 - c as i64).abs() > 9 {
                assert_eq!(entry(r, c), WHITE, "entry ({r}, {c})");
            }
        }
    }
}

#[test]
fn a_circular_layer_has_circulant_blocks() {
    let dir = Dir::new();
    let circ = spy_2_to_3(&dir, "C.png", &["--padding", "1", "--padding-mode", "circular"], 192);
    let zero = spy_2_to_3(&dir, "Z.png", &["--padding", "1"], 192);
    // inside every (output channel, input channel) block, shifting the output pixel by one (with
    // wrap-around in each spatial dim) shifts the input pixel the same way: the same colour
    let shift = |p: u32, dy: u32, dx: u32| ((p / 8 + dy) % 8) * 8 + (p % 8 + dx) % 8;
    let circulant = |png: &Png| {
        (0..3).all(|o| {
            (0..2).all(|i| {
                (0..64).all(|r| {
                    (0..64).all(|c| {
                        let at = |r: u32, c: u32| png.at(2 * (64 * i + c) + 1, 2 * (64 * o + r) + 1);
                        [(0, 1), (1, 0), (1, 1)]
                            .iter()
                            .all(|&(dy, dx)| at(r, c) == at(shift(r, dy, dx), shift(c, dy, dx)))
                    })
                })
            })
        })
    };
    assert!(circulant(&circ));
    assert!(!circulant(&zero), "zero padding is Toeplitz, not circulant: the check must be able to fail");
    // every row of a circular layer has all 9 taps in each of the 2 input channels
    let per_row = (0..128).filter(|&c| circ.at(2 * c + 1, 1) != WHITE).count();
    assert_eq!(per_row, 18);
}

#[test]
fn strided_layer_and_labelled_picture() {
    let dir = Dir::new();
    // stride 2: outputs 4x4, so 3 x 16 rows; lines after rows 16 and 32 (pixels 32, 64)
    let png = spy_2_to_3(&dir, "S.png", &["--padding", "1", "--stride", "2"], 48);
    let line_rows: Vec<u32> = (0..png.height).filter(|&y| png.row_is(y, LINE)).collect();
    assert_eq!(line_rows, [32, 64]);
    // with labels, --size is the longer side; the other follows the matrix (128 / 192 of it)
    let w = dir.s("w.npy");
    let out = dir.s("L.png");
    let json =
        ok(&["spy", "--weight", &w, "--input-shape", "2,8,8", "--padding", "1", "--size", "600", "-o", &out, "--json"]);
    let png = Png::read(&dir.p("L.png"));
    assert_eq!((png.width, png.height), (400, 600));
    assert!(json.contains("\"rows\":192") && json.contains("\"cols\":128") && json.contains("\"width\":400"), "{json}");
    assert!(png.count(LINE) > 600, "block lines drawn");
    assert!(png.count([40, 40, 40]) > 500, "frame and text drawn");
}

#[test]
fn a_big_layer_is_pooled_without_forming_the_matrix() {
    // Conv2d(8, 8, 3, padding=1) on 8x96x96: 73,728 x 73,728 (43 GB dense in f64), 5.3M entries
    let dir = Dir::new();
    let w = dir.weight("w.npy", &[8, 8, 3, 3]);
    let out = dir.s("B.png");
    let json = ok(&[
        "spy",
        "--weight",
        &w,
        "--input-shape",
        "8,96,96",
        "--padding",
        "1",
        "--size",
        "200",
        "--no-labels",
        "-o",
        &out,
        "--json",
    ]);
    assert!(json.contains("\"entries_per_pixel\":[368.64,368.64]"), "{json}");
    assert!(json.contains(&format!("\"nnz\":{}", 8 * 8 * (9 * 94 * 94 + 4 * 6 * 94 + 4 * 4))), "{json}");
    let png = Png::read(&dir.p("B.png"));
    assert_eq!((png.width, png.height), (200, 200));
    // 8 blocks of 25 pixels: all 7 boundaries drawn; the band stays near the diagonal
    let line_rows: Vec<u32> = (0..200).filter(|&y| png.row_is(y, LINE)).collect();
    assert_eq!(line_rows, [25, 50, 75, 100, 125, 150, 175]);
    assert_ne!(png.at(1, 1), WHITE);
    assert_eq!(png.at(12, 1), WHITE);
}

#[test]
fn svd_plot_draws_values_and_the_circular_bound() {
    let dir = Dir::new();
    let w = dir.weight("w.npy", &[3, 2, 3, 3]);
    let out = dir.s("S.png");
    let json =
        ok(&["svd", "--weight", &w, "--input-shape", "2,8,8", "--padding", "1", "--all", "--plot", &out, "--json"]);
    assert!(json.contains("\"circular_upper_bound\":"), "{json}");
    assert!(!json.contains("\"circular_upper_bound\":null"), "zero padding reports a bound: {json}");
    let png = Png::read(&dir.p("S.png"));
    assert_eq!((png.width, png.height), (800, 500));
    // the bound: a dashed horizontal line (two pixel rows), above the values; the values: a line
    let bound_rows: Vec<u32> =
        (0..png.height).filter(|&y| (0..png.width).filter(|&x| png.at(x, y) == LINE).count() > 400).collect();
    assert_eq!(bound_rows.len(), 2, "{bound_rows:?}");
    let series_top = (0..png.height).find(|&y| (0..png.width).any(|x| png.at(x, y) == SERIES)).unwrap();
    assert!(series_top >= bound_rows[0], "sigma_1 <= the bound: {series_top} vs {bound_rows:?}");
    assert!(png.count(SERIES) > 700);
    // a circular layer reports no bound: no dashed line
    let out = dir.s("C.png");
    ok(&[
        "svd",
        "--weight",
        &w,
        "--input-shape",
        "2,8,8",
        "--padding",
        "1",
        "--padding-mode",
        "circular",
        "--all",
        "--plot",
        &out,
    ]);
    let png = Png::read(&dir.p("C.png"));
    assert!((0..png.height).all(|y| (0..png.width).filter(|&x| png.at(x, y) == LINE).count() < 100));
}

#[test]
fn bad_input_gets_one_error_line_and_no_file() {
    let dir = Dir::new();
    let w = dir.weight("w.npy", &[3, 2, 3, 3]);
    let (a_jpg, a_png, s_jpg) = (dir.s("A.jpg"), dir.s("A.png"), dir.s("S.jpg"));
    let base = ["--weight", w.as_str(), "--input-shape", "2,8,8"];
    fn cat<'a>(a: &[&'a str], b: &[&'a str], c: &[&'a str]) -> Vec<&'a str> {
        [a, b, c].concat()
    }
    bad(&cat(&["spy"], &base, &["-o", &a_jpg]), &[".png"]);
    bad(&cat(&["spy"], &base, &["-o", &a_png, "--size", "5"]), &["16 to 16384"]);
    bad(&cat(&["spy"], &base, &["-o", &a_png, "--size", "big"]), &["WIDTHxHEIGHT"]);
    bad(&cat(&["spy"], &base, &["-o", &a_png, "--stride", "0"]), &["stride"]);
    let svd = cat(&["svd"], &base, &["--all", "--plot", &s_jpg]);
    bad(&svd, &[".png"]);
    assert_eq!(dir.files(), ["w.npy"]);
}

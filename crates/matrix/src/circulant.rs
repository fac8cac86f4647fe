//! Circulant structure: MATLAB's `cconv`, and circular convolutions as (multi-level, block) circulant
//! operators diagonalised by the DFT.

use convmat_numeric::Scalar;
use convmat_shape::{PaddingMode, MAX_RANK};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use rustfft::num_complex::Complex64;
use rustfft::FftPlanner;

use crate::{Conv, MatrixError};

/// MATLAB's `cconv(a, b, n)`: the circular convolution of `a` and `b` modulo `n`: the linear
/// convolution (length `len(a) + len(b) - 1`, MATLAB's default `n`) wrapped around and summed when `n`
/// is smaller, zero-extended when larger.
///
/// ```
/// use convmat_matrix::cconv;
/// // MATLAB documentation: cconv([2 1 2 1], [1 2 3 4], 4) = [14 16 14 16]
/// assert_eq!(cconv(&[2i32, 1, 2, 1], &[1, 2, 3, 4], Some(4)), vec![14i64, 16, 14, 16]);
/// ```
pub fn cconv<T: Scalar>(a: &[T], b: &[T], n: Option<usize>) -> Vec<T::Acc> {
    let full = (a.len() + b.len()).saturating_sub(1);
    let n = n.unwrap_or(full);
    let mut out = vec![T::ACC_ZERO; n];
    if n == 0 {
        return out;
    }
    for (i, &x) in a.iter().enumerate() {
        for (j, &y) in b.iter().enumerate() {
            let k = (i + j) % n;
            out[k] = T::mul_acc(out[k], x, y);
        }
    }
    out
}

/// The `n x len_a` matrix `C` with `C·a = cconv(a, b, n)` (entries of `b` that wrap onto the same
/// position are summed).
pub fn cconv_matrix<T: Scalar>(b: &[T], len_a: usize, n: Option<usize>) -> Array2<T> {
    let n = n.unwrap_or((len_a + b.len()).saturating_sub(1));
    let mut c = Array2::from_elem((n, len_a), T::ZERO);
    if n == 0 {
        return c;
    }
    for j in 0..len_a {
        for (t, &v) in b.iter().enumerate() {
            let i = (j + t) % n;
            c[[i, j]] = c[[i, j]].add(v);
        }
    }
    c
}

/// A circular-padded convolution whose output grid is its input grid divided by the stride, as the
/// block-circulant operator it is: after a polyphase split of the input (the stride folded into
/// `C_in * prod(stride)` channels on the grid `m = input / stride`), the DFT over `m` turns it into one
/// small `C_out x C_in·prod(stride)` block per frequency and group. Stores the kernel and the grid;
/// [`apply`](Self::apply) runs by FFT, [`block`](Self::block) gives the blocks whose singular values are
/// the layer's, and the [`Conv`] it was made from materialises dense or CSR on request.
#[derive(Clone, Debug)]
pub struct Circulant {
    conv: Conv<f64>,
    m: [usize; MAX_RANK],
    phases: [usize; MAX_RANK],
    /// Per axis and tap: (phase, shift in units of the stride) of the offset `t*d - pad`.
    shifts: [Vec<(usize, isize)>; MAX_RANK],
}

impl Circulant {
    /// The circulant structure of `conv`.
    ///
    /// # Errors
    /// A layer that is not circular-padded, is transposed, or whose output is not input / stride in
    /// every dimension (the error says which).
    pub fn new(conv: &Conv<f64>) -> Result<Self, MatrixError> {
        let geo = conv.geometry();
        let spec = geo.spec();
        let why = |reason: String| Err(MatrixError::NotCircular { reason });
        if spec.is_transposed() {
            return why("the layer is transposed".into());
        }
        if spec.padding_mode() != PaddingMode::Circular {
            return why(format!("padding_mode is '{}'", spec.padding_mode()));
        }
        let lead = MAX_RANK - spec.rank();
        let mut m = [1; MAX_RANK];
        let mut phases = [1; MAX_RANK];
        let mut shifts: [Vec<(usize, isize)>; MAX_RANK] = [vec![(0, 0)], vec![(0, 0)], vec![(0, 0)]];
        for d in 0..spec.rank() {
            let (n, s, o) = (geo.input_spatial()[d], spec.stride()[d], geo.output_spatial()[d]);
            if n % s != 0 || o != n / s {
                return why(format!("dim {d}: input {n}, stride {s}, output {o}"));
            }
            m[lead + d] = n / s;
            phases[lead + d] = s;
            shifts[lead + d] = (0..spec.kernel_size()[d])
                .map(|t| {
                    let u = (t * spec.dilation()[d]) as isize - geo.pad_begin()[d] as isize;
                    (u.rem_euclid(s as isize) as usize, u.div_euclid(s as isize))
                })
                .collect();
        }
        Ok(Self { conv: conv.clone(), m, phases, shifts })
    }

    /// The layer (for dense / CSR).
    pub fn conv(&self) -> &Conv<f64> {
        &self.conv
    }
    /// The frequency grid (input / stride), three axes, leading ones for lower ranks.
    pub fn grid(&self) -> [usize; MAX_RANK] {
        self.m
    }
    /// Number of frequencies.
    pub fn frequencies(&self) -> usize {
        self.m.iter().product()
    }
    /// Polyphase channels per input channel: `prod(stride)`.
    pub fn phases(&self) -> usize {
        self.phases.iter().product()
    }

    /// Flat index of the frequency `-f`.
    pub fn conjugate(&self, f: usize) -> usize {
        let [m0, m1, m2] = self.m;
        let (a, b, c) = (f / (m1 * m2), f / m2 % m1, f % m2);
        ((m0 - a) % m0 * m1 + (m1 - b) % m1) * m2 + (m2 - c) % m2
    }

    /// The block `K[f]` of group `g`: `C_out/g` rows, `C_in/g * prod(stride)` columns (input channel
    /// major, phase minor), row-major. `y_f = K[f] x_f` for the DFTs over the grid of the output and of
    /// the polyphase input, with the DFT convention `X[f] = sum_o x[o] e^{-2 pi i f·o / m}`.
    pub fn block(&self, f: usize, g: usize) -> Vec<Complex64> {
        let spec = self.conv.geometry().spec();
        let groups = spec.groups();
        let (cin_g, cout_g) = (spec.in_channels() / groups, spec.out_channels() / groups);
        let [m0, m1, m2] = self.m;
        let fr = [f / (m1 * m2), f / m2 % m1, f % m2];
        let [_, p1, p2] = self.phases;
        let nphase = self.phases();
        let ks = [self.shifts[0].len(), self.shifts[1].len(), self.shifts[2].len()];
        let tw: Vec<Vec<(usize, Complex64)>> = (0..MAX_RANK)
            .map(|a| {
                let m = [m0, m1, m2][a] as f64;
                self.shifts[a]
                    .iter()
                    .map(|&(p, q)| {
                        (p, Complex64::from_polar(1.0, 2.0 * std::f64::consts::PI * fr[a] as f64 * q as f64 / m))
                    })
                    .collect()
            })
            .collect();
        let w = self.conv.weight();
        let klen = ks[0] * ks[1] * ks[2];
        let cols = cin_g * nphase;
        let mut k = vec![Complex64::new(0.0, 0.0); cout_g * cols];
        for co in 0..cout_g {
            for cl in 0..cin_g {
                let base = ((g * cout_g + co) * cin_g + cl) * klen;
                for (t0, &(ph0, e0)) in tw[0].iter().enumerate() {
                    for (t1, &(ph1, e1)) in tw[1].iter().enumerate() {
                        let e01 = e0 * e1;
                        for (t2, &(ph2, e2)) in tw[2].iter().enumerate() {
                            let wv = w[base + (t0 * ks[1] + t1) * ks[2] + t2];
                            k[co * cols + cl * nphase + (ph0 * p1 + ph1) * p2 + ph2] += e01 * e2 * wv;
                        }
                    }
                }
            }
        }
        k
    }

    /// `A·x` for a batch `(batch, cols)` by FFT: polyphase split, DFT over the grid, one block product
    /// per frequency, inverse DFT. `O(N log N)` per channel instead of `O(N k)`.
    ///
    /// # Errors
    /// `x` without `cols` columns.
    pub fn apply(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>, MatrixError> {
        let conv = &self.conv;
        if x.ncols() != conv.cols() {
            return Err(MatrixError::Dimension {
                what: "apply input",
                expected: format!("(batch, {})", conv.cols()),
                got: x.shape().to_vec(),
            });
        }
        let spec = conv.geometry().spec();
        let (cin, cout, groups) = (spec.in_channels(), spec.out_channels(), spec.groups());
        let (cin_g, cout_g) = (cin / groups, cout / groups);
        let (nf, np) = (self.frequencies(), self.phases());
        let [m0, m1, m2] = self.m;
        let [s0, s1, s2] = self.phases;
        let n = [m0 * s0, m1 * s1, m2 * s2];
        let blocks: Vec<Vec<Vec<Complex64>>> =
            (0..nf).into_par_iter().map(|f| (0..groups).map(|g| self.block(f, g)).collect()).collect();
        let mut out = Array2::zeros((x.nrows(), conv.rows()));
        for (xi, mut yi) in x.outer_iter().zip(out.outer_iter_mut()) {
            // polyphase channels (ci, p) on the m grid, transformed
            let mut xf: Vec<Vec<Complex64>> = (0..cin * np)
                .into_par_iter()
                .map(|cp| {
                    let (ci, p) = (cp / np, cp % np);
                    let ph = [p / (s1 * s2), p / s2 % s1, p % s2];
                    let mut buf = vec![Complex64::new(0.0, 0.0); nf];
                    for a in 0..m0 {
                        for b in 0..m1 {
                            for c in 0..m2 {
                                let src =
                                    ((ci * n[0] + a * s0 + ph[0]) * n[1] + b * s1 + ph[1]) * n[2] + c * s2 + ph[2];
                                buf[(a * m1 + b) * m2 + c] = Complex64::new(xi[src], 0.0);
                            }
                        }
                    }
                    fft3(&mut buf, self.m, false);
                    buf
                })
                .collect();
            let yf: Vec<Vec<Complex64>> = (0..cout)
                .into_par_iter()
                .map(|co| {
                    let (g, cl) = (co / cout_g, co % cout_g);
                    let cols = cin_g * np;
                    let mut buf: Vec<Complex64> = (0..nf)
                        .map(|f| {
                            let k = &blocks[f][g][cl * cols..(cl + 1) * cols];
                            k.iter().enumerate().map(|(j, kv)| kv * xf[g * cols + j][f]).sum()
                        })
                        .collect();
                    fft3(&mut buf, self.m, true);
                    buf
                })
                .collect();
            xf.clear();
            for (co, buf) in yf.iter().enumerate() {
                for (o, v) in buf.iter().enumerate() {
                    yi[co * nf + o] = v.re / nf as f64;
                }
            }
        }
        Ok(out)
    }
}

/// In-place 3-d DFT (unnormalised) of a row-major `dims` array; `inverse` for the conjugate transform.
fn fft3(data: &mut [Complex64], dims: [usize; MAX_RANK], inverse: bool) {
    let mut planner = FftPlanner::<f64>::new();
    let strides = [dims[1] * dims[2], dims[2], 1];
    let mut line = Vec::new();
    for axis in 0..MAX_RANK {
        let len = dims[axis];
        if len <= 1 {
            continue;
        }
        let fft = if inverse { planner.plan_fft_inverse(len) } else { planner.plan_fft_forward(len) };
        let others: Vec<usize> = (0..data.len()).filter(|i| (i / strides[axis]).is_multiple_of(len)).collect();
        for start in others {
            line.clear();
            line.extend((0..len).map(|k| data[start + k * strides[axis]]));
            fft.process(&mut line);
            for (k, v) in line.iter().enumerate() {
                data[start + k * strides[axis]] = *v;
            }
        }
    }
}

//! A block's exact affine map, in one of the forms a reader builds it in, applied to a batch through
//! convmat's [`Operator`] (convolutions) or a product of its own form.

// `Float` gives `+` and `*`, not `+=`
#![allow(clippy::assign_op_pattern)]

use convmat_matrix::{ConvLayer, Float, MatrixError, MatrixOptions, Operator};
use sprs::CsMatI;

/// The sparse matrix type blocks are exported in: `f64` values, `u32` column indices, `usize` row offsets.
pub type Csr = CsMatI<f64, u32, usize>;

/// One block's map `y = A · x + b` on one flattened sample (row-major, batch dimension dropped).
// one map exists at a time (built when a run reaches its block): the size of the Conv variant costs nothing
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum BlockMap {
    /// A convolution, then per-output `scale` and `shift` (pool divisors, a folded BatchNorm or
    /// constant Add / Mul): `y = scale ⊙ (conv(x) + bias) + shift`.
    Conv {
        /// The layer (weights and bias resolved on the input shape).
        layer: ConvLayer,
        /// One factor per output, if any.
        scale: Option<Vec<f64>>,
        /// One offset per output, if any.
        shift: Option<Vec<f64>>,
    },
    /// `reps` copies of one dense `rows x cols` matrix (row-major) along the diagonal, plus `bias`
    /// (`rows · reps` values): Gemm (`reps = 1`) and MatMul on the last axis.
    Dense {
        /// The matrix, row-major.
        weight: Vec<f64>,
        /// Its rows.
        rows: usize,
        /// Its columns.
        cols: usize,
        /// How many copies.
        reps: usize,
        /// One value per output.
        bias: Vec<f64>,
    },
    /// Any sparse matrix (CSR) and bias.
    Sparse {
        /// The matrix.
        matrix: Csr,
        /// One value per row.
        bias: Vec<f64>,
    },
    /// `y = scale ⊙ x + shift` (an unfolded BatchNorm, a constant Add / Mul).
    Diagonal {
        /// One factor per element.
        scale: Vec<f64>,
        /// One offset per element.
        shift: Vec<f64>,
    },
}

impl BlockMap {
    /// Outputs per sample.
    pub fn rows(&self) -> usize {
        match self {
            Self::Conv { layer, .. } => layer.geometry().rows(),
            Self::Dense { rows, reps, .. } => rows * reps,
            Self::Sparse { matrix, .. } => matrix.rows(),
            Self::Diagonal { scale, .. } => scale.len(),
        }
    }

    /// Inputs per sample.
    pub fn cols(&self) -> usize {
        match self {
            Self::Conv { layer, .. } => layer.geometry().cols(),
            Self::Dense { cols, reps, .. } => cols * reps,
            Self::Sparse { matrix, .. } => matrix.cols(),
            Self::Diagonal { scale, .. } => scale.len(),
        }
    }

    /// The map followed by `y -> scale ⊙ y + shift` (one factor and offset per output): a folded
    /// BatchNorm or constant Add / Sub / Mul / Div.
    ///
    /// # Panics
    /// If `scale` or `shift` does not hold [`rows`](Self::rows) values (a caller bug).
    #[track_caller]
    pub fn then_scale(self, scale: &[f64], shift: &[f64]) -> Self {
        let rows = self.rows();
        assert!(
            scale.len() == rows && shift.len() == rows,
            "{} scales and {} shifts for {rows} outputs",
            scale.len(),
            shift.len()
        );
        let compose = |old: Option<Vec<f64>>, new: &[f64], mul: &[f64], add: bool| -> Vec<f64> {
            // scale: s' = s ⊙ s_old; shift: t' = s ⊙ t_old + t
            (0..rows)
                .map(|r| {
                    old.as_ref().map_or(if add { 0.0 } else { 1.0 }, |o| o[r]) * mul[r] + if add { new[r] } else { 0.0 }
                })
                .collect()
        };
        match self {
            Self::Conv { layer, scale: s0, shift: t0 } => Self::Conv {
                layer,
                scale: Some(compose(s0, scale, scale, false)),
                shift: Some(compose(t0, shift, scale, true)),
            },
            Self::Dense { mut weight, rows: r, cols, reps, bias } if (0..rows).all(|e| scale[e] == scale[e % r]) => {
                for (k, w) in weight.iter_mut().enumerate() {
                    *w *= scale[k / cols];
                }
                let bias = (0..rows).map(|e| bias[e] * scale[e] + shift[e]).collect();
                Self::Dense { weight, rows: r, cols, reps, bias }
            }
            Self::Diagonal { scale: s0, shift: t0 } => Self::Diagonal {
                scale: s0.iter().zip(scale).map(|(a, b)| a * b).collect(),
                shift: (0..rows).map(|r| t0[r] * scale[r] + shift[r]).collect(),
            },
            other => {
                let (m, b) = other.to_csr().expect("dense and sparse blocks always convert");
                let bias = (0..rows).map(|r| b[r] * scale[r] + shift[r]).collect();
                Self::Sparse { matrix: scale_rows(m, scale), bias }
            }
        }
    }

    /// `A · x + b` for `x` holding whole samples of [`cols`](Self::cols) values, computed in `T`.
    ///
    /// # Errors
    /// `x` not a whole number of samples (or a convolution's own checks).
    pub fn apply<T: Float>(&self, x: &[T]) -> Result<Vec<T>, MatrixError> {
        let (rows, cols) = (self.rows(), self.cols());
        if cols == 0 || !x.len().is_multiple_of(cols) {
            return Err(MatrixError::Dimension {
                what: "block input",
                expected: format!("whole samples of {cols} values"),
                got: vec![x.len()],
            });
        }
        let n = x.len() / cols;
        let t = T::from_f64;
        let mut y = vec![T::ZERO; n * rows];
        match self {
            Self::Conv { layer, scale, shift } => {
                let conv = layer.conv::<T>()?;
                Operator::new(&conv).apply(x, &mut y)?;
                let bias = layer.bias().map(|b| {
                    let per = rows / b.len().max(1);
                    (0..rows).map(|r| b[r / per]).collect::<Vec<f64>>()
                });
                // y = s ⊙ (A x) + (s ⊙ b + t), per output row
                let s: Option<Vec<T>> = scale.as_ref().map(|s| s.iter().map(|&v| t(v)).collect());
                let off: Vec<f64> = (0..rows)
                    .map(|r| {
                        let b = bias.as_ref().map_or(0.0, |b| b[r]);
                        scale.as_ref().map_or(b, |s| s[r] * b) + shift.as_ref().map_or(0.0, |t| t[r])
                    })
                    .collect();
                let off: Vec<T> = off.into_iter().map(t).collect();
                for sample in y.chunks_mut(rows) {
                    match &s {
                        Some(s) => sample.iter_mut().zip(s).zip(&off).for_each(|((v, &s), &o)| *v = *v * s + o),
                        None => sample.iter_mut().zip(&off).for_each(|(v, &o)| *v = *v + o),
                    }
                }
            }
            Self::Dense { weight, cols: c, bias, .. } => {
                let w: Vec<T> = weight.iter().map(|&v| t(v)).collect();
                // every sample's `reps` rows of `c` values through one GEMM
                convmat_matrix::matmul_transposed(x, &w, *c, &mut y)?;
                let b: Vec<T> = bias.iter().map(|&v| t(v)).collect();
                for sample in y.chunks_mut(rows) {
                    sample.iter_mut().zip(&b).for_each(|(v, &b)| *v = *v + b);
                }
            }
            Self::Sparse { matrix, bias } => {
                let data: Vec<T> = matrix.data().iter().map(|&v| t(v)).collect();
                let (ip, idx) = (matrix.indptr(), matrix.indices());
                let ip = ip.raw_storage();
                for (xs, ys) in x.chunks(cols).zip(y.chunks_mut(rows)) {
                    for (r, out) in ys.iter_mut().enumerate() {
                        let mut acc = T::ZERO;
                        for e in ip[r]..ip[r + 1] {
                            acc = acc + data[e] * xs[idx[e] as usize];
                        }
                        *out = acc + t(bias[r]);
                    }
                }
            }
            Self::Diagonal { scale, shift } => {
                let (s, o): (Vec<T>, Vec<T>) =
                    (scale.iter().map(|&v| t(v)).collect(), shift.iter().map(|&v| t(v)).collect());
                for (xs, ys) in x.chunks(cols).zip(y.chunks_mut(rows)) {
                    for e in 0..rows {
                        ys[e] = xs[e] * s[e] + o[e];
                    }
                }
            }
        }
        Ok(y)
    }

    /// The explicit matrix (CSR, the weights' explicit zeros kept) and bias, in `f64`.
    ///
    /// # Errors
    /// A convolution whose matrix does not fit the index types.
    pub fn to_csr(&self) -> Result<(Csr, Vec<f64>), MatrixError> {
        let (rows, cols) = (self.rows(), self.cols());
        Ok(match self {
            Self::Conv { layer, scale, shift } => {
                let conv = layer.conv::<f64>()?;
                let m: Csr = conv.csr_with::<u32, usize>(&MatrixOptions::default())?;
                let mut bias = conv.expanded_bias().unwrap_or_else(|| vec![0.0; rows]);
                let m = match scale {
                    Some(s) => {
                        bias.iter_mut().zip(s).for_each(|(b, s)| *b *= s);
                        scale_rows(m, s)
                    }
                    None => m,
                };
                if let Some(t) = shift {
                    bias.iter_mut().zip(t).for_each(|(b, t)| *b += t);
                }
                (m, bias)
            }
            Self::Dense { weight, rows: r, cols: c, reps, bias } => {
                let mut indptr = Vec::with_capacity(rows + 1);
                let mut indices = Vec::with_capacity(rows * c);
                indptr.push(0);
                for rep in 0..*reps {
                    for _ in 0..*r {
                        indices.extend((0..*c).map(|j| (rep * c + j) as u32));
                        indptr.push(indices.len());
                    }
                }
                let data: Vec<f64> = (0..*reps).flat_map(|_| weight.iter().copied()).collect();
                (CsMatI::new((rows, cols), indptr, indices, data), bias.clone())
            }
            Self::Sparse { matrix, bias } => (matrix.clone(), bias.clone()),
            Self::Diagonal { scale, shift } => {
                let m = CsMatI::new((rows, rows), (0..=rows).collect(), (0..rows as u32).collect(), scale.clone());
                (m, shift.clone())
            }
        })
    }
}

fn scale_rows(m: Csr, scale: &[f64]) -> Csr {
    let (shape, indptr, indices, mut data) =
        (m.shape(), m.indptr().raw_storage().to_vec(), m.indices().to_vec(), m.data().to_vec());
    for r in 0..shape.0 {
        for v in &mut data[indptr[r]..indptr[r + 1]] {
            *v *= scale[r];
        }
    }
    CsMatI::new(shape, indptr, indices, data)
}

//! The obviously-correct reference: convolution by nested loops over an explicitly padded input,
//! independent of the tap map, for tests.

use convmat_numeric::{Scalar, SeededRng};
use convmat_shape::{Geometry, MAX_RANK};
use sprs::{CsMatI, SpIndex};

use crate::{Conv, MatrixError};

/// How far a built matrix is from direct convolution: the result of [`verify`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Verification {
    /// `max |A·x + b - conv(x)|` over the inputs.
    pub max_error: f64,
    /// `max |conv(x)|` over the inputs.
    pub max_reference: f64,
}

impl Verification {
    /// The error relative to the largest reference value.
    pub fn relative_error(&self) -> f64 {
        self.max_error / self.max_reference.max(f64::MIN_POSITIVE)
    }
}

/// `samples` random inputs of `len` values each, uniform in `[-1, 1)`, drawn from `rng` (what
/// `convmat check` compares a matrix on).
///
/// # Errors
/// [`MatrixError::Memory`] when `samples × len` values would not fit in the memory available.
pub fn random_inputs<T: Scalar>(len: usize, samples: usize, rng: &mut SeededRng) -> Result<Vec<Vec<T>>, MatrixError> {
    let count = len.saturating_mul(samples);
    crate::check_memory(|| format!("{samples} random inputs of {len} values"), count, std::mem::size_of::<T>())?;
    Ok((0..samples).map(|_| (0..len).map(|_| T::from_f64(rng.uniform())).collect()).collect())
}

/// Checks a built sparse matrix (rows in CSR order) against direct convolution: `A·x + b` against
/// [`direct_conv`] in `f64` on the same `T` values of the weights, for every input sample in `xs`.
///
/// # Errors
/// An input sample of the wrong length.
pub fn verify<T: Scalar, Iptr: SpIndex>(
    conv: &Conv<T>,
    a: &CsMatI<T, u32, Iptr>,
    xs: &[Vec<T>],
) -> Result<Verification, MatrixError> {
    let to64 = |v: &[T]| v.iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
    let (w64, b64) = (to64(conv.weight()), conv.bias().map(to64));
    let bias = conv.expanded_bias().map(|b| to64(&b));
    let (mut max_error, mut max_reference) = (0f64, 0f64);
    for x in xs {
        let reference = direct_conv(conv.geometry(), &w64, b64.as_deref(), &to64(x))?;
        for (row, vec) in a.outer_iterator().enumerate() {
            let y = vec.iter().map(|(c, v)| v.to_f64() * x[c].to_f64()).sum::<f64>()
                + bias.as_ref().map_or(0.0, |b| b[row]);
            max_error = max_error.max((y - reference[row]).abs());
            max_reference = max_reference.max(reference[row].abs());
        }
    }
    Ok(Verification { max_error, max_reference })
}

/// Pads a spatial size to three axes with leading 1s.
fn three(v: &[usize], fill: usize) -> [usize; MAX_RANK] {
    let mut out = [fill; MAX_RANK];
    out[MAX_RANK - v.len()..].copy_from_slice(v);
    out
}

/// One sample through the layer by direct loops: `x` is `(C_in, *in)` flattened, the result
/// `(C_out, *out)` flattened, accumulated in [`Scalar::Acc`], bias included.
///
/// A convolution pads the input explicitly (each padded position copied from the input through the
/// padding mode), then slides the kernel; a transposed convolution scatters each input value times the
/// kernel into the output, as its definition reads.
///
/// # Errors
/// Weight, bias or input of the wrong length.
pub fn direct_conv<T: Scalar>(
    geometry: &Geometry,
    weight: &[T],
    bias: Option<&[T]>,
    x: &[T],
) -> Result<Vec<T::Acc>, MatrixError> {
    let spec = geometry.spec();
    let wshape = spec.weight_shape();
    if weight.len() != wshape.iter().product::<usize>() {
        return Err(MatrixError::WeightLen { expected: wshape.iter().product(), got: weight.len(), shape: wshape });
    }
    if let Some(b) = bias {
        spec.check_bias_len(b.len())?;
    }
    if x.len() != geometry.cols() {
        return Err(MatrixError::Dimension {
            what: "input",
            expected: format!("{:?} ({} values)", geometry.input_shape(), geometry.cols()),
            got: vec![x.len()],
        });
    }
    let k = three(spec.kernel_size(), 1);
    let s = three(spec.stride(), 1);
    let d = three(spec.dilation(), 1);
    let pb = three(geometry.pad_begin(), 0);
    let pe = three(geometry.pad_end(), 0);
    let n = three(geometry.input_spatial(), 1);
    let o = three(geometry.output_spatial(), 1);
    let (cin, cout, g) = (spec.in_channels(), spec.out_channels(), spec.groups());
    let klen = k.iter().product::<usize>();
    let mut y = vec![T::ACC_ZERO; geometry.rows()];
    let olen: usize = o.iter().product();
    if let Some(b) = bias {
        for (i, v) in y.iter_mut().enumerate() {
            *v = b[i / olen].widen();
        }
    }
    if !spec.is_transposed() {
        let (cin_g, cout_g) = (cin / g, cout / g);
        // the padded input, built element by element through the padding mode
        let p: [usize; MAX_RANK] = std::array::from_fn(|a| n[a] + pb[a] + pe[a]);
        let mode = spec.padding_mode();
        let mut padded = vec![None; cin * p[0] * p[1] * p[2]];
        for c in 0..cin {
            for i0 in 0..p[0] {
                for i1 in 0..p[1] {
                    for i2 in 0..p[2] {
                        let src = [i0, i1, i2];
                        let mut idx = c;
                        let mut inside = true;
                        for a in 0..MAX_RANK {
                            match mode.remap(src[a] as isize - pb[a] as isize, n[a]) {
                                Some(v) => idx = idx * n[a] + v,
                                None => inside = false,
                            }
                        }
                        padded[((c * p[0] + i0) * p[1] + i1) * p[2] + i2] = inside.then(|| x[idx]);
                    }
                }
            }
        }
        for co in 0..cout {
            let grp = co / cout_g;
            for o0 in 0..o[0] {
                for o1 in 0..o[1] {
                    for o2 in 0..o[2] {
                        let mut acc = y[((co * o[0] + o0) * o[1] + o1) * o[2] + o2];
                        for cl in 0..cin_g {
                            let ci = grp * cin_g + cl;
                            for t0 in 0..k[0] {
                                for t1 in 0..k[1] {
                                    for t2 in 0..k[2] {
                                        let q = [o0 * s[0] + t0 * d[0], o1 * s[1] + t1 * d[1], o2 * s[2] + t2 * d[2]];
                                        let v = padded[((ci * p[0] + q[0]) * p[1] + q[1]) * p[2] + q[2]];
                                        let w = weight[(co * cin_g + cl) * klen + (t0 * k[1] + t1) * k[2] + t2];
                                        if let Some(v) = v {
                                            acc = T::mul_acc(acc, w, v);
                                        }
                                    }
                                }
                            }
                        }
                        y[((co * o[0] + o0) * o[1] + o1) * o[2] + o2] = acc;
                    }
                }
            }
        }
    } else {
        // y[cg, i*s - p + t*d] += x[cw, i] * w[cw, cg_local, t], kept where it lands inside the output
        let (cw_g, cg_g) = (cin / g, cout / g);
        for cw in 0..cin {
            let grp = cw / cw_g;
            for i0 in 0..n[0] {
                for i1 in 0..n[1] {
                    for i2 in 0..n[2] {
                        let xv = x[((cw * n[0] + i0) * n[1] + i1) * n[2] + i2];
                        for cl in 0..cg_g {
                            let cg = grp * cg_g + cl;
                            for t0 in 0..k[0] {
                                for t1 in 0..k[1] {
                                    for t2 in 0..k[2] {
                                        let i = [i0, i1, i2];
                                        let t = [t0, t1, t2];
                                        let q: Vec<isize> = (0..MAX_RANK)
                                            .map(|a| (i[a] * s[a] + t[a] * d[a]) as isize - pb[a] as isize)
                                            .collect();
                                        if (0..MAX_RANK).any(|a| q[a] < 0 || q[a] >= o[a] as isize) {
                                            continue;
                                        }
                                        let oi =
                                            ((cg * o[0] + q[0] as usize) * o[1] + q[1] as usize) * o[2] + q[2] as usize;
                                        let w = weight[(cw * cg_g + cl) * klen + (t0 * k[1] + t1) * k[2] + t2];
                                        y[oi] = T::mul_acc(y[oi], w, xv);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(y)
}

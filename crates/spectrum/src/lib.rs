//! Singular values of convolution layers: the spectral norm (Lipschitz constant), the top `k`, or all.
//!
//! - [`fft_singular_values`]: **exact, all** singular values of a circular-padded convolution by the
//!   method of Sedghi, Gupta and Long (ICLR 2019): the layer is block-diagonalised by the DFT over the
//!   grid, leaving one small `C_out x C_in` matrix per frequency. Groups split each block further.
//!   Strides that divide the grid are handled by a polyphase decomposition: the stride is folded into
//!   the input channels (`C_in * prod(stride)` of them, on the grid divided by the stride), which turns
//!   the strided layer into a stride-1 circular one.
//! - [`lanczos`]: the top `k` singular values of **any** layer (every padding mode, stride, dilation,
//!   groups, transposed) by Golub-Kahan-Lanczos bidiagonalisation on the matrix-free operator (shifted
//!   GEMMs for stride-1 zero padding, else unfold + GEMM; faer), until each wanted value's residual
//!   `||Aᵀu - σv||` is below `tol * σ_1`. The norm: single-vector, started at the kernel's top Fourier
//!   mode; `k > 1`: block Lanczos with full reorthogonalisation, which returns repeated values.
//! - [`certified_norm`]: the spectral norm with a certified interval `lower <= σ_1 <= upper`: per-index
//!   upper bounds by Cauchy interlacing with the circular convolutions a zero-padded layer is a
//!   sub-block of ([`interlacing_upper_bounds`]), which separate the top cluster, then the explicit
//!   residuals of block Lanczos' Ritz vectors (Davis-Kahan, Weyl, Kato-Temple). [`Certificate`] names
//!   what each interval rests on; reflect / replicate padding get the residual-only statement.
//! - [`dense_singular_values`]: all singular values of a small layer through its dense matrix.
//! - [`NetworkNorms`]: a network's affine layers with their certified norms and the product of the
//!   upper bounds (AutoLip); [`sequential_norms`] for a `Sequential(...)` chain with its `state_dict`.
//! - [`singular_values`]: picks among them ([`Method::Auto`]) and reports which, with the iterations,
//!   the residual and, for zero padding, the norm of the circular convolution on the padded grid, which
//!   bounds the layer's norm from above (the layer is a sub-block of it).
//!
//! Dense linear algebra is faer's (pure Rust, no system BLAS/LAPACK).
//!
//! ```
//! use convmat_matrix::Conv;
//! use convmat_shape::{ConvSpec, Geometry, Padding, PaddingMode};
//! use convmat_spectrum::{fft_singular_values, dense_singular_values};
//! let spec = ConvSpec::new(2, 2, 3, [3]).with_padding(Padding::Same).with_padding_mode(PaddingMode::Circular);
//! let w: Vec<f64> = (0..3 * 2 * 9).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
//! let conv = Conv::new(Geometry::new(&spec, &[6, 6]).unwrap(), w, None).unwrap();
//! let fft = fft_singular_values(&conv).unwrap();
//! let dense = dense_singular_values(&conv).unwrap();
//! assert!(fft.iter().zip(&dense).all(|(a, b)| (a - b).abs() < 1e-10 * dense[0]));
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

/// `as_str` (the name printed by `convmat svd --json` and Python) and `Display` for a choice enum.
macro_rules! names {
    ($(#[$doc:meta])* $ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            $(#[$doc])*
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

mod certify;
mod filtered;
mod krylov;
mod lanczos;
mod monitor;
mod network;
mod sparse;
mod start;
mod tall;

pub use certify::{
    certified_norm, certified_norm_from, certified_norm_with, interlacing_upper_bounds, interlacing_upper_bounds_with,
    Certificate, NormInterval,
};
pub use lanczos::{lanczos, lanczos_from, lanczos_with, LanczosResult, Start, StartVector};
pub use monitor::{Monitor, Progress};
pub use network::{conv_norm, sequential_norms, BlockNorm, NetworkError, NetworkNorms};
pub use sparse::{csr_norm, sparse_norm, CsrRef, SPARSE_DENSE_LIMIT};

use convmat_matrix::{Circulant, Conv};
use convmat_shape::{ConvSpec, Geometry, Padding, PaddingMode};
use faer::{c64, Mat, MatRef, Par};
use rayon::prelude::*;
use thiserror::Error;

/// What can go wrong computing singular values.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum SpectrumError {
    /// The FFT method does not apply to this layer.
    #[error("the FFT method does not apply: {why}")]
    NotCircular {
        /// Why not.
        why: String,
    },
    /// A dense SVD of a matrix this large would not fit or finish.
    #[error("a dense SVD of a {rows} x {cols} matrix is too large (limit {limit} entries); ask for --top K or --norm (Lanczos)")]
    TooLarge {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Largest number of entries allowed.
        limit: usize,
    },
    /// None, or more singular values than the matrix has.
    #[error("asked for {k} singular values: ask for 1 to {max} (the matrix has min(rows, cols) = {max})")]
    TooMany {
        /// Asked for.
        k: usize,
        /// min(rows, cols).
        max: usize,
    },
    /// The SVD of a block failed to converge.
    #[error("the SVD did not converge")]
    Svd,
    /// Arrays that are not a CSR matrix of the stated shape.
    #[error("not a CSR matrix of {rows} x {cols} with {nnz} entries: offsets must rise from 0 to nnz, columns be below {cols}")]
    BadSparse {
        /// Rows stated.
        rows: usize,
        /// Columns stated.
        cols: usize,
        /// Entries given.
        nnz: usize,
    },
    /// A relative tolerance outside `(0, 1)` (or NaN).
    #[error("invalid {param} {value}: expected a number between 0 and 1 (exclusive), such as 1e-6")]
    Tolerance {
        /// The parameter as the caller spells it (`--tol`, `tol`).
        param: &'static str,
        /// The value given.
        value: f64,
    },
    /// The caller's [`Monitor`] asked the run to stop.
    #[error("cancelled before the singular values were found")]
    Cancelled,
    /// The layer is invalid.
    #[error(transparent)]
    Matrix(#[from] convmat_matrix::MatrixError),
}

/// Singular values of a small (complex or real) matrix, in nonincreasing order, computed sequentially
/// (the callers parallelise over blocks).
fn svd_values<T: faer::traits::ComplexField>(a: MatRef<'_, T>) -> Result<Vec<T::Real>, SpectrumError> {
    svd_left(a, false, Par::Seq).map(|(s, _)| s)
}

/// Singular values (nonincreasing) and, if asked, the thin left singular vectors.
type SvdParts<T> = (Vec<<T as faer::traits::ComplexField>::Real>, Option<Mat<T>>);

/// Singular values (nonincreasing) and, if `left`, the thin left singular vectors, by faer's SVD
/// without the right vectors (which no caller needs).
fn svd_left<T: faer::traits::ComplexField>(
    a: MatRef<'_, T>,
    left: bool,
    par: Par,
) -> Result<SvdParts<T>, SpectrumError> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::svd::{svd, svd_scratch, ComputeSvdVectors};
    let (m, n) = a.shape();
    let mut s = faer::diag::Diag::<T>::zeros(m.min(n));
    let mut u = left.then(|| Mat::<T>::zeros(m, m.min(n)));
    let vectors = if left { ComputeSvdVectors::Thin } else { ComputeSvdVectors::No };
    let scratch = svd_scratch::<T>(m, n, vectors, ComputeSvdVectors::No, par, Default::default());
    let u_mut = u.as_mut().map(|u| u.as_mut());
    svd(a, s.as_mut(), u_mut, None, par, MemStack::new(&mut MemBuffer::new(scratch)), Default::default())
        .map_err(|_| SpectrumError::Svd)?;
    Ok((s.column_vector().iter().map(|x| faer::traits::math_utils::real(x)).collect(), u))
}

/// All singular values of a circular-padded convolution, exactly, by the FFT (polyphase for strides
/// dividing the grid), in nonincreasing order: `min(rows, cols)` of them.
///
/// # Errors
/// A layer the method does not apply to (another padding mode, transposed, a stride that does not
/// divide the input, an output that is not input / stride).
pub fn fft_singular_values(conv: &Conv<f64>) -> Result<Vec<f64>, SpectrumError> {
    fft_singular_values_with(conv, &Monitor::new())
}

/// [`fft_singular_values`] watched by a [`Monitor`]: progress per frequency block (in
/// [`Progress::steps`]), stopped between blocks when its cancel flag is set.
///
/// # Errors
/// As [`fft_singular_values`]; [`SpectrumError::Cancelled`].
pub fn fft_singular_values_with(conv: &Conv<f64>, monitor: &Monitor<'_>) -> Result<Vec<f64>, SpectrumError> {
    let circ = Circulant::new(conv).map_err(|e| SpectrumError::NotCircular { why: e.to_string() })?;
    block_values(&circ, |_, _| false, |_| true, monitor)
}

/// The singular values of the circulant's per-frequency blocks that `skip` (frequency, group: before
/// the block is formed) does not reject and `keep` (the block) accepts, each conjugate pair counted
/// twice, in nonincreasing order. Real weights: `K[-f] = conj(K[f])` has the same singular values, so
/// half the frequencies suffice.
pub(crate) fn block_values(
    circ: &Circulant,
    skip: impl Fn(usize, usize) -> bool + Sync,
    keep: impl Fn(MatRef<'_, c64>) -> bool + Sync,
    monitor: &Monitor<'_>,
) -> Result<Vec<f64>, SpectrumError> {
    monitor.check()?;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let spec = circ.conv().geometry().spec();
    let groups = spec.groups();
    let (rows, cols) = (spec.out_channels() / groups, spec.in_channels() / groups * circ.phases());
    let parts: Vec<Vec<f64>> = (0..circ.frequencies())
        .into_par_iter()
        .filter(|&f| f <= circ.conjugate(f))
        .map(|f| {
            let steps = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            monitor.step(&Progress { steps, ..Progress::new(0) })?;
            let times = if circ.conjugate(f) == f { 1 } else { 2 };
            let mut out = Vec::new();
            for g in 0..groups {
                if skip(f, g) {
                    continue;
                }
                let k = circ.block(f, g);
                let m = Mat::<c64>::from_fn(rows, cols, |i, j| {
                    let v = k[i * cols + j];
                    c64::new(v.re, v.im)
                });
                if !keep(m.as_ref()) {
                    continue;
                }
                let s = svd_values(m.as_ref())?;
                for _ in 0..times {
                    out.extend_from_slice(&s);
                }
            }
            Ok(out)
        })
        .collect::<Result<_, SpectrumError>>()?;
    let mut all: Vec<f64> = parts.into_iter().flatten().collect();
    all.sort_unstable_by(|a, b| b.total_cmp(a));
    Ok(all)
}

/// The largest dense matrix [`dense_singular_values`] accepts (entries).
pub const DENSE_LIMIT: usize = 30_000_000;

/// All singular values of a layer through its dense matrix (faer's SVD), nonincreasing.
///
/// # Errors
/// A matrix with more than [`DENSE_LIMIT`] entries.
pub fn dense_singular_values(conv: &Conv<f64>) -> Result<Vec<f64>, SpectrumError> {
    let (rows, cols) = (conv.rows(), conv.cols());
    if rows.saturating_mul(cols) > DENSE_LIMIT {
        return Err(SpectrumError::TooLarge { rows, cols, limit: DENSE_LIMIT });
    }
    let a = conv.dense();
    let m = Mat::<f64>::from_fn(rows, cols, |i, j| a[[i, j]]);
    m.singular_values().map_err(|_| SpectrumError::Svd)
}

/// What to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// All `min(rows, cols)` singular values.
    All,
    /// The largest `k`.
    Top(usize),
    /// The largest only (the spectral norm).
    Norm,
}

/// How to compute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Method {
    /// FFT when it applies, else dense SVD for all values of a small matrix, else Lanczos.
    #[default]
    Auto,
    /// The exact FFT (polyphase) method: circular padding only.
    Fft,
    /// Lanczos bidiagonalisation on the matrix-free operator.
    Lanczos,
    /// Dense SVD.
    Dense,
}

names! {
    /// `auto`, `fft`, `lanczos` or `dense` (the names `--method` takes and `convmat svd --json` prints).
    Method { Auto => "auto", Fft => "fft", Lanczos => "lanczos", Dense => "dense" }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "fft" => Ok(Self::Fft),
            "lanczos" => Ok(Self::Lanczos),
            "dense" => Ok(Self::Dense),
            _ => Err(format!("invalid method '{s}': expected auto, fft, lanczos or dense")),
        }
    }
}

/// Singular values with how they were obtained.
#[derive(Clone, Debug, PartialEq)]
pub struct Spectrum {
    /// Nonincreasing.
    pub values: Vec<f64>,
    /// The method that ran: [`Method::Fft`], [`Method::Lanczos`] or [`Method::Dense`] (never `Auto`).
    pub method: Method,
    /// Lanczos steps: products with `A` and `Aᵀ` each (0 for the direct methods).
    pub iterations: usize,
    /// Relative residual of the values (0 for the direct methods, up to rounding).
    pub residual: f64,
    /// Lanczos' start vector (see [`lanczos`]); `None` for the direct methods.
    pub start: Option<StartVector>,
    /// For a zero-padded stride-1 or strided convolution: the spectral norm of the circular
    /// convolution on the padded grid, an upper bound of this layer's norm.
    pub circular_upper_bound: Option<f64>,
    /// A lower bound of `σ_1` (the exact value for the direct methods; a Rayleigh quotient or Ritz
    /// value for Lanczos).
    pub lower: Option<f64>,
    /// An upper bound of `σ_1`, `None` where nothing certifies one (see [`Certificate`]).
    pub upper: Option<f64>,
    /// What `lower` and `upper` rest on.
    pub certificate: Certificate,
    /// The size of the top cluster that interlacing separated for the norm's interval (0: none).
    pub cluster: usize,
    /// Interlacing upper bounds of `σ_1, σ_2, …` (as many as were computed: the top few for the
    /// norm, `k` for the top `k`), empty when the layer embeds in no circulant.
    pub upper_bounds: Vec<f64>,
}

/// `min(rows, cols)`, or [`SpectrumError::TooMany`] when `k` values are none or more than that.
pub(crate) fn check_count(conv: &Conv<f64>, k: usize) -> Result<usize, SpectrumError> {
    let max = conv.rows().min(conv.cols());
    if k == 0 || k > max {
        return Err(SpectrumError::TooMany { k, max });
    }
    Ok(max)
}

/// Refuses a layer whose vectors do not fit in memory before any is allocated: `vectors` f64 vectors
/// of length `rows + cols` (a lower bound of what each method keeps), checked against the memory
/// available ([`convmat_matrix::check_memory`]).
pub(crate) fn check_working_set(conv: &Conv<f64>, vectors: usize) -> Result<(), SpectrumError> {
    let (rows, cols) = (conv.rows(), conv.cols());
    let count = rows.saturating_add(cols).saturating_mul(vectors);
    convmat_matrix::check_memory(
        || format!("{vectors} vectors of the {rows} x {cols} matrix's rows and columns"),
        count,
        std::mem::size_of::<f64>(),
    )?;
    Ok(())
}

/// The one rule for a relative tolerance (the `tol` of [`singular_values`], the certified norm's interval
/// width, the network view's): a number strictly between 0 and 1. `param` names it in the error as the
/// caller spells it (`--tol` in the CLI, `tol` in Python).
///
/// # Errors
/// [`SpectrumError::Tolerance`] for 0, 1 or more, a negative number or NaN.
pub fn check_tolerance(param: &'static str, value: f64) -> Result<f64, SpectrumError> {
    if value > 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(SpectrumError::Tolerance { param, value })
    }
}

/// Singular values of a layer, choosing the method as asked (see [`Method::Auto`]).
///
/// # Errors
/// A method that does not apply; a dense SVD too large; `Top(k)` beyond `min(rows, cols)`; a layer
/// whose vectors do not fit in the memory available; `tol` outside `(0, 1)` ([`check_tolerance`]).
pub fn singular_values(
    conv: &Conv<f64>,
    request: Request,
    method: Method,
    tol: f64,
) -> Result<Spectrum, SpectrumError> {
    singular_values_with(conv, request, method, tol, &Monitor::new())
}

/// [`singular_values`] watched by a [`Monitor`]: progress after every Lanczos step (or FFT block),
/// stopped between steps when its cancel flag is set. A dense SVD runs to its end once started.
///
/// # Errors
/// As [`singular_values`]; [`SpectrumError::Cancelled`].
pub fn singular_values_with(
    conv: &Conv<f64>,
    request: Request,
    method: Method,
    tol: f64,
    monitor: &Monitor<'_>,
) -> Result<Spectrum, SpectrumError> {
    check_tolerance("tol", tol)?;
    let max = conv.rows().min(conv.cols());
    let k = match request {
        Request::All => max,
        Request::Top(k) => k,
        Request::Norm => 1,
    };
    check_count(conv, k)?;
    let fft_ok = Circulant::new(conv).is_ok();
    let small = conv.rows().saturating_mul(conv.cols()) <= DENSE_LIMIT;
    let method = match method {
        Method::Auto if fft_ok => Method::Fft,
        Method::Auto if request == Request::All || (small && k * 4 > max) => Method::Dense,
        Method::Auto => Method::Lanczos,
        m => m,
    };
    if method != Method::Dense {
        // Lanczos's first block (v, w, z and the two bases), and more than the FFT route's spectra
        // (the dense route has its own limit, and a message that says what to ask for instead)
        check_working_set(conv, 3 * if k == 1 { 2 } else { lanczos::block_size(k) })?;
    }
    if method == Method::Lanczos && request == Request::Norm {
        let n = certified_norm_with(conv, tol, Start::Auto, monitor)?;
        // σ_1 of the circulant is at least the layer's, so only its blocks reaching `lower` matter
        let circular_upper_bound = match padded_circulant(conv) {
            Some(c) => match certify::circulant_norm_at_least(&c, n.lower, monitor)? {
                Some(v) => Some(v),
                None => circular_upper_bound(conv),
            },
            None => None,
        };
        return Ok(Spectrum {
            values: vec![n.value],
            method: if n.certificate == Certificate::Exact && n.residual == 0.0 {
                Method::Dense
            } else {
                Method::Lanczos
            },
            iterations: n.iterations,
            residual: n.residual,
            start: n.start,
            circular_upper_bound,
            lower: Some(n.lower),
            upper: n.upper,
            certificate: n.certificate,
            cluster: n.cluster,
            upper_bounds: n.upper_bounds,
        });
    }
    let circular_upper_bound = circular_upper_bound(conv);
    let (mut values, method, iterations, residual, start) = match method {
        Method::Fft => (fft_singular_values_with(conv, monitor)?, Method::Fft, 0, 0.0, None),
        Method::Dense => {
            monitor.check()?;
            (dense_singular_values(conv)?, Method::Dense, 0, 0.0, None)
        }
        _ => {
            let r = lanczos_with(conv, k, tol, Start::Auto, monitor)?;
            (r.values, Method::Lanczos, r.iterations, r.residual, Some(r.start))
        }
    };
    values.truncate(k);
    let (lower, upper, certificate, upper_bounds) = if method == Method::Lanczos {
        // Ritz values of an orthonormal basis are lower bounds; interlacing bounds where they exist
        let bounds = interlacing_upper_bounds_with(conv, k, &monitor.quiet())?;
        let upper = bounds.as_ref().map(|b| b[0].max(values[0]));
        let cert = if bounds.is_some() { Certificate::Interlacing } else { Certificate::ResidualOnly };
        (Some(values[0]), upper, cert, bounds.unwrap_or_default())
    } else {
        (Some(values[0]), Some(values[0]), Certificate::Exact, Vec::new())
    };
    Ok(Spectrum {
        values,
        method,
        iterations,
        residual,
        start,
        circular_upper_bound,
        lower,
        upper,
        certificate,
        cluster: 0,
        upper_bounds,
    })
}

/// For a zero-padded convolution: the spectral norm of the circular convolution (same kernel, stride 1)
/// on the padded grid. The layer is a sub-block of it (rows selected by the stride and the valid
/// windows, columns by the zero extension), so this bounds its norm from above.
pub fn circular_upper_bound(conv: &Conv<f64>) -> Option<f64> {
    fft_singular_values(&padded_circulant(conv)?).ok()?.first().copied()
}

/// The circular layer on the padded grid whose norm [`circular_upper_bound`] is.
fn padded_circulant(conv: &Conv<f64>) -> Option<Conv<f64>> {
    let geo = conv.geometry();
    let spec = geo.spec();
    if spec.is_transposed() || spec.padding_mode() != PaddingMode::Zeros {
        return None;
    }
    let r = spec.rank();
    let padded: Vec<usize> = (0..r).map(|d| geo.input_spatial()[d] + geo.pad_begin()[d] + geo.pad_end()[d]).collect();
    let eff: Vec<usize> = (0..r).map(|d| spec.dilation()[d] * (spec.kernel_size()[d] - 1) + 1).collect();
    // circular, stride 1, 'same' padding that keeps the output grid equal to the padded grid; the
    // window offset only rotates the output, so the norm is that of C on the padded grid
    let circ = ConvSpec::new(r, spec.in_channels(), spec.out_channels(), spec.kernel_size())
        .with_dilation(spec.dilation())
        .with_groups(spec.groups())
        .with_padding(Padding::Explicit { begin: eff.iter().map(|e| e - 1).collect(), end: vec![0; r] })
        .with_padding_mode(PaddingMode::Circular);
    let g = Geometry::new(&circ, &padded).ok()?;
    Conv::new(g, conv.weight().to_vec(), None).ok()
}

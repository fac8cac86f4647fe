//! [`singular_values`]: one entry point that picks the method (FFT, dense, Lanczos, certified norm)
//! and reports how the values were obtained.

use convmat_matrix::{Circulant, Conv};

use crate::certify::{certified_norm_with, Certificate};
use crate::dense::{dense_singular_values, DENSE_LIMIT};
use crate::embed::{circulant_norm_at_least, circular_upper_bound, interlacing_upper_bounds_with, padded_circulant};
use crate::fft::fft_singular_values_with;
use crate::lanczos::{block_size, lanczos_with};
use crate::limits::{check_count, check_tolerance, check_working_set};
use crate::start::{Start, StartVector};
use crate::{Monitor, SpectrumError};

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
    /// Lanczos' start vector (see [`lanczos`](crate::lanczos)); `None` for the direct methods.
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
        check_working_set(conv, 3 * if k == 1 { 2 } else { block_size(k) })?;
    }
    if method == Method::Lanczos && request == Request::Norm {
        let n = certified_norm_with(conv, tol, Start::Auto, monitor)?;
        // σ_1 of the circulant is at least the layer's, so only its blocks reaching `lower` matter
        let circular_upper_bound = match padded_circulant(conv) {
            Some(c) => match circulant_norm_at_least(&c, n.lower, monitor)? {
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

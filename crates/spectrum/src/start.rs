//! Where a Krylov run starts: the symbol's top mode (stride-1 layers) with a small random part, or a
//! deterministic random vector.

use convmat_matrix::Conv;
use rayon::prelude::*;

use crate::symbol::{symbol_modes, symbol_start};
use crate::vector::{dot, random_vector};

/// The start vector a run used (see [`lanczos`](crate::lanczos)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StartVector {
    /// The kernel's top Fourier mode (stride-1 layers), with a small random part.
    Symbol,
    /// A deterministic random vector.
    Random,
}

names! {
    /// `symbol` or `random` (the names `convmat svd --json` prints).
    StartVector { Symbol => "symbol", Random => "random" }
}

/// How [`lanczos_from`](crate::lanczos_from) starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Start {
    /// The symbol start where it applies (see [`lanczos`](crate::lanczos)), else random.
    #[default]
    Auto,
    /// A deterministic random vector.
    Random,
}

/// The start vector (not normalised) and its name: the symbol start where it applies and is asked
/// for (with a random part of relative norm 1e-3), else a deterministic random vector.
pub(crate) fn start_vector(conv: &Conv<f64>, start: Start) -> (Vec<f64>, StartVector) {
    let mut v = random_vector(conv.cols());
    let symbol = if start == Start::Auto { symbol_start(conv) } else { None };
    match symbol {
        Some(s) => {
            let (ns, nr) = (dot(&s, &s).sqrt(), dot(&v, &v).sqrt());
            v.par_iter_mut().zip(&s).for_each(|(r, &s)| *r = s / ns + 1e-3 * *r / nr);
            (v, StartVector::Symbol)
        }
        None => (v, StartVector::Random),
    }
}

/// The first block: for a stride-1 layer the real and imaginary parts of the symbol mode (which span
/// the standing waves of the top pair), each with a random part of relative norm 1e-3; else two
/// deterministic random vectors. One vector for a matrix with a single column or row. With the
/// symbol's peak `ω` when it was searched for.
pub(crate) fn start_block(conv: &Conv<f64>, start: Start) -> (Vec<f64>, StartVector, Option<Vec<f64>>) {
    let (cols, max) = (conv.cols(), conv.rows().min(conv.cols()));
    let b = max.min(2);
    let mut block = random_vector(cols * b);
    let modes = if start == Start::Auto && b == 2 { symbol_modes(conv) } else { None };
    let Some((re, im, peak)) = modes else { return (block, StartVector::Random, None) };
    for (j, mode) in [re, im].iter().enumerate() {
        let part = &mut block[j * cols..(j + 1) * cols];
        let (nm, nr) = (dot(mode, mode).sqrt(), dot(part, part).sqrt());
        if nm > 0.0 {
            part.iter_mut().zip(mode).for_each(|(r, &s)| *r = s / nm + 1e-3 * *r / nr);
        }
    }
    (block, StartVector::Symbol, Some(peak))
}

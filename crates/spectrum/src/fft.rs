//! Exact spectra of circular convolutions: the DFT block-diagonalises them (Sedghi, Gupta and Long,
//! ICLR 2019), polyphase for strides that divide the grid.

use convmat_matrix::{Circulant, Conv};
use faer::{c64, Mat, MatRef};
use rayon::prelude::*;

use crate::dense::svd_values;
use crate::{Monitor, Progress, SpectrumError};

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

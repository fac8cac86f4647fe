//! The checks every entry point makes before it allocates or iterates: counts, memory, tolerances.

use convmat_matrix::Conv;

use crate::SpectrumError;

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

/// The one rule for a relative tolerance (the `tol` of [`singular_values`](crate::singular_values), the certified norm's interval
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

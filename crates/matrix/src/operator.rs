use convmat_numeric::Scalar;
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::{Conv, MatrixError};

impl<T: Scalar> Conv<T> {
    /// `A·x` for a batch `x` of shape `(batch, cols)`, straight from the tap map, never forming `A`:
    /// for layers whose matrix does not fit in memory. Accumulates in [`Scalar::Acc`].
    ///
    /// # Errors
    /// `x` without `cols` columns.
    pub fn apply(&self, x: ArrayView2<'_, T>) -> Result<Array2<T::Acc>, MatrixError> {
        self.gather(false, x)
    }

    /// `Aᵀ·y` for a batch `y` of shape `(batch, rows)`: the adjoint, equally matrix-free (rows of `Aᵀ`
    /// are walked through the inverse tap map, so this too is a parallel gather, without atomics).
    ///
    /// # Errors
    /// `y` without `rows` columns.
    pub fn adjoint(&self, y: ArrayView2<'_, T>) -> Result<Array2<T::Acc>, MatrixError> {
        self.gather(true, y)
    }

    /// The layer's output `A·x + b` for a batch `x` of shape `(batch, cols)`.
    ///
    /// # Errors
    /// `x` without `cols` columns.
    pub fn forward(&self, x: ArrayView2<'_, T>) -> Result<Array2<T::Acc>, MatrixError> {
        let mut y = self.apply(x)?;
        if self.bias().is_some() {
            for mut row in y.axis_iter_mut(Axis(0)) {
                for (r, v) in row.iter_mut().enumerate() {
                    *v = T::acc_add(*v, self.row_bias(r).expect("bias present").widen());
                }
            }
        }
        Ok(y)
    }

    fn gather(&self, transpose: bool, x: ArrayView2<'_, T>) -> Result<Array2<T::Acc>, MatrixError> {
        let walker = self.walker(transpose);
        if x.ncols() != walker.cols {
            return Err(MatrixError::Dimension {
                what: if transpose { "adjoint input" } else { "apply input" },
                expected: format!("(batch, {})", walker.cols),
                got: x.shape().to_vec(),
            });
        }
        let batch = x.nrows();
        // Column-major batch: one input element's batch values are contiguous, so each matrix entry
        // is applied to the whole batch in one vectorisable pass.
        let xt = x.t().as_standard_layout().into_owned();
        let xs = xt.as_slice().expect("standard layout");
        let mut out = vec![T::ACC_ZERO; walker.rows * batch];
        if batch > 0 {
            out.par_chunks_mut(batch).enumerate().for_each_init(Vec::new, |scratch, (r, acc)| {
                walker.for_each_entry_fast(r, scratch, |c, v| {
                    for (a, &xv) in acc.iter_mut().zip(&xs[c * batch..(c + 1) * batch]) {
                        *a = T::mul_acc(*a, v, xv);
                    }
                });
            });
        }
        let out = Array2::from_shape_vec((walker.rows, batch), out).expect("length matches");
        Ok(out.reversed_axes().as_standard_layout().into_owned())
    }
}

use convmat_numeric::Scalar;
use ndarray::ArrayView2;
use sprs::{CsMatBase, SpIndex};
use std::ops::Deref;

use crate::{Conv, MatrixError};

/// Gradients of a loss with respect to a layer's weight and bias, from its gradient with respect to
/// the layer's matrix: what backpropagating through "build `A`, then use `A`" needs.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelGrad<A> {
    /// `dL/dweight`, flat, in the weight's PyTorch layout.
    pub weight: Vec<A>,
    /// `dL/dbias` (one per output channel) when the gradient has the affine bias column.
    pub bias: Option<Vec<A>>,
}

impl<T: Scalar> Conv<T> {
    /// The kernel adjoint for a dense `dL/dA`: each weight's gradient is the sum of the gradient over
    /// every matrix entry that weight appears in (taps that collide in reflect/replicate/circular
    /// padding each receive the entry's full gradient, since the entry is their sum).
    ///
    /// `grad` has shape `(rows, cols)`, or with the affine forms `(rows, cols + 1)` /
    /// `(rows + 1, cols + 1)`, whose last column gives `dL/dbias` (the homogeneous row is constant).
    ///
    /// # Errors
    /// `grad` of another shape.
    pub fn kernel_adjoint(&self, grad: ArrayView2<'_, T>) -> Result<KernelGrad<T::Acc>, MatrixError> {
        let affine = self.check_grad_shape(grad.shape())?;
        let walker = self.walker(false);
        let mut weight = vec![T::ACC_ZERO; self.weight().len()];
        let [k0, k1, _] = self.tap_map().kernel_strides();
        for row in 0..walker.rows {
            walker.walk(row, |col, wbase, [t0, t1, t2]| {
                let g = grad[[row, col]];
                for &a in t0 {
                    for &b in t1 {
                        for &c in t2 {
                            let w = &mut weight[wbase + a * k0 + b * k1 + c];
                            *w = T::acc_add(*w, g.widen());
                        }
                    }
                }
            });
        }
        let bias = affine.then(|| self.bias_grad((0..self.rows()).map(|r| (r, grad[[r, self.cols()]]))));
        Ok(KernelGrad { weight, bias })
    }

    /// The kernel adjoint for a sparse `dL/dA` (CSR or CSC): only the gradient's stored entries are
    /// visited, so a sparse gradient of any size costs its own non-zeros. Entries at positions where
    /// `A` is structurally zero contribute nothing.
    ///
    /// # Errors
    /// `grad` of a shape other than those of [`kernel_adjoint`](Self::kernel_adjoint).
    pub fn kernel_adjoint_sparse<N, I, Iptr, IS, IptrS, DS>(
        &self,
        grad: &CsMatBase<N, I, IptrS, IS, DS, Iptr>,
    ) -> Result<KernelGrad<T::Acc>, MatrixError>
    where
        N: Into<T> + Copy,
        I: SpIndex,
        Iptr: SpIndex,
        IptrS: Deref<Target = [Iptr]>,
        IS: Deref<Target = [I]>,
        DS: Deref<Target = [N]>,
    {
        let affine = self.check_grad_shape(&[grad.rows(), grad.cols()])?;
        let walker = self.walker(false);
        let mut weight = vec![T::ACC_ZERO; self.weight().len()];
        let mut bias_entries = Vec::new();
        for (&v, (r, c)) in grad.iter() {
            let (r, c) = (r.index(), c.index());
            let g: T = v.into();
            if c == self.cols() {
                if r < self.rows() {
                    bias_entries.push((r, g));
                }
                continue;
            }
            if r >= self.rows() {
                continue;
            }
            walker.weights_at(r, c, |i| weight[i] = T::acc_add(weight[i], g.widen()));
        }
        let bias = affine.then(|| self.bias_grad(bias_entries.into_iter()));
        Ok(KernelGrad { weight, bias })
    }

    fn bias_grad(&self, entries: impl Iterator<Item = (usize, T)>) -> Vec<T::Acc> {
        let oc = self.geometry().spec().out_channels();
        let per_channel = self.rows() / oc;
        let mut b = vec![T::ACC_ZERO; oc];
        for (r, g) in entries {
            b[r / per_channel] = T::acc_add(b[r / per_channel], g.widen());
        }
        b
    }

    /// Whether the gradient has the affine column.
    fn check_grad_shape(&self, shape: &[usize]) -> Result<bool, MatrixError> {
        let (r, c) = (self.rows(), self.cols());
        match shape {
            [a, b] if (*a, *b) == (r, c) => Ok(false),
            [a, b] if (*a, *b) == (r, c + 1) || (*a, *b) == (r + 1, c + 1) => Ok(true),
            _ => Err(MatrixError::Dimension {
                what: "matrix gradient",
                expected: format!("({r}, {c}), ({r}, {}) or ({}, {})", c + 1, r + 1, c + 1),
                got: shape.to_vec(),
            }),
        }
    }
}

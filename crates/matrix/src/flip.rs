//! True convolution (flipped kernel), as MATLAB's `conv2` / `convn` / `convmtx2`.

use convmat_numeric::Scalar;
use convmat_shape::{ConvSpec, Geometry, TrueConvShape};
use ndarray::{Array2, ArrayView2};

use crate::{Conv, MatrixError};

/// Reverses every spatial axis of a flat weight of shape `weight_shape` (`(C_a, C_b, *k)`).
pub fn flip_kernel<T: Copy>(weight: &[T], weight_shape: &[usize]) -> Vec<T> {
    let k = &weight_shape[2..];
    let klen: usize = k.iter().product();
    let mut out = Vec::with_capacity(weight.len());
    for block in weight.chunks(klen.max(1)) {
        // reversing a row-major block reverses every axis at once
        out.extend(block.iter().rev());
    }
    out
}

impl<T: Scalar> Conv<T> {
    /// The layer of a *true* convolution (kernel flipped in every spatial axis, as MATLAB's `conv2` and
    /// `convn`) with output shape `full`, `same` or `valid`. `spec`'s own padding is replaced by the one
    /// the shape implies; stride, dilation and groups still apply. The weight is given unflipped, as
    /// for MATLAB.
    ///
    /// # Errors
    /// As [`Geometry::new`] and [`Conv::new`].
    pub fn true_convolution(
        spec: &ConvSpec,
        shape: TrueConvShape,
        input: &[usize],
        weight: &[T],
        bias: Option<Vec<T>>,
    ) -> Result<Self, MatrixError> {
        // validate first: the padding a shape implies is `d * (k - 1)`, meaningless for an empty kernel
        spec.validate()?;
        let padding = shape.padding(spec.kernel_size(), spec.dilation());
        let spec = spec.clone().with_padding(padding);
        let geometry = Geometry::new(&spec, input)?;
        let expected: usize = spec.weight_shape().iter().product();
        if weight.len() != expected {
            return Err(MatrixError::WeightLen { expected, got: weight.len(), shape: spec.weight_shape() });
        }
        Conv::new(geometry, flip_kernel(weight, &spec.weight_shape()), bias)
    }
}

/// MATLAB's `convmtx2(H, m, n)`: the matrix `T` with `T * X(:) == reshape(conv2(X, H), [], 1)` for an
/// `m`-by-`n` matrix `X`, where `(:)` is MATLAB's *column-major* vectorisation; `T` has
/// `(m + kh - 1) * (n + kw - 1)` rows and `m * n` columns.
///
/// Column-major of `X` is row-major of `Xᵀ`, and `conv2(X, H)ᵀ = conv2(Xᵀ, Hᵀ)`, so this is the full
/// true-convolution matrix of `Hᵀ` on an `n`-by-`m` input.
///
/// # Errors
/// An empty kernel or image.
pub fn convmtx2<T: Scalar>(h: ArrayView2<'_, T>, m: usize, n: usize) -> Result<Array2<T>, MatrixError> {
    let (kh, kw) = h.dim();
    if kh == 0 || kw == 0 {
        let expected = "a kernel with at least one row and one column".into();
        return Err(MatrixError::Dimension { what: "convmtx2 kernel H", expected, got: vec![kh, kw] });
    }
    if m == 0 || n == 0 {
        let expected = "an image of at least 1-by-1 (m >= 1, n >= 1)".into();
        return Err(MatrixError::Dimension { what: "convmtx2 image size (m, n)", expected, got: vec![m, n] });
    }
    let ht: Vec<T> = h.t().iter().copied().collect();
    let spec = ConvSpec::new(2, 1, 1, [kw, kh]).with_bias(false);
    Ok(Conv::true_convolution(&spec, TrueConvShape::Full, &[n, m], &ht, None)?.dense())
}

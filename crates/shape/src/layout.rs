use crate::ShapeError;

/// Row-major (C order) flat indexing of a shape: exactly `torch.flatten` of one sample, or NumPy's
/// `ravel_multi_index` / `unravel_index` with the default order.
///
/// ```
/// use convmat_shape::RowMajor;
/// let l = RowMajor::new(&[2, 3, 4]).unwrap();
/// assert_eq!(l.encode(&[1, 2, 3]), 23);
/// assert_eq!(l.decode(23), vec![1, 2, 3]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RowMajor {
    shape: Vec<usize>,
    strides: Vec<usize>,
    len: usize,
}

impl RowMajor {
    /// The layout of `shape`.
    ///
    /// # Errors
    /// [`ShapeError::TooLarge`] when the element count does not fit in `usize`.
    pub fn new(shape: &[usize]) -> Result<Self, ShapeError> {
        let mut strides = vec![0; shape.len()];
        let mut acc: usize = 1;
        for (d, &n) in shape.iter().enumerate().rev() {
            strides[d] = acc;
            acc = acc.checked_mul(n).ok_or_else(|| too_large(shape))?;
        }
        Ok(Self { shape: shape.to_vec(), strides, len: acc })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Elements between consecutive indices of each dimension.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether some dimension is 0.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Flat index of a multi-index, or `None` when a coordinate is out of range or the arity differs.
    pub fn try_encode(&self, index: &[usize]) -> Option<usize> {
        if index.len() != self.shape.len() || index.iter().zip(&self.shape).any(|(&i, &n)| i >= n) {
            return None;
        }
        Some(index.iter().zip(&self.strides).map(|(&i, &s)| i * s).sum())
    }

    /// Flat index of a multi-index.
    ///
    /// # Panics
    /// When a coordinate is out of range or the arity differs (a caller's contract violation).
    #[track_caller]
    pub fn encode(&self, index: &[usize]) -> usize {
        self.try_encode(index).unwrap_or_else(|| panic!("index {index:?} is out of range for shape {:?}", self.shape))
    }

    /// Multi-index of a flat index, written into `out` (`out.len()` must equal the rank).
    ///
    /// # Panics
    /// When `flat >= len()` or `out` has the wrong length.
    #[track_caller]
    pub fn decode_into(&self, mut flat: usize, out: &mut [usize]) {
        assert!(flat < self.len, "flat index {flat} is out of range for shape {:?}", self.shape);
        assert_eq!(out.len(), self.shape.len(), "decode_into: output has the wrong arity");
        for (o, &s) in out.iter_mut().zip(&self.strides) {
            *o = flat / s;
            flat %= s;
        }
    }

    /// Multi-index of a flat index.
    ///
    /// # Panics
    /// When `flat >= len()`.
    #[track_caller]
    pub fn decode(&self, flat: usize) -> Vec<usize> {
        let mut out = vec![0; self.shape.len()];
        self.decode_into(flat, &mut out);
        out
    }
}

pub(crate) fn too_large(shape: &[usize]) -> ShapeError {
    ShapeError::TooLarge { shape: shape.to_vec(), bits: usize::BITS }
}

/// `prod(shape)` with overflow checking.
pub(crate) fn checked_len(shape: &[usize]) -> Result<usize, ShapeError> {
    shape.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n)).ok_or_else(|| too_large(shape))
}

use std::ops::Range;

use convmat_numeric::Scalar;
use ndarray::Array2;
use rayon::prelude::*;
use sprs::{CsMatI, SpIndex};

use crate::{Conv, MatrixError};

/// How the bias appears in a built matrix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Affine {
    /// `A` alone; the bias is available separately ([`Conv::expanded_bias`]).
    #[default]
    None,
    /// `[A | b]`: one extra last column holding the bias, so `[A | b]·[x; 1] = A·x + b` (the layout of
    /// the seeds' `c2s`).
    Column,
    /// `[[A, b], [0 … 0, 1]]`: also the homogeneous last row, so affine layers compose by matrix product.
    Homogeneous,
}

/// What to build: which rows, the affine form, and whether exact zeros are dropped.
///
/// Weights that are exactly 0 are kept as explicit entries by default, so the sparsity pattern depends
/// only on the layer's geometry (what verifiers and hardware mappers expect); `drop_zeros` removes them
/// (and zero bias entries). Padding never produces explicit zeros.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MatrixOptions {
    /// Build only these rows of the full matrix (affine rows included); `None` = all. Identical to
    /// slicing the full matrix, so shards built separately stack to it.
    pub rows: Option<Range<usize>>,
    /// Bias column / homogeneous row.
    pub affine: Affine,
    /// Drop entries whose value is exactly zero.
    pub drop_zeros: bool,
}

impl MatrixOptions {
    /// Only rows `rows` of the full matrix.
    pub fn rows(mut self, rows: Range<usize>) -> Self {
        self.rows = Some(rows);
        self
    }
    /// The affine form.
    pub fn affine(mut self, affine: Affine) -> Self {
        self.affine = affine;
        self
    }
    /// Whether exact zeros are dropped.
    pub fn drop_zeros(mut self, drop: bool) -> Self {
        self.drop_zeros = drop;
        self
    }
}

/// The rows of the (possibly affine) matrix to build, as an abstract row source.
struct Rows<'a, T> {
    conv: &'a Conv<T>,
    walker: crate::layer::Walker<'a, T>,
    start: usize,
    len: usize,
    affine: Affine,
    drop_zeros: bool,
}

impl<'a, T: Scalar> Rows<'a, T> {
    fn new(conv: &'a Conv<T>, opts: &MatrixOptions) -> Result<Self, MatrixError> {
        let rows = shape_of(conv, opts.affine).0;
        let range = opts.rows.clone().unwrap_or(0..rows);
        if range.start >= range.end || range.end > rows {
            return Err(MatrixError::RowRange { start: range.start, end: range.end, rows });
        }
        Ok(Self {
            conv,
            walker: conv.walker(false),
            start: range.start,
            len: range.len(),
            affine: opts.affine,
            drop_zeros: opts.drop_zeros,
        })
    }

    /// The rows of `Aᵀ` (the columns of `A`), for building CSC directly.
    fn transposed(conv: &'a Conv<T>, drop_zeros: bool) -> Self {
        let walker = conv.walker(true);
        Self { conv, start: 0, len: walker.rows, walker, affine: Affine::None, drop_zeros }
    }

    fn ncols(&self) -> usize {
        self.walker.cols + usize::from(self.affine != Affine::None)
    }

    fn bias_entry(&self, row: usize) -> Option<T> {
        if self.affine == Affine::None {
            return None;
        }
        self.conv.row_bias(row).filter(|b| !(self.drop_zeros && b.is_zero()))
    }

    /// Entries of local row `r`.
    #[inline]
    fn count(&self, r: usize) -> usize {
        let row = self.start + r;
        if row == self.walker.rows {
            return 1; // homogeneous row: [0 … 0 1]
        }
        let body = if self.drop_zeros {
            let mut n = 0;
            self.walker.for_each_entry(row, |_, v| n += usize::from(!v.is_zero()));
            n
        } else {
            self.walker.row_nnz(row)
        };
        body + usize::from(self.bias_entry(row).is_some())
    }

    /// Emits local row `r`'s entries in increasing column order (`scratch` is reused between rows).
    #[inline]
    fn emit(&self, r: usize, scratch: &mut Vec<(usize, usize)>, mut f: impl FnMut(usize, T)) {
        let row = self.start + r;
        if row == self.walker.rows {
            f(self.walker.cols, T::ONE);
            return;
        }
        if self.drop_zeros {
            self.walker.for_each_entry_fast(row, scratch, |c, v| {
                if !v.is_zero() {
                    f(c, v)
                }
            });
        } else {
            self.walker.for_each_entry_fast(row, scratch, &mut f);
        }
        if let Some(b) = self.bias_entry(row) {
            f(self.walker.cols, b);
        }
    }
}

fn shape_of<T: Scalar>(conv: &Conv<T>, affine: Affine) -> (usize, usize) {
    let (r, c) = (conv.rows(), conv.cols());
    match affine {
        Affine::None => (r, c),
        Affine::Column => (r, c + 1),
        Affine::Homogeneous => (r + 1, c + 1),
    }
}

/// The arrays of a compressed sparse matrix: (indptr, indices, data).
type Compressed<T, I, Iptr> = (Vec<Iptr>, Vec<I>, Vec<T>);

/// Compressed arrays for a row source, filled in parallel in place.
fn compress<T: Scalar, I: SpIndex, Iptr: SpIndex>(rows: &Rows<'_, T>) -> Result<Compressed<T, I, Iptr>, MatrixError> {
    let n = rows.len;
    check_fits::<I>("columns", rows.ncols().saturating_sub(1))?;
    let counts: Vec<usize> = (0..n).into_par_iter().map(|r| rows.count(r)).collect();
    let mut indptr = Vec::with_capacity(n + 1);
    let mut nnz = 0usize;
    indptr.push(Iptr::zero());
    for &c in &counts {
        nnz += c;
        indptr.push(Iptr::try_from_usize(nnz).ok_or_else(|| overflow::<Iptr>("nnz", nnz))?);
    }
    drop(counts);
    let mut indices = fresh_zeroed(nnz, I::zero());
    let mut data = fresh_zeroed(nnz, T::ZERO);
    // Contiguous row blocks of similar size, each owning its slice of indices and data.
    let blocks = (rayon::current_num_threads() * 16).clamp(1, n.max(1));
    let mut work = Vec::with_capacity(blocks);
    let (mut idx_rest, mut dat_rest) = (indices.as_mut_slice(), data.as_mut_slice());
    let mut row = 0;
    for b in 0..blocks {
        let end = (n * (b + 1)) / blocks;
        let len = indptr[end].index() - indptr[row].index();
        let (i, ir) = idx_rest.split_at_mut(len);
        let (d, dr) = dat_rest.split_at_mut(len);
        work.push((row..end, i, d));
        (idx_rest, dat_rest) = (ir, dr);
        row = end;
    }
    work.into_par_iter().for_each(|(range, idx, dat)| {
        let mut slots = idx.iter_mut().zip(dat.iter_mut());
        let mut scratch = Vec::new();
        for r in range {
            rows.emit(r, &mut scratch, |c, v| {
                let (i, d) = slots.next().expect("row counts match the entries emitted");
                *i = I::from_usize_unchecked(c);
                *d = v;
            });
        }
        debug_assert!(slots.next().is_none());
    });
    Ok((indptr, indices, data))
}

/// A zero-filled vector for a large output. `vec!` of a zero primitive is a calloc, whose fresh pages
/// the OS zeroes lazily on first touch; on Linux they are also advised as transparent huge pages, which
/// cuts the page faults of filling them 512-fold (2.4x faster fills measured on the 2-core CI machine).
pub(crate) fn fresh_zeroed<T: Clone>(n: usize, zero: T) -> Vec<T> {
    let mut v = vec![zero; n];
    advise_huge_pages(&mut v);
    v
}

#[cfg(target_os = "linux")]
fn advise_huge_pages<T>(v: &mut [T]) {
    const HUGE: usize = 2 << 20;
    let bytes = std::mem::size_of_val(v);
    if bytes < 4 * HUGE {
        return;
    }
    let start = v.as_mut_ptr() as usize;
    let (lo, hi) = ((start + HUGE - 1) & !(HUGE - 1), (start + bytes) & !(HUGE - 1));
    if hi > lo {
        // SAFETY: [lo, hi) lies inside the vector's allocation; MADV_HUGEPAGE only changes how the
        // kernel backs those pages, never their contents. Failure (e.g. THP disabled) is harmless.
        unsafe {
            libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages<T>(_: &mut [T]) {}

fn check_fits<I: SpIndex>(what: &'static str, value: usize) -> Result<(), MatrixError> {
    I::try_from_usize(value).map(|_| ()).ok_or_else(|| overflow::<I>(what, value))
}

fn overflow<I: SpIndex>(what: &'static str, value: usize) -> MatrixError {
    MatrixError::IndexOverflow {
        what,
        value,
        index: std::any::type_name::<I>(),
        max: I::max_value().to_u128().unwrap_or(u128::MAX),
    }
}

impl<T: Scalar> Conv<T> {
    /// The dense matrix `A` (rows × cols).
    pub fn dense(&self) -> Array2<T> {
        self.dense_with(&MatrixOptions::default()).expect("the default options are valid")
    }

    /// The dense matrix with options (row range, affine form). `drop_zeros` has no effect on dense.
    ///
    /// # Errors
    /// A row range outside the matrix.
    pub fn dense_with(&self, opts: &MatrixOptions) -> Result<Array2<T>, MatrixError> {
        let rows = Rows::new(self, opts)?;
        let ncols = rows.ncols();
        let mut a = Array2::from_elem((0, 0), T::ZERO);
        if rows.len > 0 {
            let mut data = fresh_zeroed(rows.len * ncols, T::ZERO);
            data.par_chunks_mut(ncols)
                .enumerate()
                .for_each_init(Vec::new, |scratch, (r, out)| rows.emit(r, scratch, |c, v| out[c] = v));
            a = Array2::from_shape_vec((rows.len, ncols), data).expect("length matches shape");
        }
        Ok(a)
    }

    /// The sparse CSR matrix with `u32` indices (the common case); see [`csr_with`](Self::csr_with).
    ///
    /// # Errors
    /// More than `u32::MAX` columns or non-zeros: use `csr_with::<u32, u64>` or `<usize, usize>`.
    pub fn csr(&self) -> Result<CsMatI<T, u32, u32>, MatrixError> {
        self.csr_with(&MatrixOptions::default())
    }

    /// The sparse CSR matrix: column indices sorted and unique within each row, no entries from padding,
    /// colliding taps summed. Built in parallel without a triplet intermediate: count each row, prefix-sum,
    /// fill every row in place, so peak memory is the final arrays plus one count per row.
    ///
    /// `I` indexes columns and `Iptr` the row pointers: `u32`/`u32` for most layers, `u32`/`u64` when the
    /// non-zeros exceed `u32::MAX` but the columns do not.
    ///
    /// # Errors
    /// A row range outside the matrix; columns or non-zeros that do not fit `I` / `Iptr`.
    pub fn csr_with<I: SpIndex, Iptr: SpIndex>(&self, opts: &MatrixOptions) -> Result<CsMatI<T, I, Iptr>, MatrixError> {
        let rows = Rows::new(self, opts)?;
        let ncols = rows.ncols();
        let (indptr, indices, data) = compress(&rows)?;
        // SAFETY: `compress` writes, per row, the walker's entries in strictly increasing column order
        // (then the bias column, the largest), all below `ncols`, and indptr is their running count;
        // that is exactly sprs's compressed-structure invariant (property-tested against dense).
        Ok(unsafe { CsMatI::new_unchecked(sprs::CompressedStorage::CSR, (rows.len, ncols), indptr, indices, data) })
    }

    /// The sparse CSC matrix with `u32` indices; see [`csc_with`](Self::csc_with).
    ///
    /// # Errors
    /// More than `u32::MAX` rows or non-zeros.
    pub fn csc(&self) -> Result<CsMatI<T, u32, u32>, MatrixError> {
        self.csc_with(&MatrixOptions::default())
    }

    /// The sparse CSC matrix, same entries as [`csr_with`](Self::csr_with). Without a row range or affine
    /// form it is built directly from the inverse tap map (the columns of `A` are the rows of `Aᵀ`), in
    /// parallel; otherwise through the CSR.
    ///
    /// # Errors
    /// As [`csr_with`](Self::csr_with), with rows and columns swapped.
    pub fn csc_with<I: SpIndex, Iptr: SpIndex>(&self, opts: &MatrixOptions) -> Result<CsMatI<T, I, Iptr>, MatrixError> {
        if opts.rows.is_some() || opts.affine != Affine::None {
            return Ok(self.csr_with::<I, Iptr>(opts)?.to_other_storage());
        }
        let (indptr, indices, data) = compress(&Rows::transposed(self, opts.drop_zeros))?;
        // SAFETY: as in `csr_with`, for the rows of Aᵀ (= columns of A), row indices strictly increasing.
        Ok(unsafe {
            CsMatI::new_unchecked(sprs::CompressedStorage::CSC, (self.rows(), self.cols()), indptr, indices, data)
        })
    }
}

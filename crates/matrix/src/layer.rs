use convmat_numeric::Scalar;
use convmat_shape::{Geometry, TapGroups, TapMap, MAX_RANK};
use ndarray::{ArrayView1, ArrayViewD};

use crate::MatrixError;

/// A convolution layer with its weights and bias: what every builder in this crate reads.
///
/// The weight is in PyTorch's layout, flattened row-major: `(C_out, C_in/groups, *k)` for a convolution,
/// `(C_in, C_out/groups, *k)` for a transposed one. The matrix `A` has one row per element of one output
/// sample and one column per element of one input sample, both flattened like `torch.flatten`, so
/// `flatten(layer(x)) = A·flatten(x) + b`.
///
/// ```
/// use convmat_matrix::Conv;
/// use convmat_shape::{ConvSpec, Geometry};
/// // Conv1d(1, 1, 2) with weight [1, 2] on 3 samples: y[i] = x[i] + 2 x[i+1]
/// let g = Geometry::new(&ConvSpec::new(1, 1, 1, [2]), &[3]).unwrap();
/// let a = Conv::new(g, vec![1.0f64, 2.0], None).unwrap().dense();
/// assert_eq!(a, ndarray::array![[1.0, 2.0, 0.0], [0.0, 1.0, 2.0]]);
/// ```
#[derive(Clone, Debug)]
pub struct Conv<T> {
    geometry: Geometry,
    taps: TapMap,
    weight: Vec<T>,
    bias: Option<Vec<T>>,
}

impl<T: Scalar> Conv<T> {
    /// A layer from its geometry, flat weight and optional bias (one value per output channel).
    ///
    /// # Errors
    /// A weight or bias of the wrong length.
    pub fn new(geometry: Geometry, weight: Vec<T>, bias: Option<Vec<T>>) -> Result<Self, MatrixError> {
        let spec = geometry.spec();
        let shape = spec.weight_shape();
        let expected: usize = shape.iter().product();
        if weight.len() != expected {
            return Err(MatrixError::WeightLen { expected, got: weight.len(), shape });
        }
        if let Some(b) = &bias {
            spec.check_bias_len(b.len())?;
        }
        let taps = geometry.tap_map();
        Ok(Self { geometry, taps, weight, bias })
    }

    /// A layer from n-d weight and bias arrays, checking the weight's shape against the layer.
    ///
    /// # Errors
    /// A weight shape or bias length that does not match the layer.
    pub fn from_arrays(
        geometry: Geometry,
        weight: ArrayViewD<'_, T>,
        bias: Option<ArrayView1<'_, T>>,
    ) -> Result<Self, MatrixError> {
        geometry.spec().check_weight_shape(weight.shape())?;
        let weight = weight.iter().copied().collect();
        Self::new(geometry, weight, bias.map(|b| b.to_vec()))
    }

    /// The layer's geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }
    /// The tap map the builders walk.
    pub fn tap_map(&self) -> &TapMap {
        &self.taps
    }
    /// The flat weight, PyTorch layout.
    pub fn weight(&self) -> &[T] {
        &self.weight
    }
    /// The bias, one value per output channel.
    pub fn bias(&self) -> Option<&[T]> {
        self.bias.as_deref()
    }
    /// Rows of the matrix: elements of one output sample.
    pub fn rows(&self) -> usize {
        self.geometry.rows()
    }
    /// Columns of the matrix: elements of one input sample.
    pub fn cols(&self) -> usize {
        self.geometry.cols()
    }

    /// The bias expanded to one value per row (`b` in `A·x + b`), or `None` without a bias.
    pub fn expanded_bias(&self) -> Option<Vec<T>> {
        let per_channel = self.geometry.output_spatial().iter().product::<usize>();
        self.bias.as_ref().map(|b| b.iter().flat_map(|&v| std::iter::repeat_n(v, per_channel)).collect())
    }

    /// Bias of the output channel that row `row` belongs to.
    pub(crate) fn row_bias(&self, row: usize) -> Option<T> {
        let per_channel = self.rows() / self.geometry.spec().out_channels();
        self.bias.as_ref().map(|b| b[row / per_channel])
    }

    /// Walks the rows of `A` (`transpose == false`) or of `Aᵀ` (`true`).
    pub(crate) fn walker(&self, transpose: bool) -> Walker<'_, T> {
        // Rows of a plain convolution gather over window hits; rows of a transposed one (whose matrix
        // is the matching convolution's transpose) gather over grid readers.
        let by_readers = self.geometry.spec().is_transposed() != transpose;
        let g = self.geometry.spec().groups();
        let (wch, gch) = (self.geometry.window_channels(), self.geometry.grid_channels());
        let (wlen, glen) = (self.taps.windows_len(), self.taps.grid_len());
        let (row_ch, row_len, col_ch, col_len, col_strides) = if by_readers {
            (gch, glen, wch, wlen, self.taps.window_strides())
        } else {
            (wch, wlen, gch, glen, self.taps.grid_strides())
        };
        Walker {
            taps: &self.taps,
            weight: &self.weight,
            by_readers,
            row_len,
            col_len,
            rows: row_ch * row_len,
            cols: col_ch * col_len,
            row_ch_per_group: row_ch / g,
            col_ch_per_group: col_ch / g,
            col_strides,
            kernel_len: self.taps.kernel_len(),
            kernel_strides: self.taps.kernel_strides(),
        }
    }
}

/// Iterates the entries of one row of `A` or `Aᵀ`, in increasing column order, straight from the tap map.
pub(crate) struct Walker<'a, T> {
    taps: &'a TapMap,
    weight: &'a [T],
    by_readers: bool,
    row_len: usize,
    col_len: usize,
    pub rows: usize,
    pub cols: usize,
    row_ch_per_group: usize,
    col_ch_per_group: usize,
    col_strides: [usize; MAX_RANK],
    kernel_len: usize,
    kernel_strides: [usize; MAX_RANK],
}

impl<'a, T: Scalar> Walker<'a, T> {
    #[inline]
    fn lists(&self, pos: usize) -> [TapGroups<'a>; MAX_RANK] {
        let axes = self.taps.axes();
        if self.by_readers {
            let c = self.taps.grid_coords(pos);
            std::array::from_fn(|a| axes[a].readers(c[a]))
        } else {
            let c = self.taps.window_coords(pos);
            std::array::from_fn(|a| axes[a].hits(c[a]))
        }
    }

    /// Offset of the weights of (row channel `rc`, column channel `cc`, `cl` within its group):
    /// `weight[(window channel, grid channel within group, tap)]`, whichever side the rows are on.
    #[inline]
    fn weight_base(&self, rc: usize, cc: usize, cl: usize) -> usize {
        if self.by_readers {
            (cc * self.row_ch_per_group + rc % self.row_ch_per_group) * self.kernel_len
        } else {
            (rc * self.col_ch_per_group + cl) * self.kernel_len
        }
    }

    /// Structural non-zeros of `row` (every tap that reads a real input, collisions merged).
    #[inline]
    pub fn row_nnz(&self, row: usize) -> usize {
        let pos = row % self.row_len;
        let per_channel = if self.by_readers { self.taps.reader_count(pos) } else { self.taps.hit_count(pos) };
        self.col_ch_per_group * per_channel
    }

    /// Calls `f(col, weight_base, [taps0, taps1, taps2])` for every structural entry of `row`, columns
    /// increasing; the entry's value is the sum of `weight[weight_base + t0*ks0 + t1*ks1 + t2]` over the
    /// product of the tap lists.
    #[inline]
    pub fn walk(&self, row: usize, mut f: impl FnMut(usize, usize, [&'a [usize]; MAX_RANK])) {
        let (rc, pos) = (row / self.row_len, row % self.row_len);
        let group = rc / self.row_ch_per_group;
        let [l0, l1, l2] = self.lists(pos);
        let [s0, s1, _] = self.col_strides;
        for cl in 0..self.col_ch_per_group {
            let cc = group * self.col_ch_per_group + cl;
            let wbase = self.weight_base(rc, cc, cl);
            let col_base = cc * self.col_len;
            for (c0, t0) in l0.clone() {
                for (c1, t1) in l1.clone() {
                    let base = col_base + c0 * s0 + c1 * s1;
                    for (c2, t2) in l2.clone() {
                        f(base + c2, wbase, [t0, t1, t2]);
                    }
                }
            }
        }
    }

    /// Calls `f(col, value)` for every structural entry of `row`, columns increasing; taps that land on
    /// the same input (reflect, replicate, circular) are summed into one value.
    #[inline]
    pub fn for_each_entry(&self, row: usize, mut f: impl FnMut(usize, T)) {
        let w = self.weight;
        let [k0, k1, _] = self.kernel_strides;
        self.walk(row, |col, wbase, [t0, t1, t2]| {
            let v = if t0.len() == 1 && t1.len() == 1 && t2.len() == 1 {
                w[wbase + t0[0] * k0 + t1[0] * k1 + t2[0]]
            } else {
                let mut v = T::ZERO;
                for &a in t0 {
                    for &b in t1 {
                        for &c in t2 {
                            v = v.add(w[wbase + a * k0 + b * k1 + c]);
                        }
                    }
                }
                v
            };
            f(col, v);
        });
    }

    /// As [`for_each_entry`](Self::for_each_entry), faster: the row's spatial hits are gathered once
    /// into `scratch` as `(column offset, tap)` pairs and then streamed for every input channel. Rows
    /// with colliding taps fall back to the general walk.
    #[inline]
    pub fn for_each_entry_fast(&self, row: usize, scratch: &mut Vec<(usize, usize)>, mut f: impl FnMut(usize, T)) {
        let (rc, pos) = (row / self.row_len, row % self.row_len);
        let [l0, l1, l2] = self.lists(pos);
        let [s0, s1, _] = self.col_strides;
        let [k0, k1, _] = self.kernel_strides;
        scratch.clear();
        for (c0, t0) in l0 {
            for (c1, t1) in l1.clone() {
                for (c2, t2) in l2.clone() {
                    if t0.len() != 1 || t1.len() != 1 || t2.len() != 1 {
                        return self.for_each_entry(row, f);
                    }
                    scratch.push((c0 * s0 + c1 * s1 + c2, t0[0] * k0 + t1[0] * k1 + t2[0]));
                }
            }
        }
        let group = rc / self.row_ch_per_group;
        let w = self.weight;
        for cl in 0..self.col_ch_per_group {
            let cc = group * self.col_ch_per_group + cl;
            let wbase = self.weight_base(rc, cc, cl);
            let (col_base, wk) = (cc * self.col_len, &w[wbase..wbase + self.kernel_len]);
            for &(off, t) in scratch.iter() {
                f(col_base + off, wk[t]);
            }
        }
    }

    /// Calls `f(weight_index)` for every weight that contributes to entry (`row`, `col`): the inverse of
    /// [`walk`](Self::walk) for one entry (nothing when the entry is structurally zero).
    pub fn weights_at(&self, row: usize, col: usize, mut f: impl FnMut(usize)) {
        let (rc, pos) = (row / self.row_len, row % self.row_len);
        let (cc, cpos) = (col / self.col_len, col % self.col_len);
        let group = rc / self.row_ch_per_group;
        if cc / self.col_ch_per_group != group {
            return;
        }
        let cl = cc % self.col_ch_per_group;
        let wbase = self.weight_base(rc, cc, cl);
        let target = if self.by_readers { self.taps.window_coords(cpos) } else { self.taps.grid_coords(cpos) };
        let lists = self.lists(pos);
        let mut found: [&[usize]; MAX_RANK] = [&[]; MAX_RANK];
        for a in 0..MAX_RANK {
            match lists[a].clone().find(|&(c, _)| c == target[a]) {
                Some((_, t)) => found[a] = t,
                None => return,
            }
        }
        let [k0, k1, _] = self.kernel_strides;
        for &a in found[0] {
            for &b in found[1] {
                for &c in found[2] {
                    f(wbase + a * k0 + b * k1 + c);
                }
            }
        }
    }
}

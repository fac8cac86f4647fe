use crate::spec::MAX_RANK;
use crate::PaddingMode;

const NONE: usize = usize::MAX;

/// One axis of a [`TapMap`]: for each window position along the axis and each kernel tap along it, the
/// grid coordinate read after padding-mode remapping.
///
/// Besides the raw `(position, tap) -> coordinate` table it keeps, per position, the *hits*: the
/// distinct coordinates read, in increasing order, each with the taps that land on it (more than one
/// only with reflect, replicate or circular padding). Sparse builders walk hits to emit sorted, unique
/// column indices directly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AxisTaps {
    size: usize,
    positions: usize,
    kernel: usize,
    reads: Vec<usize>,
    hits: Groups,
    readers: Groups,
}

/// Per key (a position, or a coordinate), a sorted list of `(index, taps)` groups, stored flat.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Groups {
    start: Vec<usize>,
    index: Vec<usize>,
    tap_start: Vec<usize>,
    taps: Vec<usize>,
}

impl Groups {
    /// Groups `(key, index, tap)` triples, sorted by key, then index, then tap, over `keys` keys.
    fn new(keys: usize, triples: &[(usize, usize, usize)]) -> Self {
        let mut g = Groups {
            start: Vec::with_capacity(keys + 1),
            index: Vec::new(),
            tap_start: vec![0],
            taps: Vec::with_capacity(triples.len()),
        };
        let mut j = 0;
        for key in 0..keys {
            g.start.push(g.index.len());
            while j < triples.len() && triples[j].0 == key {
                let (_, index, tap) = triples[j];
                if j == 0 || triples[j - 1].0 != key || triples[j - 1].1 != index {
                    if !g.index.is_empty() {
                        g.tap_start.push(g.taps.len());
                    }
                    g.index.push(index);
                }
                g.taps.push(tap);
                j += 1;
            }
        }
        g.start.push(g.index.len());
        if !g.index.is_empty() {
            g.tap_start.push(g.taps.len());
        }
        g
    }

    #[inline]
    fn count(&self, key: usize) -> usize {
        self.start[key + 1] - self.start[key]
    }

    #[inline]
    fn iter(&self, key: usize) -> TapGroups<'_> {
        TapGroups { groups: self, next: self.start[key], end: self.start[key + 1] }
    }
}

/// Iterator over `(index, taps)` groups of one axis: what [`AxisTaps::hits`] and
/// [`AxisTaps::readers`] return.
#[derive(Clone, Debug)]
pub struct TapGroups<'a> {
    groups: &'a Groups,
    next: usize,
    end: usize,
}

impl<'a> Iterator for TapGroups<'a> {
    type Item = (usize, &'a [usize]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.next == self.end {
            return None;
        }
        let h = self.next;
        self.next += 1;
        let g = self.groups;
        Some((g.index[h], &g.taps[g.tap_start[h]..g.tap_start[h + 1]]))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.end - self.next, Some(self.end - self.next))
    }
}

impl ExactSizeIterator for TapGroups<'_> {}

impl AxisTaps {
    fn new(
        size: usize,
        positions: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        pad_begin: usize,
        mode: PaddingMode,
    ) -> Self {
        let mut reads = Vec::with_capacity(positions * kernel);
        let mut by_position = Vec::with_capacity(positions * kernel);
        for o in 0..positions {
            for t in 0..kernel {
                let i = (o * stride + t * dilation) as isize - pad_begin as isize;
                let read = mode.remap(i, size);
                reads.push(read.unwrap_or(NONE));
                if let Some(c) = read {
                    by_position.push((o, c, t));
                }
            }
        }
        let mut by_coord: Vec<_> = by_position.iter().map(|&(o, c, t)| (c, o, t)).collect();
        by_position.sort_unstable();
        by_coord.sort_unstable();
        let hits = Groups::new(positions, &by_position);
        let readers = Groups::new(size, &by_coord);
        Self { size, positions, kernel, reads, hits, readers }
    }

    fn trivial() -> Self {
        Self::new(1, 1, 1, 1, 1, 0, PaddingMode::Zeros)
    }

    /// Grid size along the axis.
    pub fn size(&self) -> usize {
        self.size
    }
    /// Number of window positions along the axis.
    pub fn positions(&self) -> usize {
        self.positions
    }
    /// Kernel size along the axis.
    pub fn kernel(&self) -> usize {
        self.kernel
    }

    /// The grid coordinate that tap `tap` of window `position` reads, or `None` for a zero-padded tap.
    ///
    /// # Panics
    /// When `position` or `tap` is out of range.
    #[inline]
    #[track_caller]
    pub fn read(&self, position: usize, tap: usize) -> Option<usize> {
        assert!(position < self.positions && tap < self.kernel, "position {position} / tap {tap} out of range");
        let c = self.reads[position * self.kernel + tap];
        (c != NONE).then_some(c)
    }

    /// Number of distinct coordinates window `position` reads.
    #[inline]
    pub fn hit_count(&self, position: usize) -> usize {
        self.hits.count(position)
    }

    /// The distinct coordinates window `position` reads, increasing, each with the taps (increasing)
    /// that read it.
    #[inline]
    pub fn hits(&self, position: usize) -> TapGroups<'_> {
        self.hits.iter(position)
    }

    /// Number of window positions that read grid coordinate `coord`.
    #[inline]
    pub fn reader_count(&self, coord: usize) -> usize {
        self.readers.count(coord)
    }

    /// The inverse of [`hits`](Self::hits): the window positions that read grid coordinate `coord`,
    /// increasing, each with the taps (increasing) through which it reads it.
    #[inline]
    pub fn readers(&self, coord: usize) -> TapGroups<'_> {
        self.readers.iter(coord)
    }
}

/// For every (window position, kernel tap) of a convolution, the flat grid position it reads after
/// padding-mode remapping (reflect, replicate, circular), or nothing for a zero-padded tap.
///
/// Built from one [`AxisTaps`] table per spatial axis (the remapping is separable, as in `F.pad`), so it
/// costs `O(sum(positions * kernel))` memory and nothing per tap. Internally every map has three axes:
/// a rank-1 or rank-2 layer gets leading axes of size 1, so one code path serves 1-, 2- and 3-d layers.
///
/// Flat indices are row-major over the spatial dimensions only (add `channel * grid_len` for a channel).
///
/// ```
/// use convmat_shape::{ConvSpec, Geometry, Padding, PaddingMode};
/// // Conv1d(1, 1, 3, padding=1, padding_mode='reflect') on 4 samples
/// let spec = ConvSpec::new(1, 1, 1, [3]).with_padding(Padding::uniform(1)).with_padding_mode(PaddingMode::Reflect);
/// let taps = Geometry::new(&spec, &[4]).unwrap().tap_map();
/// let reads: Vec<_> = (0..3).map(|t| taps.read(0, t)).collect();
/// assert_eq!(reads, [Some(1), Some(0), Some(1)]); // x[-1] reflects to x[1]
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapMap {
    rank: usize,
    axes: [AxisTaps; MAX_RANK],
    grid_strides: [usize; MAX_RANK],
    window_strides: [usize; MAX_RANK],
    kernel_strides: [usize; MAX_RANK],
    grid_len: usize,
    windows_len: usize,
    kernel_len: usize,
}

impl TapMap {
    /// Built by [`crate::Geometry::tap_map`], which has validated every argument.
    pub(crate) fn new(
        grid: &[usize],
        windows: &[usize],
        kernel: &[usize],
        stride: &[usize],
        dilation: &[usize],
        pad_begin: &[usize],
        mode: PaddingMode,
    ) -> Self {
        let rank = grid.len();
        let lead = MAX_RANK - rank;
        let axes: [AxisTaps; MAX_RANK] = std::array::from_fn(|a| {
            if a < lead {
                AxisTaps::trivial()
            } else {
                let d = a - lead;
                AxisTaps::new(grid[d], windows[d], kernel[d], stride[d], dilation[d], pad_begin[d], mode)
            }
        });
        let strides = |f: fn(&AxisTaps) -> usize| {
            let mut s = [1; MAX_RANK];
            for a in (0..MAX_RANK - 1).rev() {
                s[a] = s[a + 1] * f(&axes[a + 1]);
            }
            s
        };
        let grid_strides = strides(AxisTaps::size);
        let window_strides = strides(AxisTaps::positions);
        let kernel_strides = strides(AxisTaps::kernel);
        Self {
            rank,
            grid_len: grid_strides[0] * axes[0].size,
            windows_len: window_strides[0] * axes[0].positions,
            kernel_len: kernel_strides[0] * axes[0].kernel,
            axes,
            grid_strides,
            window_strides,
            kernel_strides,
        }
    }

    /// The layer's spatial rank (the map itself always has three axes).
    pub fn rank(&self) -> usize {
        self.rank
    }
    /// The three axes, outermost first; the first `3 - rank` are trivial (size 1).
    pub fn axes(&self) -> &[AxisTaps; MAX_RANK] {
        &self.axes
    }
    /// Row-major strides of the grid over the three axes.
    pub fn grid_strides(&self) -> [usize; MAX_RANK] {
        self.grid_strides
    }
    /// Row-major strides of the kernel over the three axes.
    pub fn kernel_strides(&self) -> [usize; MAX_RANK] {
        self.kernel_strides
    }
    /// Spatial grid positions (per channel).
    pub fn grid_len(&self) -> usize {
        self.grid_len
    }
    /// Spatial window positions (per channel).
    pub fn windows_len(&self) -> usize {
        self.windows_len
    }
    /// Kernel taps (per channel pair).
    pub fn kernel_len(&self) -> usize {
        self.kernel_len
    }

    /// The per-axis coordinates of a flat window index.
    ///
    /// # Panics
    /// When `window >= windows_len()`.
    #[inline]
    #[track_caller]
    pub fn window_coords(&self, window: usize) -> [usize; MAX_RANK] {
        assert!(window < self.windows_len, "window {window} out of range ({})", self.windows_len);
        coords(window, self.window_strides)
    }

    /// The flat grid position that flat tap `tap` of flat window `window` reads, or `None` when it
    /// lands in zero padding.
    ///
    /// # Panics
    /// When `window` or `tap` is out of range.
    #[track_caller]
    pub fn read(&self, window: usize, tap: usize) -> Option<usize> {
        assert!(tap < self.kernel_len, "tap {tap} out of range ({})", self.kernel_len);
        let w = self.window_coords(window);
        let t = coords(tap, self.kernel_strides);
        let mut flat = 0;
        for a in 0..MAX_RANK {
            flat += self.axes[a].read(w[a], t[a])? * self.grid_strides[a];
        }
        Some(flat)
    }

    /// Calls `f(tap, read)` for every tap of `window`, taps in row-major order.
    #[inline]
    pub fn for_each_read(&self, window: usize, mut f: impl FnMut(usize, Option<usize>)) {
        let w = self.window_coords(window);
        let [a0, a1, a2] = &self.axes;
        let [g0, g1, _] = self.grid_strides;
        let mut tap = 0;
        for t0 in 0..a0.kernel {
            let r0 = a0.reads[w[0] * a0.kernel + t0];
            for t1 in 0..a1.kernel {
                let r1 = a1.reads[w[1] * a1.kernel + t1];
                for t2 in 0..a2.kernel {
                    let r2 = a2.reads[w[2] * a2.kernel + t2];
                    let read = (r0 != NONE && r1 != NONE && r2 != NONE).then(|| r0 * g0 + r1 * g1 + r2);
                    f(tap, read);
                    tap += 1;
                }
            }
        }
    }

    /// Number of distinct grid positions `window` reads (the non-zeros of its matrix row, per input
    /// channel).
    #[inline]
    pub fn hit_count(&self, window: usize) -> usize {
        let w = self.window_coords(window);
        (0..MAX_RANK).map(|a| self.axes[a].hit_count(w[a])).product()
    }

    /// The per-axis coordinates of a flat grid index.
    ///
    /// # Panics
    /// When `grid >= grid_len()`.
    #[inline]
    #[track_caller]
    pub fn grid_coords(&self, grid: usize) -> [usize; MAX_RANK] {
        assert!(grid < self.grid_len, "grid position {grid} out of range ({})", self.grid_len);
        coords(grid, self.grid_strides)
    }

    /// Row-major strides of the window positions over the three axes.
    pub fn window_strides(&self) -> [usize; MAX_RANK] {
        self.window_strides
    }

    /// Number of windows that read grid position `grid` (the non-zeros of a transposed convolution's
    /// matrix row, per channel).
    #[inline]
    pub fn reader_count(&self, grid: usize) -> usize {
        let c = self.grid_coords(grid);
        (0..MAX_RANK).map(|a| self.axes[a].reader_count(c[a])).product()
    }

    /// Calls `f(window, [taps0, taps1, taps2])` for every window that reads grid position `grid`, in
    /// increasing order, with the per-axis taps through which it does: the inverse of
    /// [`for_each_hit`](Self::for_each_hit).
    #[inline]
    pub fn for_each_reader(&self, grid: usize, mut f: impl FnMut(usize, [&[usize]; MAX_RANK])) {
        let c = self.grid_coords(grid);
        let [a0, a1, a2] = &self.axes;
        let [w0, w1, _] = self.window_strides;
        for (o0, t0) in a0.readers(c[0]) {
            for (o1, t1) in a1.readers(c[1]) {
                for (o2, t2) in a2.readers(c[2]) {
                    f(o0 * w0 + o1 * w1 + o2, [t0, t1, t2]);
                }
            }
        }
    }

    /// Calls `f(grid_index, [taps0, taps1, taps2])` for every distinct grid position `window` reads, in
    /// increasing order. The taps that read it are the product of the three per-axis tap lists; the
    /// flat tap is `t0 * kernel_strides[0] + t1 * kernel_strides[1] + t2`.
    #[inline]
    pub fn for_each_hit(&self, window: usize, mut f: impl FnMut(usize, [&[usize]; MAX_RANK])) {
        let w = self.window_coords(window);
        let [a0, a1, a2] = &self.axes;
        let [g0, g1, _] = self.grid_strides;
        for (c0, t0) in a0.hits(w[0]) {
            for (c1, t1) in a1.hits(w[1]) {
                for (c2, t2) in a2.hits(w[2]) {
                    f(c0 * g0 + c1 * g1 + c2, [t0, t1, t2]);
                }
            }
        }
    }
}

/// The three per-axis coordinates of a flat row-major index with strides `s` (`s[2] == 1`).
#[inline]
fn coords(flat: usize, s: [usize; MAX_RANK]) -> [usize; MAX_RANK] {
    [flat / s[0], flat % s[0] / s[1], flat % s[1]]
}

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
    hit_start: Vec<usize>,
    hit_coord: Vec<usize>,
    tap_start: Vec<usize>,
    taps: Vec<usize>,
}

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
        let mut hit_start = Vec::with_capacity(positions + 1);
        let mut hit_coord = Vec::new();
        let mut tap_start = vec![0];
        let mut taps = Vec::new();
        let mut pairs: Vec<(usize, usize)> = Vec::with_capacity(kernel);
        hit_start.push(0);
        for o in 0..positions {
            pairs.clear();
            for t in 0..kernel {
                let i = (o * stride + t * dilation) as isize - pad_begin as isize;
                let read = mode.remap(i, size);
                reads.push(read.unwrap_or(NONE));
                if let Some(c) = read {
                    pairs.push((c, t));
                }
            }
            pairs.sort_unstable();
            for (j, &(c, t)) in pairs.iter().enumerate() {
                if j == 0 || pairs[j - 1].0 != c {
                    if j > 0 {
                        tap_start.push(taps.len());
                    }
                    hit_coord.push(c);
                }
                taps.push(t);
            }
            if !pairs.is_empty() {
                tap_start.push(taps.len());
            }
            hit_start.push(hit_coord.len());
        }
        Self { size, positions, kernel, reads, hit_start, hit_coord, tap_start, taps }
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
        self.hit_start[position + 1] - self.hit_start[position]
    }

    /// The distinct coordinates window `position` reads, increasing, each with the taps (increasing)
    /// that read it.
    #[inline]
    pub fn hits(&self, position: usize) -> impl ExactSizeIterator<Item = (usize, &[usize])> + '_ {
        (self.hit_start[position]..self.hit_start[position + 1])
            .map(move |h| (self.hit_coord[h], &self.taps[self.tap_start[h]..self.tap_start[h + 1]]))
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
        let s = self.window_strides;
        [window / s[0], window % s[0] / s[1], window % s[1]]
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
        let k = self.kernel_strides;
        let t = [tap / k[0], tap % k[0] / k[1], tap % k[1]];
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

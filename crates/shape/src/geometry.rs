use crate::layout::checked_len;
use crate::{ConvSpec, PaddingMode, ShapeError, TapMap};

/// A validated layer applied to a concrete input size: output size, resolved padding, flat sizes and
/// the tap map every matrix builder is built on.
///
/// Shapes are of one sample, channels first, without the batch dimension: `(C, *spatial)`, flattened
/// row-major exactly as `torch.flatten(x[0])`.
///
/// A transposed convolution is described through its *matching* convolution: the convolution with the
/// same weight, stride, padding and dilation that maps the transposed layer's output grid back to its
/// input grid. The kernel always slides over the [`grid`](Self::grid) and stops at the
/// [`windows`](Self::windows) positions; for a plain convolution those are the input and output, for a
/// transposed one the output and input. `conv_transpose(x) = Aᵀ x` where `A` is the matching
/// convolution's matrix.
///
/// ```
/// use convmat_shape::{ConvSpec, Geometry};
/// // LeNet's conv2 on 6x15x15
/// let g = Geometry::new(&ConvSpec::new(2, 6, 16, [3]), &[15, 15]).unwrap();
/// assert_eq!(g.output_shape(), vec![16, 13, 13]);
/// assert_eq!((g.rows(), g.cols()), (16 * 13 * 13, 6 * 15 * 15));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    spec: ConvSpec,
    input: Vec<usize>,
    output: Vec<usize>,
    pad_begin: Vec<usize>,
    pad_end: Vec<usize>,
    input_len: usize,
    output_len: usize,
}

impl Geometry {
    /// Validates `spec` against a spatial input size (without channels) and computes the output size.
    ///
    /// # Errors
    /// Any rule of [`ConvSpec::validate`]; an input of the wrong rank or with a zero dimension; a
    /// padding the padding mode cannot produce (reflect: `pad < input`, circular: `pad <= input`); an
    /// input smaller than the dilated kernel; an empty transposed output; sizes that overflow `usize`.
    pub fn new(spec: &ConvSpec, input: &[usize]) -> Result<Self, ShapeError> {
        spec.validate()?;
        let r = spec.rank();
        if input.len() != r {
            return Err(ShapeError::InputShape {
                layer: spec.to_string(),
                expected: format!("{r} spatial dimensions (C, {})", spatial_names(r)),
                got: input.to_vec(),
            });
        }
        if let Some(d) = input.iter().position(|&n| n == 0) {
            return Err(ShapeError::Zero { param: "input size", dim: Some(d) });
        }
        let (k, s, dil) = (spec.kernel_size(), spec.stride(), spec.dilation());
        let (pad_begin, pad_end) = spec.padding().resolve(input, k, s, dil);
        let mut output = vec![0; r];
        for d in 0..r {
            let n = input[d];
            let (b, e) = (pad_begin[d], pad_end[d]);
            let over = |what| ShapeError::SizeOverflow { dim: d, what, input: input.to_vec(), bits: usize::BITS };
            let eff =
                dil[d].checked_mul(k[d] - 1).and_then(|x| x.checked_add(1)).ok_or_else(|| over("dilated kernel"))?;
            if spec.is_transposed() {
                let size = (n as i128 - 1)
                    .checked_mul(s[d] as i128)
                    .and_then(|x| x.checked_add(eff as i128 + spec.output_padding()[d] as i128))
                    .map(|x| x - b as i128 - e as i128)
                    .ok_or_else(|| over("transposed output"))?;
                if size <= 0 {
                    let size = i64::try_from(size).unwrap_or(i64::MIN);
                    return Err(ShapeError::EmptyOutput { dim: d, size, input: input.to_vec() });
                }
                output[d] = usize::try_from(size).map_err(|_| over("transposed output"))?;
            } else {
                let (mode, limit_ok, rule) = match spec.padding_mode() {
                    PaddingMode::Reflect => ("reflect", b.max(e) < n, "smaller than"),
                    PaddingMode::Circular => ("circular", b.max(e) <= n, "at most"),
                    _ => ("", true, ""),
                };
                if !limit_ok {
                    return Err(ShapeError::PaddingTooLarge { mode, rule, dim: d, pad: b.max(e), input: n });
                }
                let padded = n
                    .checked_add(b)
                    .and_then(|x| x.checked_add(e))
                    .ok_or_else(|| over("padded input (input + padding)"))?;
                if padded < eff {
                    return Err(ShapeError::InputTooSmall {
                        dim: d,
                        input: n,
                        padded,
                        effective: eff,
                        kernel: k[d],
                        dilation: dil[d],
                    });
                }
                output[d] = (padded - eff) / s[d] + 1;
            }
        }
        let input_len = channels_len(spec.in_channels(), input)?;
        let output_len = channels_len(spec.out_channels(), &output)?;
        Ok(Self { spec: spec.clone(), input: input.to_vec(), output, pad_begin, pad_end, input_len, output_len })
    }

    /// The layer.
    pub fn spec(&self) -> &ConvSpec {
        &self.spec
    }
    /// Spatial input size.
    pub fn input_spatial(&self) -> &[usize] {
        &self.input
    }
    /// Spatial output size.
    pub fn output_spatial(&self) -> &[usize] {
        &self.output
    }
    /// `(C_in, *input_spatial)`.
    pub fn input_shape(&self) -> Vec<usize> {
        with_channels(self.spec.in_channels(), &self.input)
    }
    /// `(C_out, *output_spatial)`.
    pub fn output_shape(&self) -> Vec<usize> {
        with_channels(self.spec.out_channels(), &self.output)
    }
    /// Elements of one input sample: the matrix's column count.
    pub fn cols(&self) -> usize {
        self.input_len
    }
    /// Elements of one output sample: the matrix's row count.
    pub fn rows(&self) -> usize {
        self.output_len
    }
    /// Resolved padding before each spatial dimension.
    pub fn pad_begin(&self) -> &[usize] {
        &self.pad_begin
    }
    /// Resolved padding after each spatial dimension.
    pub fn pad_end(&self) -> &[usize] {
        &self.pad_end
    }

    /// The spatial grid the kernel slides over (input of a convolution, output of a transposed one).
    pub fn grid(&self) -> &[usize] {
        if self.spec.is_transposed() {
            &self.output
        } else {
            &self.input
        }
    }
    /// The spatial window positions (output of a convolution, input of a transposed one).
    pub fn windows(&self) -> &[usize] {
        if self.spec.is_transposed() {
            &self.input
        } else {
            &self.output
        }
    }
    /// Channels on the grid side (`in_channels`, or `out_channels` when transposed).
    pub fn grid_channels(&self) -> usize {
        if self.spec.is_transposed() {
            self.spec.out_channels()
        } else {
            self.spec.in_channels()
        }
    }
    /// Channels on the window side (`out_channels`, or `in_channels` when transposed).
    pub fn window_channels(&self) -> usize {
        if self.spec.is_transposed() {
            self.spec.in_channels()
        } else {
            self.spec.out_channels()
        }
    }

    /// For each (window position, kernel tap), the grid position it reads after padding-mode
    /// remapping. See [`TapMap`].
    pub fn tap_map(&self) -> TapMap {
        TapMap::new(
            self.grid(),
            self.windows(),
            self.spec.kernel_size(),
            self.spec.stride(),
            self.spec.dilation(),
            &self.pad_begin,
            self.spec.padding_mode(),
        )
    }
}

fn with_channels(c: usize, spatial: &[usize]) -> Vec<usize> {
    let mut v = Vec::with_capacity(spatial.len() + 1);
    v.push(c);
    v.extend_from_slice(spatial);
    v
}

fn channels_len(c: usize, spatial: &[usize]) -> Result<usize, ShapeError> {
    checked_len(&with_channels(c, spatial))
}

pub(crate) fn spatial_names(rank: usize) -> &'static str {
    match rank {
        1 => "L",
        2 => "H, W",
        _ => "D, H, W",
    }
}

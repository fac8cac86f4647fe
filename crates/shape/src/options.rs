//! The one place where a layer's options (as PyTorch's constructor, command-line flags, Python keyword
//! arguments or ONNX node attributes state them) meet a weight shape and an input shape.

use crate::{ConvSpec, Geometry, Padding, PaddingMode, ShapeError, TrueConvShape, MAX_RANK};

/// A convolution's options as PyTorch's constructor (or an ONNX node's attributes) state them, before
/// the weight is known: everything but the channels and the kernel size, which come from the weight.
///
/// Every front end maps into this type: the command line's `--stride`/`--padding`/... flags, the Python
/// package's keyword arguments and ONNX `Conv`/`ConvTranspose` attributes. [`LayerOptions::geometry`]
/// then checks it against the weight and the input, so the three can never disagree.
///
/// Per-dimension options accept one value (used for every spatial dimension) or one per dimension, like
/// PyTorch's ints-or-tuples; an empty list means the default.
///
/// ```
/// use convmat_shape::{LayerOptions, Padding, PaddingMode};
/// // nn.Conv2d(3, 16, 3, stride=2, padding=1, padding_mode='reflect') on 3x32x32
/// let opts = LayerOptions::new()
///     .with_stride([2])
///     .with_padding(Padding::uniform(1))
///     .with_padding_mode(PaddingMode::Reflect);
/// let g = opts.geometry(&[16, 3, 3, 3], Some(16), &[3, 32, 32])?;
/// assert_eq!(g.output_shape(), vec![16, 16, 16]);
/// # Ok::<(), convmat_shape::ShapeError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct LayerOptions {
    /// `stride`: empty (1), one value, or one per spatial dimension.
    pub stride: Vec<usize>,
    /// `padding`: ints, per dimension, ONNX begins/ends, `same`, `valid`, `same_upper`, `same_lower`.
    pub padding: Padding,
    /// `dilation`: empty (1), one value, or one per spatial dimension.
    pub dilation: Vec<usize>,
    /// `groups` (at least 1).
    pub groups: usize,
    /// `padding_mode`.
    pub padding_mode: PaddingMode,
    /// A transposed convolution (`ConvTranspose`): the weight is `(C_in, C_out/groups, *k)`.
    pub transposed: bool,
    /// `output_padding` of a transposed convolution: empty (0), one value, or one per dimension.
    pub output_padding: Vec<usize>,
    /// True convolution (the kernel flipped, MATLAB `conv2`/`convn`) with this output shape, instead of
    /// PyTorch's cross-correlation. Replaces `padding`.
    pub flip: Option<TrueConvShape>,
}

impl Default for LayerOptions {
    fn default() -> Self {
        Self {
            stride: Vec::new(),
            padding: Padding::Valid,
            dilation: Vec::new(),
            groups: 1,
            padding_mode: PaddingMode::Zeros,
            transposed: false,
            output_padding: Vec::new(),
            flip: None,
        }
    }
}

impl LayerOptions {
    /// PyTorch's defaults: stride 1, padding 0, dilation 1, groups 1, zeros padding.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `stride`.
    pub fn with_stride(mut self, stride: impl AsRef<[usize]>) -> Self {
        self.stride = stride.as_ref().to_vec();
        self
    }
    /// Sets `padding`.
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }
    /// Sets `dilation`.
    pub fn with_dilation(mut self, dilation: impl AsRef<[usize]>) -> Self {
        self.dilation = dilation.as_ref().to_vec();
        self
    }
    /// Sets `groups`.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }
    /// Sets `padding_mode`.
    pub fn with_padding_mode(mut self, mode: PaddingMode) -> Self {
        self.padding_mode = mode;
        self
    }
    /// Sets whether the layer is transposed.
    pub fn with_transposed(mut self, transposed: bool) -> Self {
        self.transposed = transposed;
        self
    }
    /// Sets `output_padding`.
    pub fn with_output_padding(mut self, output_padding: impl AsRef<[usize]>) -> Self {
        self.output_padding = output_padding.as_ref().to_vec();
        self
    }
    /// Sets the true-convolution shape (`None`: PyTorch's cross-correlation).
    pub fn with_flip(mut self, flip: Option<TrueConvShape>) -> Self {
        self.flip = flip;
        self
    }

    /// The options a layer expression states (`Conv2d(3, 16, 3, stride=2)` and the like); its channels
    /// and kernel size are checked against the weight by [`LayerOptions::spec_for`].
    pub fn from_spec(spec: &ConvSpec) -> Self {
        Self {
            stride: spec.stride().to_vec(),
            padding: spec.padding().clone(),
            dilation: spec.dilation().to_vec(),
            groups: spec.groups(),
            padding_mode: spec.padding_mode(),
            transposed: spec.is_transposed(),
            output_padding: spec.output_padding().to_vec(),
            flip: None,
        }
    }

    /// The validated layer a weight of `weight_shape` describes under these options: the rank is
    /// `weight_shape.len() - 2`; channels and kernel size come from the weight. With `flip`, the padding
    /// is the true-convolution shape's.
    ///
    /// # Errors
    /// A weight with fewer than 3 or more than 5 dimensions or a zero dimension, a per-dimension option
    /// with neither 1 nor `rank` values, and every rule of [`ConvSpec::validate`].
    pub fn spec(&self, weight_shape: &[usize]) -> Result<ConvSpec, ShapeError> {
        if self.groups == 0 {
            return Err(ShapeError::Zero { param: "groups", dim: None });
        }
        let mut spec = ConvSpec::from_weight_shape(weight_shape, self.groups, self.transposed)?;
        let rank = spec.rank();
        for (param, v) in
            [("stride", &self.stride), ("dilation", &self.dilation), ("output_padding", &self.output_padding)]
        {
            if !(v.is_empty() || v.len() == 1 || v.len() == rank) {
                return Err(ShapeError::Arity { param, expected: rank, got: v.len() });
            }
        }
        if !self.output_padding.is_empty() && !self.transposed && self.output_padding.iter().any(|&p| p != 0) {
            return Err(ShapeError::Invalid {
                param: "output_padding",
                value: format!("{:?}", self.output_padding),
                valid: "output_padding applies to transposed convolutions only; use 0".into(),
            });
        }
        if !self.stride.is_empty() {
            spec = spec.with_stride(&self.stride);
        }
        if !self.dilation.is_empty() {
            spec = spec.with_dilation(&self.dilation);
        }
        if !self.output_padding.is_empty() {
            spec = spec.with_output_padding(&self.output_padding);
        }
        let padding = match self.flip {
            Some(shape) => {
                if self.transposed {
                    return Err(ShapeError::Transposed {
                        what: "a true (flipped-kernel) convolution cannot also be transposed".into(),
                    });
                }
                shape.padding(spec.kernel_size(), spec.dilation())
            }
            None => self.padding.clone(),
        };
        spec = spec.with_padding(padding).with_padding_mode(self.padding_mode);
        spec.validate()?;
        Ok(spec)
    }

    /// The layer an expression states, checked against a weight of `weight_shape`: the expression's
    /// channels, kernel size and rank must match the weight's.
    ///
    /// # Errors
    /// [`ShapeError::WeightShape`] when they do not, and everything [`LayerOptions::spec`] checks.
    pub fn spec_for(expression: &ConvSpec, weight_shape: &[usize]) -> Result<ConvSpec, ShapeError> {
        expression.validate()?;
        expression.check_weight_shape(weight_shape)?;
        LayerOptions::from_spec(expression).spec(weight_shape)
    }

    /// The geometry of this layer with a weight of `weight_shape` (and a bias of `bias_len` values, if
    /// any) on one input sample of shape `(C, *spatial)`: every shape checked against the others.
    ///
    /// # Errors
    /// Everything [`LayerOptions::spec`] checks; an input shape whose rank differs from the weight's or
    /// whose channels differ from the layer's; a bias whose length is not the output channels; every
    /// rule of [`Geometry::new`] (input smaller than the kernel, padding the mode cannot produce, ...).
    pub fn geometry(
        &self,
        weight_shape: &[usize],
        bias_len: Option<usize>,
        input_shape: &[usize],
    ) -> Result<Geometry, ShapeError> {
        self.check_input_rank(weight_shape, input_shape)?;
        let spec = self.spec(weight_shape)?;
        if let Some(len) = bias_len {
            spec.check_bias_len(len)?;
        }
        let spec = spec.with_bias(bias_len.is_some());
        if input_shape[0] != spec.in_channels() {
            let error = ShapeError::Channels {
                input: input_shape.to_vec(),
                got: input_shape[0],
                expected: spec.in_channels(),
                weight: weight_shape.to_vec(),
            };
            return Err(match self.other_reading(weight_shape, input_shape) {
                Some(hint) => ShapeError::Misread { error: Box::new(error), hint },
                None => error,
            });
        }
        Geometry::new(&spec, &input_shape[1..]).map_err(|error| {
            match (&error, self.tensorflow(weight_shape, input_shape)) {
                (ShapeError::InputTooSmall { .. }, Some(hint)) => ShapeError::Misread { error: Box::new(error), hint },
                _ => error,
            }
        })
    }

    /// A doubt about a weight that [`LayerOptions::geometry`] accepts: the text of a warning when the
    /// reading asked for is implausible and another layout fits better. Today: a weight in TensorFlow's
    /// `(*kernel, C_in, C_out)` layout read as PyTorch's, seen as a kernel larger than the input along
    /// some dimension (it fits only through padding), or a non-square kernel where TensorFlow's reading
    /// gives a square one.
    pub fn doubt(&self, weight_shape: &[usize], input_shape: &[usize]) -> Option<String> {
        let rank = weight_shape.len().checked_sub(2)?;
        if input_shape.len() != rank + 1 {
            return None;
        }
        let kernel = &weight_shape[2..];
        let square = |k: &[usize]| k.iter().all(|&d| d == k[0]);
        let too_large = kernel.iter().zip(&input_shape[1..]).any(|(k, x)| k > x);
        let implausible = too_large || (!square(kernel) && square(&weight_shape[..rank]));
        implausible.then(|| self.tensorflow(weight_shape, input_shape)).flatten()
    }

    /// What another reading of the weight would be, when the one asked for does not fit the input's
    /// channels: transposed or not, or TensorFlow's layout.
    fn other_reading(&self, weight_shape: &[usize], input_shape: &[usize]) -> Option<String> {
        let channels = input_shape[0];
        if !self.transposed && weight_shape[0] == channels {
            return Some(
                "the weight fits a transposed convolution (ConvTranspose weights are (C_in, C_out/groups, \
                 *kernel)): pass transposed=True (CLI: --transposed)"
                    .into(),
            );
        }
        if self.transposed && weight_shape[1].saturating_mul(self.groups) == channels {
            return Some("the weight fits a plain convolution ((C_out, C_in/groups, *kernel)): drop transposed".into());
        }
        self.tensorflow(weight_shape, input_shape)
    }

    /// The hint for a weight in TensorFlow's `(*kernel, C_in, C_out)` layout, when that reading fits the
    /// input: its channels and a kernel no larger than the input.
    fn tensorflow(&self, weight_shape: &[usize], input_shape: &[usize]) -> Option<String> {
        let rank = weight_shape.len().checked_sub(2)?;
        if self.transposed || self.groups != 1 || input_shape.len() != rank + 1 {
            return None;
        }
        let kernel = &weight_shape[..rank];
        let fits = weight_shape[rank] == input_shape[0] && kernel.iter().zip(&input_shape[1..]).all(|(k, x)| k <= x);
        let pytorch: Vec<usize> = [weight_shape[rank + 1], weight_shape[rank]].iter().chain(kernel).copied().collect();
        if !fits || pytorch == weight_shape {
            return None;
        }
        let order: Vec<String> = [rank + 1, rank].into_iter().chain(0..rank).map(|a| a.to_string()).collect();
        Some(format!(
            "weight shape {weight_shape:?} looks like TensorFlow's (*kernel, C_in, C_out) layout; convmat reads \
             PyTorch's (C_out, C_in/groups, *kernel): transpose it to {pytorch:?} first \
             (NumPy: w.transpose({}))",
            order.join(", ")
        ))
    }

    /// The input-shape checks every front end makes before anything else: `(C, *spatial)` with 1 to 3
    /// spatial sizes, and as many spatial dimensions as the weight has kernel dimensions. An input shape
    /// with no channels or with a batch dimension is named as such, with the shape probably meant.
    fn check_input_rank(&self, weight_shape: &[usize], input_shape: &[usize]) -> Result<(), ShapeError> {
        let layout = |problem: &'static str, meant: Vec<usize>| ShapeError::InputLayout {
            input: input_shape.into(),
            weight: weight_shape.into(),
            problem,
            meant: meant.into(),
        };
        if (3..=MAX_RANK + 2).contains(&weight_shape.len()) {
            let in_channels =
                if self.transposed { weight_shape[0] } else { weight_shape[1].saturating_mul(self.groups) };
            if input_shape.len() + 2 == weight_shape.len() {
                let meant = [in_channels].iter().chain(input_shape).copied().collect::<Vec<_>>();
                return Err(layout("lacks the channel dimension", meant));
            }
            // (N, C, *spatial): the layer's channels second
            if input_shape.len() == weight_shape.len() && input_shape[1] == in_channels {
                return Err(layout("includes the batch dimension", input_shape[1..].to_vec()));
            }
        }
        if !(2..=MAX_RANK + 1).contains(&input_shape.len()) {
            return Err(ShapeError::Invalid {
                param: "input shape",
                value: format!("{input_shape:?}"),
                valid: "expected C,L or C,H,W or C,D,H,W (channels, then 1 to 3 spatial sizes)".into(),
            });
        }
        let rank = input_shape.len() - 1;
        if weight_shape.len() != rank + 2 {
            return Err(ShapeError::Invalid {
                param: "weight shape",
                value: format!("{weight_shape:?} ({} dims)", weight_shape.len()),
                valid: format!(
                    "the input shape {input_shape:?} has {rank} spatial dims, so a {rank}-d convolution weight \
                     with {} dims (C_out, C_in/groups, *kernel) is needed",
                    rank + 2
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_pytorchs() {
        let spec = LayerOptions::new().spec(&[16, 3, 3, 3]).unwrap();
        assert_eq!(spec, ConvSpec::new(2, 3, 16, [3]).with_padding(Padding::Valid));
    }

    #[test]
    fn every_shape_is_checked_against_the_others() {
        let o = LayerOptions::new();
        let check = |w: &[usize], b: Option<usize>, x: &[usize], fragment: &str| {
            let e = o.geometry(w, b, x).unwrap_err().to_string();
            assert!(e.contains(fragment), "{e} lacks {fragment}");
        };
        check(&[4, 3, 3, 3], None, &[3, 7], "1 spatial dims");
        check(&[4, 3, 3, 3], None, &[2, 7, 7], "2 channels but the layer takes 3");
        check(&[4, 3, 3, 3], Some(3), &[3, 7, 7], "bias has 3 values, expected 4");
        check(&[4, 3, 3, 3], None, &[3, 2, 7], "smaller than the dilated kernel");
        check(&[4, 3, 3, 3], None, &[3], "C,L or C,H,W");
        let e = o.clone().with_stride([1, 2, 3]).spec(&[4, 3, 3, 3]).unwrap_err();
        assert_eq!(e, ShapeError::Arity { param: "stride", expected: 2, got: 3 });
        let e = o.clone().with_groups(2).spec(&[3, 3, 3, 3]).unwrap_err();
        assert_eq!(e, ShapeError::Groups { param: "out_channels", channels: 3, groups: 2 });
        assert!(o.clone().with_output_padding([1]).spec(&[4, 3, 3]).is_err());
        assert!(o.with_groups(0).spec(&[4, 3, 3]).is_err());
    }

    #[test]
    fn an_input_shape_that_is_not_one_sample_says_what_was_meant() {
        let o = LayerOptions::new();
        let e = o.geometry(&[16, 3, 3, 3], None, &[32, 32]).unwrap_err();
        assert!(matches!(&e, ShapeError::InputLayout { meant, .. } if **meant == [3, 32, 32]), "{e}");
        assert!(e.to_string().contains("lacks the channel dimension"), "{e}");
        let e = o.geometry(&[16, 3, 3, 3], None, &[1, 3, 32, 32]).unwrap_err();
        assert!(matches!(&e, ShapeError::InputLayout { meant, .. } if **meant == [3, 32, 32]), "{e}");
        // transposed: the input channels are the weight's first dim
        let t = o.clone().with_transposed(true);
        let e = t.geometry(&[3, 16, 3, 3], None, &[8, 8]).unwrap_err();
        assert!(matches!(&e, ShapeError::InputLayout { meant, .. } if **meant == [3, 8, 8]), "{e}");
        // a 3-d input whose second size is not the channels is not read as a batch
        let e = o.geometry(&[4, 3, 3], None, &[5, 7, 6]).unwrap_err();
        assert!(matches!(e, ShapeError::Invalid { .. }), "{e}");
    }

    #[test]
    fn a_weight_that_fits_another_reading_says_which() {
        let o = LayerOptions::new();
        let e = o.geometry(&[3, 16, 3, 3], None, &[3, 8, 8]).unwrap_err().to_string();
        assert!(e.contains("transposed=True"), "{e}");
        let e = o.clone().with_transposed(true).geometry(&[16, 3, 3, 3], None, &[3, 8, 8]).unwrap_err().to_string();
        assert!(e.contains("drop transposed"), "{e}");
        // TensorFlow (kh, kw, C_in, C_out): channels that only that reading fits, or a kernel too large
        let e = o.geometry(&[5, 5, 3, 16], None, &[3, 6, 6]).unwrap_err().to_string();
        assert!(
            e.contains("TensorFlow") && e.contains("[16, 3, 5, 5]") && e.contains("w.transpose(3, 2, 0, 1)"),
            "{e}"
        );
        let e = o.geometry(&[3, 3, 3, 16], None, &[3, 8, 8]).unwrap_err();
        assert!(
            matches!(&e, ShapeError::Misread { error, .. } if matches!(**error, ShapeError::InputTooSmall { .. })),
            "{e}"
        );
        // valid but implausible: a doubt, not an error; PyTorch-layout weights raise none
        assert!(o.geometry(&[3, 3, 3, 16], None, &[3, 32, 32]).is_ok());
        assert!(o.doubt(&[3, 3, 3, 16], &[3, 32, 32]).is_some_and(|d| d.contains("TensorFlow")));
        assert_eq!(o.doubt(&[16, 3, 3, 3], &[3, 32, 32]), None);
        assert_eq!(o.doubt(&[16, 3, 1, 3], &[3, 32, 32]), None);
    }

    #[test]
    fn an_expression_must_match_its_weight() {
        let expr = ConvSpec::new(2, 3, 16, [3]).with_stride([2]);
        assert!(LayerOptions::spec_for(&expr, &[16, 3, 3, 3]).is_ok());
        let e = LayerOptions::spec_for(&expr, &[16, 3, 5, 5]).unwrap_err();
        assert!(matches!(e, ShapeError::WeightShape { .. }), "{e}");
    }

    #[test]
    fn flip_replaces_the_padding() {
        let spec = LayerOptions::new().with_flip(Some(TrueConvShape::Full)).spec(&[1, 1, 3, 2]).unwrap();
        assert_eq!(spec.padding(), &Padding::Explicit { begin: vec![2, 1], end: vec![2, 1] });
    }
}

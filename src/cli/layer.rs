//! The layer flags `build`, `check`, `apply` and `svd` share, and turning them into a checked layer.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use convmat_io::{read_array, read_safetensors_layer, Tensor};
use convmat_matrix::flip_kernel;
use convmat_shape::{parse_layer, ConvSpec, Geometry, Layer, Padding, PaddingMode, TrueConvShape};

use super::args::{parse_shape, Dims};

/// Which layer, with which weights, on which input.
#[derive(Debug, Args, Clone)]
pub struct LayerArgs {
    /// Weight: W.npy, W.npz[:key] or FILE.safetensors:NAME. Layout (C_out, C_in/groups, *k), or
    /// (C_in, C_out/groups, *k) with --transposed.
    #[arg(long, value_name = "FILE")]
    pub weight: Option<PathBuf>,
    /// A PyTorch state_dict saved with safetensors; --layer NAME picks NAME.weight and NAME.bias.
    #[arg(long, value_name = "FILE.safetensors")]
    pub weights: Option<PathBuf>,
    /// Bias, one value per output channel (npy/npz/safetensors as --weight).
    #[arg(long, value_name = "FILE")]
    pub bias: Option<PathBuf>,
    /// A layer name in --weights (e.g. conv1), and/or the layer as a PyTorch expression
    /// (e.g. "Conv2d(3, 16, 3, padding=1, padding_mode='circular')") checked against the weight.
    #[arg(long, value_name = "NAME|EXPR")]
    pub layer: Vec<String>,
    /// One input sample: C,L or C,H,W or C,D,H,W (the spatial rank follows from it).
    #[arg(long, value_name = "C,H,W", value_parser = parse_shape)]
    pub input_shape: Option<Dims>,
    /// Stride: one int, or one per spatial dim (2,1).
    #[arg(long, value_name = "S", allow_hyphen_values = true)]
    pub stride: Option<String>,
    /// Padding: one int, one per dim, 2 x dims ints in ONNX order (begins then ends), same, valid,
    /// same_upper or same_lower.
    #[arg(long, value_name = "P", allow_hyphen_values = true)]
    pub padding: Option<String>,
    /// Dilation: one int, or one per spatial dim.
    #[arg(long, value_name = "D", allow_hyphen_values = true)]
    pub dilation: Option<String>,
    /// Groups.
    #[arg(long, value_name = "G")]
    pub groups: Option<usize>,
    /// zeros, reflect, replicate or circular.
    #[arg(long, value_name = "MODE")]
    pub padding_mode: Option<String>,
    /// A transposed convolution (ConvTranspose); the weight is (C_in, C_out/groups, *k).
    #[arg(long)]
    pub transposed: bool,
    /// Output padding of a transposed convolution: one int, or one per spatial dim.
    #[arg(long, value_name = "P", allow_hyphen_values = true)]
    pub output_padding: Option<String>,
    /// True convolution (kernel flipped, MATLAB conv2/convn) instead of PyTorch's cross-correlation.
    #[arg(long)]
    pub flip: bool,
    /// Output shape with --flip: full (default), same or valid.
    #[arg(long, value_name = "SHAPE", requires = "flip")]
    pub shape: Option<String>,
}

/// A layer ready to build: geometry, flat weight (already flipped for --flip) and bias.
pub struct Resolved {
    pub geometry: Geometry,
    pub weight: Vec<f64>,
    pub bias: Option<Vec<f64>>,
    /// How the layer reads: the PyTorch expression.
    pub description: String,
}

fn per_dim(name: &str, text: &str, rank: usize) -> Result<Vec<usize>> {
    let vals: Result<Vec<usize>, _> = text.split(',').map(|s| s.trim().parse::<usize>()).collect();
    match vals {
        Ok(v) if v.len() == 1 || v.len() == rank => Ok(v),
        _ => bail!("invalid --{name} '{text}': expected one non-negative integer or {rank} comma-separated (one per spatial dim)"),
    }
}

fn load(path: &std::path::Path, what: &str) -> Result<Tensor> {
    read_array(path).with_context(|| format!("reading the {what}"))
}

impl LayerArgs {
    fn flags_given(&self) -> bool {
        self.stride.is_some()
            || self.padding.is_some()
            || self.dilation.is_some()
            || self.groups.is_some()
            || self.padding_mode.is_some()
            || self.transposed
            || self.output_padding.is_some()
    }

    /// Reads the weight (and bias), builds the layer from the flags or the expression, and checks
    /// every shape against the others.
    pub fn resolve(&self) -> Result<Resolved> {
        let Some(input) = &self.input_shape else {
            bail!("--input-shape is required: the shape of one input sample, e.g. 3,32,32 (C,H,W)");
        };
        self.resolve_for(&input.0)
    }

    /// As [`resolve`](Self::resolve), for a given sample shape `(C, *spatial)`.
    pub fn resolve_for(&self, input: &[usize]) -> Result<Resolved> {
        let (weight, bias) = self.load()?;
        self.resolve_loaded(input, weight, bias)
    }

    /// Reads the weight and bias the flags name (each file once).
    pub fn load(&self) -> Result<(Tensor, Option<Tensor>)> {
        let names: Vec<&String> = self.layer.iter().filter(|l| !l.contains('(')).collect();
        if names.len() > 1 {
            bail!("--layer names {} layers: give at most one layer name and one layer expression", names.len());
        }
        let (weight, mut bias) = match (&self.weight, &self.weights, names.first()) {
            (Some(w), None, _) => (load(w, "weight")?, None),
            (None, Some(st), Some(name)) => {
                read_safetensors_layer(st, name).with_context(|| format!("reading layer '{name}'"))?
            }
            (None, Some(st), None) => {
                let layers = convmat_io::safetensors_layers(st)?;
                bail!("--weights needs --layer NAME to pick a layer; {} has: {}", st.display(), layers.join(", "))
            }
            (Some(_), Some(_), _) => {
                bail!("give either --weight FILE or --weights FILE.safetensors --layer NAME, not both")
            }
            (None, None, _) => bail!("no weight: give --weight FILE or --weights FILE.safetensors --layer NAME"),
        };
        if let Some(b) = &self.bias {
            bias = Some(load(b, "bias")?);
        }
        Ok((weight, bias))
    }

    /// As [`resolve_for`](Self::resolve_for), with the weight and bias already read.
    pub fn resolve_loaded(&self, input: &[usize], weight: Tensor, bias: Option<Tensor>) -> Result<Resolved> {
        if input.len() < 2 || input.len() > 4 {
            bail!(
                "invalid --input-shape {:?}: expected C,L or C,H,W or C,D,H,W (channels, then 1 to 3 spatial sizes)",
                input
            );
        }
        let rank = input.len() - 1;
        let input = &input.to_vec();
        let exprs: Vec<&String> = self.layer.iter().filter(|l| l.contains('(')).collect();
        if exprs.len() > 1 {
            bail!("--layer was given {} expressions: give at most one", exprs.len());
        }
        if weight.shape.len() != rank + 2 {
            bail!(
                "weight has shape {:?} ({} dims) but --input-shape {:?} has {rank} spatial dims: a {rank}-d convolution weight has {} dims (C_out, C_in/groups, *kernel)",
                weight.shape,
                weight.shape.len(),
                input,
                rank + 2
            );
        }
        let spec = if let Some(expr) = exprs.first() {
            if self.flags_given() {
                bail!("give the layer either as --layer EXPR or with flags (--stride, --padding, ...), not both");
            }
            let Layer::Conv(spec) = parse_layer(expr).context("--layer")? else {
                bail!("--layer '{expr}' is not a convolution (Conv1d-3d or ConvTranspose1d-3d)");
            };
            if spec.rank() != rank {
                bail!("--layer '{expr}' is {}-d but --input-shape {:?} has {rank} spatial dims", spec.rank(), input);
            }
            spec
        } else {
            self.spec_from_flags(&weight.shape, rank)?
        };
        spec.check_weight_shape(&weight.shape).context("--weight does not fit the layer")?;
        let spec = match &bias {
            Some(b) => {
                if b.shape.len() != 1 {
                    bail!("bias has shape {:?}: expected a vector of {} values", b.shape, spec.out_channels());
                }
                spec.check_bias_len(b.data.len())?;
                spec.with_bias(true)
            }
            None => spec.with_bias(false),
        };
        if input[0] != spec.in_channels() {
            bail!(
                "--input-shape {:?} has {} channels but the layer takes {} (weight shape {:?})",
                input,
                input[0],
                spec.in_channels(),
                weight.shape
            );
        }
        let (spec, data) = if self.flip {
            let shape: TrueConvShape = self.shape.as_deref().unwrap_or("full").parse()?;
            let padding = shape.padding(spec.kernel_size(), spec.dilation());
            (spec.with_padding(padding), flip_kernel(&weight.data, &weight.shape))
        } else {
            (spec, weight.data)
        };
        let geometry = Geometry::new(&spec, &input[1..])?;
        Ok(Resolved { description: spec.to_string(), geometry, weight: data, bias: bias.map(|b| b.data) })
    }

    fn spec_from_flags(&self, weight_shape: &[usize], rank: usize) -> Result<ConvSpec> {
        let groups = self.groups.unwrap_or(1);
        if groups == 0 {
            bail!("invalid --groups 0: expected a positive integer");
        }
        let mut spec = ConvSpec::from_weight_shape(weight_shape, groups, self.transposed)?;
        if let Some(s) = &self.stride {
            let v = per_dim("stride", s, rank)?;
            if v.contains(&0) {
                bail!("invalid --stride '{s}': strides must be at least 1");
            }
            spec = spec.with_stride(v);
        }
        if let Some(d) = &self.dilation {
            let v = per_dim("dilation", d, rank)?;
            if v.contains(&0) {
                bail!("invalid --dilation '{d}': dilations must be at least 1");
            }
            spec = spec.with_dilation(v);
        }
        if let Some(p) = &self.padding {
            spec = spec.with_padding(Padding::parse(p, rank)?);
        }
        if let Some(m) = &self.padding_mode {
            spec = spec.with_padding_mode(m.parse::<PaddingMode>()?);
        }
        if let Some(op) = &self.output_padding {
            if !self.transposed {
                bail!("--output-padding needs --transposed");
            }
            spec = spec.with_output_padding(per_dim("output-padding", op, rank)?);
        }
        spec.validate()?;
        Ok(spec)
    }
}

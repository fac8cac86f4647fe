//! The layer flags `build`, `check`, `apply` and `svd` share, and turning them into a checked layer.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use convmat_io::{read_array, read_safetensors_layer, Tensor};
use convmat_matrix::ConvLayer;
use convmat_shape::{parse_layer, split_sequential, Layer, LayerOptions, Padding, PaddingMode, TrueConvShape};

use super::args::{parse_shape, Dims};

/// Which layer, with which weights, on which input.
#[derive(Debug, Args, Clone)]
pub struct LayerArgs {
    /// Weight: W.npy, W.npz[:key] or FILE.safetensors:NAME. Layout (C_out, C_in/groups, *k), or
    /// (C_in, C_out/groups, *k) with --transposed.
    #[arg(long, value_name = "FILE")]
    pub weight: Option<PathBuf>,
    /// A PyTorch state_dict saved with safetensors (--layer NAME picks NAME.weight and NAME.bias),
    /// or an ONNX model (--layer NODE_NAME picks a Conv/ConvTranspose node: geometry from its
    /// attributes, shapes from the graph).
    #[arg(long, value_name = "FILE.safetensors|MODEL.onnx")]
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
    pub fn resolve(&self) -> Result<ConvLayer> {
        if self.onnx_model().is_some() {
            return self.resolve_onnx(self.input_shape.as_ref().map(|d| d.0.as_slice()));
        }
        let Some(input) = &self.input_shape else {
            bail!("--input-shape is required: the shape of one input sample, e.g. 3,32,32 (C,H,W)");
        };
        self.resolve_for(&input.0)
    }

    /// As [`resolve`](Self::resolve), for a given sample shape `(C, *spatial)`.
    pub fn resolve_for(&self, input: &[usize]) -> Result<ConvLayer> {
        if self.onnx_model().is_some() {
            return self.resolve_onnx(Some(input));
        }
        let (weight, bias) = self.load()?;
        self.resolve_loaded(input, weight, bias)
    }

    /// The ONNX model given as --weights, if it is one.
    pub fn onnx_model(&self) -> Option<&std::path::Path> {
        self.weights.as_deref().filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx")))
    }

    /// A Conv/ConvTranspose node of the ONNX model (`--weights MODEL.onnx --layer NODE_NAME`): the
    /// geometry comes from its attributes and the input shape from the graph (`input` only where the
    /// model's shapes are dynamic).
    pub fn resolve_onnx(&self, input: Option<&[usize]>) -> Result<ConvLayer> {
        let model_path = self.onnx_model().context("--weights is not an .onnx model")?;
        self.check_onnx_only()?;
        let [node] = self.layer.as_slice() else {
            bail!(
                "--weights {} needs one --layer NODE_NAME (`convmat onnx MODEL.onnx` lists the nodes)",
                model_path.display()
            );
        };
        let model = convmat_onnx::Model::load(model_path)?;
        Ok(model.conv_layer(node, input)?)
    }

    /// The layers of a network given as `--layer "Sequential(...)"` (or as several `--layer`
    /// expressions), parsed; `None` for one layer.
    pub fn chain(&self) -> Result<Option<Vec<Layer>>> {
        let exprs: Vec<&String> = self.layer.iter().filter(|l| l.contains('(')).collect();
        let texts = split_sequential(&exprs).context("--layer")?;
        if exprs.len() <= 1 && texts.iter().eq(exprs.iter().copied()) {
            return Ok(None);
        }
        let layers =
            texts.iter().enumerate().map(|(i, t)| parse_layer(t).with_context(|| format!("--layer: layer {}", i + 1)));
        Ok(Some(layers.collect::<Result<_>>()?))
    }

    /// The `state_dict` a `Sequential(...)` reads its weights from (`--weights FILE.safetensors|FILE.npz`),
    /// refusing the flags that describe one layer by hand.
    pub fn chain_weights(&self) -> Result<&std::path::Path> {
        if self.flags_given() || self.flip || self.weight.is_some() || self.bias.is_some() {
            bail!(
                "a Sequential(...) takes its layers from the expression and its weights from --weights: drop \
                 --weight, --bias, --stride, --padding, --dilation, --groups, --padding-mode, --transposed, \
                 --output-padding and --flip"
            );
        }
        if let Some(name) = self.layer.iter().find(|l| !l.contains('(')) {
            bail!("--layer {name}: a Sequential(...) is the whole network; drop the layer name");
        }
        self.weights.as_deref().filter(|_| self.onnx_model().is_none()).context(
            "a Sequential(...) needs --weights STATE_DICT.safetensors (or .npz) holding its tensors by \
             PyTorch's state_dict names: 0.weight, 2.weight, ...",
        )
    }

    /// With an ONNX model, refuses the flags that describe a layer by hand.
    pub fn check_onnx_only(&self) -> Result<()> {
        if self.flags_given() || self.flip || self.weight.is_some() || self.bias.is_some() {
            bail!(
                "with an ONNX model the layer comes from the node: drop --weight, --bias, --stride, --padding, \
                 --dilation, --groups, --padding-mode, --transposed, --output-padding and --flip"
            );
        }
        Ok(())
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
    pub fn resolve_loaded(&self, input: &[usize], weight: Tensor, bias: Option<Tensor>) -> Result<ConvLayer> {
        let exprs: Vec<&String> = self.layer.iter().filter(|l| l.contains('(')).collect();
        if exprs.len() > 1 {
            bail!("--layer was given {} expressions: give at most one", exprs.len());
        }
        if let Some(b) = &bias {
            if b.shape.len() != 1 {
                bail!("bias has shape {:?}: expected a vector (one value per output channel)", b.shape);
            }
        }
        let bias = bias.map(|b| b.data);
        let rank = input.len().saturating_sub(1).max(1);
        let options = if let Some(expr) = exprs.first() {
            if self.flags_given() {
                bail!("give the layer either as --layer EXPR or with flags (--stride, --padding, ...), not both");
            }
            let Layer::Conv(spec) = parse_layer(expr).context("--layer")? else {
                bail!("--layer '{expr}' is not a convolution (Conv1d-3d or ConvTranspose1d-3d)");
            };
            let options = LayerOptions::from_spec(&LayerOptions::spec_for(&spec, &weight.shape)?);
            if self.flip {
                options.with_flip(Some(self.true_conv_shape()?))
            } else {
                options
            }
        } else {
            self.options(rank)?
        };
        Ok(ConvLayer::new(&weight.shape, weight.data, bias, input, &options)?)
    }

    fn true_conv_shape(&self) -> Result<TrueConvShape> {
        Ok(self.shape.as_deref().unwrap_or("full").parse()?)
    }

    /// The flags as the library's layer options (the weight and the input are checked against them
    /// by [`ConvLayer::new`]).
    fn options(&self, rank: usize) -> Result<LayerOptions> {
        let list = |param: &'static str, text: &Option<String>| match text {
            Some(text) => convmat_shape::parse_counts(param, text),
            None => Ok(Vec::new()),
        };
        let padding = match &self.padding {
            Some(p) => Padding::parse(p, rank)?,
            None => Padding::Valid,
        };
        let mut options = LayerOptions::new()
            .with_stride(list("--stride", &self.stride)?)
            .with_dilation(list("--dilation", &self.dilation)?)
            .with_output_padding(list("--output-padding", &self.output_padding)?)
            .with_groups(self.groups.unwrap_or(1))
            .with_padding(padding)
            .with_transposed(self.transposed);
        if let Some(m) = &self.padding_mode {
            options = options.with_padding_mode(m.parse::<PaddingMode>()?);
        }
        if self.flip {
            options = options.with_flip(Some(self.true_conv_shape()?));
        }
        Ok(options)
    }
}

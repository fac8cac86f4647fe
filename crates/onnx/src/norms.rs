//! The whole network at a glance: each affine block's spectral norm with what certifies it, and the
//! product of the upper bounds (AutoLip), so a user sees which layer dominates the Lipschitz bound.

use std::time::Instant;

use convmat_matrix::Conv;
use convmat_spectrum::{
    certified_norm_with, sparse_norm, Certificate, CsrRef, Monitor, NormInterval, SpectrumError, Start,
    SPARSE_DENSE_LIMIT,
};
use serde::Serialize;

use crate::blocks::{build, describe, plan, post_maps, Activation, AffineLayer, BlockOptions, Plan};
use crate::graph::Analysis;
use crate::{Model, OnnxError};

/// One affine block's spectral norm: `lower <= ||A||_2 <= upper` for the block's matrix `A`
/// (BatchNorm and constant Add / Mul folded in; the bias plays no part).
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct BlockNorm {
    /// The main node (the Conv, Gemm, ...).
    pub name: String,
    /// Its op.
    pub op: String,
    /// Every node folded into the block.
    pub nodes: Vec<String>,
    /// The shape it reads (one sample).
    pub input_shape: Vec<usize>,
    /// The shape it produces.
    pub output_shape: Vec<usize>,
    /// Matrix rows.
    pub rows: usize,
    /// Matrix columns.
    pub cols: usize,
    /// A lower bound of the block's spectral norm (a Rayleigh quotient, or the exact value).
    pub lower: f64,
    /// An upper bound of it.
    pub upper: f64,
    /// What the interval rests on: `exact` (dense SVD, or a diagonal block), `kato-temple` /
    /// `interlacing` (a convolution's certified norm, computed matrix-free), `norm-inequality`
    /// (`min(||A||_F, sqrt(||A||_1 ||A||_∞))` above a power-iteration Rayleigh quotient).
    #[serde(serialize_with = "certificate_name")]
    pub certificate: Certificate,
    /// Lanczos or power-iteration steps (0 for the direct methods).
    pub iterations: usize,
    /// The nonlinearities that follow the block, by op.
    pub activations: Vec<String>,
    /// Seconds spent on this block.
    pub seconds: f64,
}

fn certificate_name<S: serde::Serializer>(c: &Certificate, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(c.as_str())
}

/// Every affine block's norm and their products.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct NetworkNorms {
    /// The blocks in order.
    pub layers: Vec<BlockNorm>,
    /// `∏ upper`: an upper bound of the network's Lipschitz constant in the 2-norm when every
    /// nonlinearity between the blocks is 1-Lipschitz (AutoLip, Virmaux and Scaman 2018), which
    /// [`not_one_lipschitz`](Self::not_one_lipschitz) lists the exceptions to.
    pub product_upper: f64,
    /// `∏ lower`: the same product at the lower ends. NOT a lower bound of the network's Lipschitz
    /// constant (the blocks' top singular directions need not line up, and the nonlinearities can cut
    /// them); it shows how much of the AutoLip bound's size is owed to the per-layer bounds' widths.
    pub product_lower: f64,
    /// The index in `layers` of the largest upper bound (the layer that dominates the product).
    pub largest: Option<usize>,
    /// The nonlinearities not known to be 1-Lipschitz, as `name (op)`: where one is listed,
    /// `product_upper` bounds the network only after multiplying by its constant.
    pub not_one_lipschitz: Vec<String>,
}

/// Whether a nonlinearity is 1-Lipschitz in the 2-norm: ReLU, Tanh, Sigmoid, Softmax, Softplus,
/// Softsign, Abs, Clip, GlobalMaxPool, LeakyRelu / Elu / HardSigmoid with `|alpha| <= 1`, MaxPool whose
/// windows do not overlap (strides at least the kernel). Anything else: `false` (not known).
pub fn is_one_lipschitz(act: &Activation) -> bool {
    let float = |name: &str, default: f64| act.params.get(name).and_then(|v| v.as_f64()).unwrap_or(default);
    let ints = |name: &str| -> Vec<i64> {
        act.params
            .get(name)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_i64()).collect())
            .unwrap_or_default()
    };
    match act.op.as_str() {
        "Relu" | "Tanh" | "Sigmoid" | "Softmax" | "Softplus" | "Softsign" | "Abs" | "Clip" | "GlobalMaxPool" => true,
        "LeakyRelu" => float("alpha", 0.01).abs() <= 1.0,
        "Elu" => float("alpha", 1.0).abs() <= 1.0,
        "HardSigmoid" => float("alpha", 0.2).abs() <= 1.0,
        "MaxPool" => {
            let (k, s) = (ints("kernel_shape"), ints("strides"));
            !k.is_empty() && k.iter().enumerate().all(|(d, &k)| s.get(d).copied().unwrap_or(1) >= k)
        }
        _ => false,
    }
}

impl Model {
    /// Each affine block's spectral norm (as [`affine_layers`](Self::affine_layers) cuts the model)
    /// with a two-sided bound, and the products (see [`NetworkNorms`]). A convolution block larger
    /// than [`SPARSE_DENSE_LIMIT`] entries gets the certified norm of `convmat_spectrum` on its
    /// matrix-free operator, BatchNorm and constant Mul folded into its weights (reflect / replicate
    /// padding: the norm inequality above its Rayleigh quotient); every other block is built and gets
    /// [`sparse_norm`]. `tol`: the relative width the certified norms stop at. `on_block(i, n, name)`
    /// is called before block `i` of `n`; `monitor` watches (and may cancel) each block's run.
    ///
    /// # Errors
    /// As [`affine_layers`](Self::affine_layers); [`OnnxError::Spectrum`] (also for a cancelled run).
    pub fn block_norms(
        &self,
        input_shape: Option<&[usize]>,
        opts: &BlockOptions,
        tol: f64,
        monitor: &Monitor<'_>,
        mut on_block: impl FnMut(usize, usize, &str),
    ) -> Result<NetworkNorms, OnnxError> {
        let a = Analysis::new(self, input_shape)?;
        let plans = plan(&a, opts)?;
        let mut blocks = Vec::with_capacity(plans.len());
        let mut not_one_lipschitz = Vec::new();
        for (i, p) in plans.iter().enumerate() {
            let t = Instant::now();
            let head = describe(&a, p);
            on_block(i, plans.len(), &head.name);
            let fail = |e: SpectrumError| OnnxError::Spectrum {
                node: head.name.clone(),
                op: head.op.clone(),
                source: Box::new(e),
            };
            let conv = block_conv(&a, p)?.filter(|c| c.rows().saturating_mul(c.cols()) > SPARSE_DENSE_LIMIT);
            let (rows, cols, n) = match conv {
                Some(c) => {
                    let n = certified_norm_with(&c, tol, Start::Auto, monitor).map_err(fail)?;
                    let n = match n.upper {
                        Some(_) => n,
                        // no embedding: the norm inequality of the built matrix above the Rayleigh quotient
                        None => {
                            let m = explicit_norm(&build(&a, p)?, tol, monitor).map_err(fail)?;
                            NormInterval { lower: n.lower.max(m.lower), ..m }
                        }
                    };
                    (c.rows(), c.cols(), n)
                }
                None => {
                    let l = build(&a, p)?;
                    (l.matrix.rows(), l.matrix.cols(), explicit_norm(&l, tol, monitor).map_err(fail)?)
                }
            };
            for act in head.activations.iter().filter(|act| !is_one_lipschitz(act)) {
                not_one_lipschitz.push(format!("{} ({})", act.name, act.op));
            }
            blocks.push(BlockNorm {
                name: head.name,
                op: head.op,
                nodes: head.nodes,
                input_shape: head.input_shape,
                output_shape: head.output_shape,
                rows,
                cols,
                lower: n.lower,
                upper: n.upper.unwrap_or(f64::INFINITY),
                certificate: n.certificate,
                iterations: n.iterations,
                activations: head.activations.iter().map(|act| act.op.clone()).collect(),
                seconds: t.elapsed().as_secs_f64(),
            });
        }
        let largest = (0..blocks.len()).max_by(|&i, &j| blocks[i].upper.total_cmp(&blocks[j].upper));
        Ok(NetworkNorms {
            product_upper: blocks.iter().map(|b| b.upper).product(),
            product_lower: blocks.iter().map(|b| b.lower).product(),
            largest,
            layers: blocks,
            not_one_lipschitz,
        })
    }
}

/// The norm of a built block's explicit matrix.
fn explicit_norm(l: &AffineLayer, tol: f64, monitor: &Monitor<'_>) -> Result<NormInterval, SpectrumError> {
    let m = &l.matrix;
    let indptr = m.indptr();
    let csr =
        CsrRef { rows: m.rows(), cols: m.cols(), indptr: indptr.raw_storage(), indices: m.indices(), data: m.data() };
    sparse_norm(csr, tol, monitor)
}

/// A convolution block as one convolution: its node's layer with the pool divisors, BatchNorm and
/// constant Mul folded into the weights, when they scale each output channel by one number (`None`
/// for other blocks, and when a scale varies within a channel).
fn block_conv(a: &Analysis<'_>, p: &Plan) -> Result<Option<Conv<f64>>, OnnxError> {
    let Some(parts) = a.convs.get(&p.main) else { return Ok(None) };
    let conv = parts.conv(a)?;
    let rows = conv.rows();
    let mut scale = parts.row_scale().unwrap_or_else(|| vec![1.0; rows]);
    let main_out = a.infos[p.main].output_shape.clone().unwrap_or_default();
    if let Some((s, _)) = post_maps(a, p, &main_out, rows)? {
        scale.iter_mut().zip(s).for_each(|(a, b)| *a *= b);
    }
    if scale.iter().all(|&s| s == 1.0) {
        return Ok(Some(conv));
    }
    let spec = conv.geometry().spec();
    let (c_out, c_in, groups) = (spec.out_channels(), spec.in_channels(), spec.groups());
    let per_channel = rows / c_out;
    let channel: Vec<f64> = (0..c_out).map(|o| scale[o * per_channel]).collect();
    if (0..rows).any(|r| scale[r] != channel[r / per_channel]) {
        return Ok(None);
    }
    let taps: usize = spec.kernel_size().iter().product();
    let mut w = conv.weight().to_vec();
    for (e, v) in w.iter_mut().enumerate() {
        let o = if spec.is_transposed() {
            // (C_in, C_out / groups, *k)
            let (i, j) = (e / (c_out / groups * taps), (e / taps) % (c_out / groups));
            i / (c_in / groups) * (c_out / groups) + j
        } else {
            // (C_out, C_in / groups, *k)
            e / (c_in / groups * taps)
        };
        *v *= channel[o];
    }
    Conv::new(conv.geometry().clone(), w, None).map(Some).map_err(|source| OnnxError::Matrix {
        node: parts.node.clone(),
        op: parts.op.clone(),
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use convmat_spectrum::certified_norm;

    /// The matrix-free route (the node's convolution with BatchNorm, Mul and pool divisors folded into
    /// its weights) certifies an interval that holds the built block's exact norm, on every golden model
    /// with such a block (whatever its size: the size switch is bypassed here).
    #[test]
    fn folded_convolutions_have_the_built_blocks_norm() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
        let mut checked = Vec::new();
        for file in ["torch_cnn.onnx", "torch_transpose.onnx", "conv2d_group.onnx", "convT2d_group_dilation.onnx"] {
            let model = Model::load(dir.join(file)).unwrap();
            let a = Analysis::new(&model, None).unwrap();
            for p in plan(&a, &BlockOptions::default()).unwrap() {
                let Some(conv) = block_conv(&a, &p).unwrap() else { continue };
                let built = build(&a, &p).unwrap();
                let exact = explicit_norm(&built, 1e-12, &Monitor::new()).unwrap();
                assert_eq!(exact.certificate, Certificate::Exact);
                let n = certified_norm(&conv, 1e-10).unwrap();
                let (lo, up) = (n.lower, n.upper.unwrap_or(f64::INFINITY));
                let s = exact.value;
                assert!(
                    lo <= s * (1.0 + 1e-12) && s <= up * (1.0 + 1e-12),
                    "{file} {}: {s} not in [{lo}, {up}]",
                    built.name
                );
                assert!((n.value - s).abs() <= 1e-9 * s, "{file} {}: {} vs {s}", built.name, n.value);
                checked.push(format!("{file} {}", built.name));
            }
        }
        // the folded cases are among them: Conv + BatchNorm (exported eval-mode BN is folded by torch,
        // so the ConvTranspose + BatchNorm of torch_transpose is the one that scales the weights here)
        assert!(checked.iter().any(|c| c.contains("/up/ConvTranspose")), "{checked:?}");
        assert!(checked.len() >= 4, "{checked:?}");
    }

    #[test]
    fn one_lipschitz_nonlinearities() {
        let act = |op: &str, params: serde_json::Value| Activation {
            name: "a".into(),
            op: op.into(),
            params: params.as_object().cloned().unwrap_or_default(),
            input_shape: vec![],
            output_shape: vec![],
        };
        let none = serde_json::json!({});
        assert!(is_one_lipschitz(&act("Relu", none.clone())));
        assert!(is_one_lipschitz(&act("MaxPool", serde_json::json!({"kernel_shape": [2, 2], "strides": [2, 2]}))));
        assert!(!is_one_lipschitz(&act("MaxPool", serde_json::json!({"kernel_shape": [3, 3], "strides": [2, 2]}))));
        assert!(!is_one_lipschitz(&act("LeakyRelu", serde_json::json!({"alpha": 2.0}))));
        assert!(is_one_lipschitz(&act("LeakyRelu", none.clone())));
        assert!(!is_one_lipschitz(&act("Gelu", none)));
    }
}

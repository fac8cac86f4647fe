//! The whole network at a glance: each affine block's spectral norm with what certifies it, and the
//! product of the upper bounds (AutoLip), so a user sees which layer dominates the Lipschitz bound.

use std::time::Instant;

use convmat_matrix::Conv;
use convmat_spectrum::{conv_norm, csr_norm, Monitor, NormInterval, SpectrumError, SPARSE_DENSE_LIMIT};
pub use convmat_spectrum::{BlockNorm, NetworkNorms};

use crate::blocks::{build, describe, plan, post_maps, Activation, AffineLayer, BlockOptions, Plan};
use crate::graph::Analysis;
use crate::{Model, OnnxError};

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
    /// [`csr_norm`](convmat_spectrum::csr_norm). `tol`: the relative width the certified norms stop at. `on_block(i, n, name)`
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
                Some(c) => (c.rows(), c.cols(), conv_norm(&c, tol, monitor).map_err(fail)?),
                None => {
                    let l = build(&a, p)?;
                    (l.matrix.rows(), l.matrix.cols(), explicit_norm(&l, tol, monitor).map_err(fail)?)
                }
            };
            for act in head.activations.iter().filter(|act| !is_one_lipschitz(act)) {
                not_one_lipschitz.push(format!("{} ({})", act.name, act.op));
            }
            let mut block = BlockNorm::new(
                head.name,
                head.op,
                head.nodes,
                head.input_shape,
                head.output_shape,
                (rows, cols),
                &n,
                t.elapsed().as_secs_f64(),
            );
            block.activations = head.activations.iter().map(|act| act.op.clone()).collect();
            blocks.push(block);
        }
        Ok(NetworkNorms::new(blocks, not_one_lipschitz))
    }
}

/// The norm of a built block's explicit matrix.
fn explicit_norm(l: &AffineLayer, tol: f64, monitor: &Monitor<'_>) -> Result<NormInterval, SpectrumError> {
    csr_norm(&l.matrix, tol, monitor)
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
    use convmat_spectrum::{certified_norm, Certificate};

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

//! Calibration: a float run on a batch observes every tensor's range per channel; each block gets
//! proposed types (MATLAB's best precision for a word length: the integer bits the largest magnitude
//! needs, the rest fraction) for its weights and result, and an accumulator from its certified range
//! ([`accumulator_range`](convmat_matrix::accumulator_range): every input its input type can hold, never
//! the observed ones); the graph input, every residual `Add`, `Concat` and float nonlinearity get a
//! result type too. The proposal is a [`Formats`] that [`Graph::run_fixed`] takes as it is.

use std::collections::{BTreeMap, HashMap};

use convmat_matrix::{accumulator_range, RangeOptions};
use convmat_numeric::{Dialect, FixedType, Modes, QFormat};
use serde::{Deserialize, Serialize};

use crate::eval::eval_node;
use crate::fixed::{as_layer, certified};
use crate::role::{Junction, Kind, Nonlinearity, Role};
use crate::{BlockSource, FixedError, Formats, Graph, LayerFormats, Tensor};

/// What [`Graph::calibrate`] proposes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CalibrateOptions {
    /// The word length of inputs, weights and results (8, 16, ...).
    pub word_length: u32,
    /// The accumulators' word length; default: the certified width at the product's fraction length
    /// (no product is rounded, no sum can overflow).
    pub acc_word_length: Option<u32>,
}

impl CalibrateOptions {
    /// Words of `word_length` bits, accumulators as wide as their certified range needs.
    pub fn new(word_length: u32) -> Self {
        Self { word_length, acc_word_length: None }
    }
}

/// Observed and certified ranges of one node, and the types proposed for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerRange {
    /// The node.
    pub node: String,
    /// Its op.
    pub op: String,
    /// Its role.
    pub kind: Kind,
    /// The smallest and largest value of its output per channel, observed on the batch.
    pub observed: Vec<[f64; 2]>,
    /// The output's observed range, all channels.
    pub observed_layer: [f64; 2],
    /// A block: its (folded) weights' range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_range: Option<[f64; 2]>,
    /// A block: the exact accumulator range per channel over every input of its input type (real units).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certified: Vec<[f64; 2]>,
    /// The proposed types (`q` dialect), as the formats file holds them.
    pub proposed: LayerFormats,
    /// The same types as hls4ml precision strings (`weight`, `bias`, `result`, `accum`).
    pub hls4ml: BTreeMap<String, String>,
    /// Percent of the proposed result type's range the observed values use (largest magnitude).
    pub result_range_used: Option<f64>,
    /// Percent of the certified accumulator range the observed results use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certified_range_used: Option<f64>,
}

/// What [`Graph::calibrate`] returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The proposed formats file.
    pub formats: Formats,
    /// The graph input's observed range.
    pub input_range: [f64; 2],
    /// Per node that gets a type, in graph order.
    pub layers: Vec<LayerRange>,
}

/// MATLAB `fi`'s best precision: the signed format of `word` bits whose integer part (sign included)
/// is the fewest that hold `[lo, hi]` (`hi < 2^(I-1)`, `lo >= -2^(I-1)`), the rest fraction.
///
/// ```
/// use convmat_net::best_precision;
/// assert_eq!(best_precision(-1.0, 0.7, 8).unwrap().to_string(), "q1.7");
/// assert_eq!(best_precision(0.0, 1.0, 8).unwrap().to_string(), "q2.6"); // 1.0 needs a second bit
/// assert_eq!(best_precision(-0.01, 0.02, 16).unwrap().to_string(), "q-4.20");
/// ```
///
/// # Errors
/// A word length outside 2..=128.
pub fn best_precision(lo: f64, hi: f64, word: u32) -> Result<QFormat, convmat_numeric::NumericError> {
    let hi_bits = if hi > 0.0 { hi.log2().floor() as i32 + 2 } else { i32::MIN };
    let lo_bits = if lo < 0.0 { (-lo).log2().ceil() as i32 + 1 } else { i32::MIN };
    let int = hi_bits.max(lo_bits);
    let int = if int == i32::MIN { 1 } else { int };
    QFormat::new(true, word, word as i32 - int)
}

fn hls4ml(f: QFormat) -> String {
    FixedType::plain(f).to_dialect(Dialect::Hls4ml).unwrap_or_else(|_| f.to_string())
}

/// Per channel (axis 1) min and max of a batch.
fn ranges(t: &Tensor<f64>) -> Vec<[f64; 2]> {
    let (c, per) = match t.shape.len() {
        0 | 1 => (1, t.data.len().max(1)),
        _ => (t.shape[1], t.shape[2..].iter().product::<usize>().max(1)),
    };
    let mut r = vec![[f64::INFINITY, f64::NEG_INFINITY]; c];
    for (k, &v) in t.data.iter().enumerate() {
        let e = &mut r[(k / per) % c];
        e[0] = e[0].min(v);
        e[1] = e[1].max(v);
    }
    r
}

fn whole(r: &[[f64; 2]]) -> [f64; 2] {
    r.iter().fold([f64::INFINITY, f64::NEG_INFINITY], |a, b| [a[0].min(b[0]), a[1].max(b[1])])
}

fn used(observed: [f64; 2], lo: f64, hi: f64) -> Option<f64> {
    let m = observed[0].abs().max(observed[1].abs());
    let cap = lo.abs().max(hi.abs());
    (cap > 0.0 && m.is_finite()).then(|| 100.0 * m / cap)
}

impl Graph {
    /// Runs the graph in `f64` on a calibration batch and proposes a formats file (see
    /// [`CalibrateOptions`]), with the observed and certified ranges beside the proposals.
    ///
    /// # Errors
    /// The errors of [`run`](Self::run); a word length outside 2..=64; a layer whose certified range
    /// cannot be computed.
    pub fn calibrate(
        &self,
        blocks: &dyn BlockSource,
        inputs: Vec<Tensor<f64>>,
        options: &CalibrateOptions,
    ) -> Result<Calibration, FixedError> {
        let w = options.word_length;
        let bad_word = |layer: &str, source| FixedError::Text { layer: layer.into(), key: "word length", source };
        if !(2..=32).contains(&w) || options.acc_word_length.is_some_and(|a| !(2..=64).contains(&a)) {
            let source = convmat_numeric::NumericError::WordBits { word_bits: w, min: 2, max: 32 };
            return Err(bad_word("calibrate", source));
        }
        let input_range = inputs.first().map_or([0.0, 0.0], |t| whole(&ranges(t)));
        let input_format = best_precision(input_range[0], input_range[1], w).map_err(|s| bad_word("input", s))?;
        // the format each tensor will have in the fixed-point run, as the proposal makes it
        let mut format_of: HashMap<String, QFormat> = HashMap::new();
        for p in &self.inputs {
            format_of.insert(p.name.clone(), input_format);
        }
        let mut layers = Vec::new();
        let mut failed: Option<FixedError> = None;
        self.walk(inputs, false, |i, node, ins, n| {
            let outs = eval_node(blocks, i, node, ins, n)?;
            let observed = ranges(&outs[0]);
            let observed_layer = whole(&observed);
            let in_fmt = node.inputs.first().and_then(|t| format_of.get(t)).copied();
            let mut proposed = LayerFormats::default();
            let mut hls = BTreeMap::new();
            let mut rec_weight = None;
            let mut rec_cert = Vec::new();
            let mut cert_used = None;
            let result = match &node.role {
                Role::Block => {
                    let r = best_precision(observed_layer[0], observed_layer[1], w);
                    let result = r.map_err(|s| bad_word(&node.name, s));
                    let map = blocks.block(i, node).map_err(|source| crate::NetError::Block {
                        node: node.name.clone(),
                        op: node.op.clone(),
                        source,
                    })?;
                    match (as_layer(&map), in_fmt, result) {
                        (Ok(Some(layer)), Some(xf), Ok(result)) => {
                            let wr = whole(&[layer
                                .weight()
                                .iter()
                                .fold([f64::INFINITY, f64::NEG_INFINITY], |a, &v| [a[0].min(v), a[1].max(v)])]);
                            rec_weight = Some(wr);
                            match propose_block(&node.name, &layer, xf, wr, options) {
                                Ok((wf, acc, cert)) => {
                                    let pf = wf.frac_bits() + xf.frac_bits();
                                    rec_cert = cert
                                        .iter()
                                        .map(|&(lo, hi)| [lo as f64 * 2f64.powi(-pf), hi as f64 * 2f64.powi(-pf)])
                                        .collect();
                                    let c = whole(&rec_cert);
                                    cert_used = used(observed_layer, c[0], c[1]);
                                    proposed.weight = Some(wf.to_string());
                                    proposed.accumulator = Some(acc.to_string());
                                    hls.insert("weight".into(), hls4ml(wf));
                                    hls.insert("accum".into(), hls4ml(acc));
                                    if !certified(&layer, xf, wf, Modes::MATLAB, acc)
                                        && options.acc_word_length.is_none()
                                    {
                                        // the certified width always holds: only a failed range gets here
                                        proposed.accumulator = None;
                                    }
                                }
                                Err(e) => {
                                    failed = Some(e);
                                    return Err(crate::NetError::shape(&node.name, &node.op, "calibration failed"));
                                }
                            }
                            Some(result)
                        }
                        (_, _, Ok(result)) => Some(result),
                        (_, _, Err(e)) => {
                            failed = Some(e);
                            return Err(crate::NetError::shape(&node.name, &node.op, "calibration failed"));
                        }
                    }
                }
                Role::Junction(Junction::Add | Junction::Sub | Junction::Concat { .. }) => {
                    best_precision(observed_layer[0], observed_layer[1], w).ok()
                }
                Role::Junction(_) => {
                    if let Some(f) = in_fmt {
                        for o in &node.outputs {
                            format_of.insert(o.clone(), f);
                        }
                    }
                    None
                }
                Role::Nonlinearity(
                    Nonlinearity::Relu
                    | Nonlinearity::MaxPool { .. }
                    | Nonlinearity::GlobalMaxPool
                    | Nonlinearity::Clip { .. },
                ) => {
                    if let (Some(f), Some(o)) = (in_fmt, node.outputs.first()) {
                        format_of.insert(o.clone(), f);
                    }
                    None
                }
                Role::Nonlinearity(_) => best_precision(observed_layer[0], observed_layer[1], w).ok(),
            };
            if let Some(r) = result {
                if let Some(o) = node.outputs.first() {
                    format_of.insert(o.clone(), r);
                }
                proposed.result = Some(r.to_string());
                hls.insert("result".into(), hls4ml(r));
                layers.push(LayerRange {
                    node: node.name.clone(),
                    op: node.op.clone(),
                    kind: node.kind(),
                    observed,
                    observed_layer,
                    weight_range: rec_weight,
                    certified: rec_cert,
                    proposed,
                    hls4ml: hls,
                    result_range_used: used(observed_layer, r.to_f64(r.raw_min()), r.to_f64(r.raw_max())),
                    certified_range_used: cert_used,
                });
            }
            Ok(outs)
        })
        .map_err(|e| failed.take().unwrap_or(FixedError::Net(e)))?;
        let formats = Formats {
            input: Some(input_format.to_string()),
            default: LayerFormats {
                rounding: Some(Modes::MATLAB.rounding.to_string()),
                overflow: Some(Modes::MATLAB.overflow.to_string()),
                ..LayerFormats::default()
            },
            layers: layers.iter().map(|l| (l.node.clone(), l.proposed.clone())).collect(),
        };
        Ok(Calibration { formats, input_range, layers })
    }
}

/// A block's weight type, accumulator type and certified range per channel (stored units of the product).
type Proposal = (QFormat, QFormat, Vec<(i128, i128)>);

/// A block's weight type (best precision of its weights) and accumulator (from the certified range over
/// every input of `input`, widened to hold every single product), with the certified range per channel
/// in stored units of the product.
fn propose_block(
    name: &str,
    layer: &convmat_matrix::ConvLayer,
    input: QFormat,
    weights: [f64; 2],
    options: &CalibrateOptions,
) -> Result<Proposal, FixedError> {
    let text = |source| FixedError::Text { layer: name.into(), key: "accumulator", source };
    let wf = best_precision(weights[0], weights[1], options.word_length).map_err(text)?;
    let mut opts = RangeOptions::new(input);
    opts.weight_format = Some(wf);
    let r = accumulator_range(layer, &opts)
        .map_err(|e| FixedError::Certified { layer: name.into(), what: e.to_string() })?;
    let cert: Vec<(i128, i128)> = r.channels().iter().map(|c| (c.min, c.max)).collect();
    let pf = wf.frac_bits() + input.frac_bits();
    // every single product too (a negative bias can leave one outside the sums' range)
    let max_w = layer
        .weight()
        .iter()
        .map(|&v| wf.quantize(v, Modes::MATLAB.rounding, Modes::MATLAB.overflow).unsigned_abs())
        .max()
        .unwrap_or(0);
    let max_x = input.raw_min().unsigned_abs().max(input.raw_max().unsigned_abs());
    let p = i128::try_from(max_w.saturating_mul(max_x)).unwrap_or(i128::MAX);
    let lo = cert.iter().map(|c| c.0).min().unwrap_or(0).min(-p);
    let hi = cert.iter().map(|c| c.1).max().unwrap_or(0).max(p);
    let bits = convmat_matrix::signed_bits(lo, hi);
    let int = bits as i32 - pf;
    let acc = match options.acc_word_length {
        Some(a) => QFormat::new(true, a, a as i32 - int),
        None => QFormat::new(true, bits.max(2), pf),
    }
    .map_err(text)?;
    Ok((wf, acc, cert))
}

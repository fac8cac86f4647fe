//! Evaluating a graph on a batch: blocks through their maps (convolutions through convmat's
//! [`Operator`](convmat_matrix::Operator)), junctions and nonlinearities by ONNX semantics; each block
//! built when it is reached and dropped after, each tensor dropped after its last reader.

use std::collections::HashMap;

use convmat_matrix::Float;

use crate::graph::full;
use crate::role::{broadcast, numel, Junction, Nonlinearity, Role};
use crate::{BlockMap, Graph, NetError, Node};

/// A batch: row-major values of `shape`, the batch dimension first.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor<T> {
    /// The shape, batch first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<T>,
}

impl<T> Tensor<T> {
    /// A tensor of `shape` holding `data`.
    ///
    /// # Panics
    /// If `data` does not hold `prod(shape)` values (a caller bug).
    #[track_caller]
    pub fn new(shape: Vec<usize>, data: Vec<T>) -> Self {
        assert_eq!(numel(&shape), data.len(), "shape {shape:?} does not hold {} values", data.len());
        Self { shape, data }
    }
}

/// Where a block's map comes from: the reader that made the graph builds one block at a time.
pub trait BlockSource {
    /// The map of block `node` (the graph's node `index`).
    ///
    /// # Errors
    /// Whatever the source cannot read or build (the run names the node).
    fn block(&self, index: usize, node: &Node) -> Result<BlockMap, Box<dyn std::error::Error + Send + Sync>>;
}

/// One tensor a traced run recorded, in graph order.
#[derive(Clone, Debug)]
pub struct Traced<T> {
    /// The node that wrote it.
    pub node: String,
    /// Its op.
    pub op: String,
    /// The tensor's name.
    pub tensor: String,
    /// Its values (batch first).
    pub value: Tensor<T>,
}

/// What a run returns.
#[derive(Clone, Debug)]
pub struct Run<T> {
    /// The graph outputs, in order.
    pub outputs: Vec<Tensor<T>>,
    /// With tracing, every tensor every node wrote, in graph order; empty otherwise.
    pub trace: Vec<Traced<T>>,
}

impl Graph {
    /// Evaluates the graph on `inputs` (one per graph input, each `(N, *sample)` or one sample
    /// `(*sample)`), in `T` (`f32` or `f64`). `trace` keeps a copy of every tensor a node writes.
    ///
    /// # Errors
    /// The checks of [`validate`](Self::validate); an input of the wrong shape or count; a block whose
    /// source fails or whose size does not fit its tensors.
    pub fn run<T: Float>(
        &self,
        blocks: &dyn BlockSource,
        inputs: Vec<Tensor<T>>,
        trace: bool,
    ) -> Result<Run<T>, NetError> {
        let (outputs, traced) = self.walk(inputs, trace, |i, node, ins, n| eval_node(blocks, i, node, ins, n))?;
        let trace = traced
            .into_iter()
            .map(|(i, tensor, value)| {
                let node = &self.nodes[i];
                Traced { node: node.name.clone(), op: node.op.clone(), tensor, value }
            })
            .collect();
        Ok(Run { outputs, trace })
    }

    /// The walk every run takes: inputs checked against the graph's, each node evaluated by `eval`
    /// (its index, the node, the tensors it reads, the batch size) in graph order, each tensor dropped
    /// after its last reader; the graph outputs and, with `trace`, every tensor written (node index,
    /// tensor name, value).
    pub(crate) fn walk<V: Batch>(
        &self,
        inputs: Vec<V>,
        trace: bool,
        mut eval: impl FnMut(usize, &Node, &[&V], usize) -> Result<Vec<V>, NetError>,
    ) -> Result<Walked<V>, NetError> {
        self.validate()?;
        if inputs.len() != self.inputs.len() {
            let names = self.inputs.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ");
            return Err(NetError::InputCount { expected: self.inputs.len(), names, got: inputs.len() });
        }
        let mut values: HashMap<&str, V> = HashMap::new();
        let mut n_batch = None;
        for (p, mut t) in self.inputs.iter().zip(inputs) {
            if t.shape() == p.shape {
                t.set_shape(full(1, &p.shape));
            }
            let s = t.shape();
            if s.len() != p.shape.len() + 1 || s[1..] != p.shape[..] || n_batch.is_some_and(|n| n != s[0]) {
                return Err(NetError::Input { input: p.name.clone(), expected: p.shape.clone(), got: s.to_vec() });
            }
            n_batch = Some(s[0]);
            values.insert(&p.name, t);
        }
        let n = n_batch.unwrap_or(1);
        let mut readers: HashMap<&str, usize> = HashMap::new();
        for t in self.nodes.iter().flat_map(|n| &n.inputs).chain(&self.outputs) {
            *readers.entry(t.as_str()).or_default() += 1;
        }
        let mut traced = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let ins: Vec<&V> = node.inputs.iter().map(|t| &values[t.as_str()]).collect();
            let outs = eval(i, node, &ins, n)?;
            for t in &node.inputs {
                let left = readers.get_mut(t.as_str()).expect("counted");
                *left -= 1;
                if *left == 0 {
                    values.remove(t.as_str());
                }
            }
            for (name, v) in node.outputs.iter().zip(outs) {
                if trace {
                    traced.push((i, name.clone(), v.clone()));
                }
                if readers.get(name.as_str()).is_some_and(|&r| r > 0) {
                    values.insert(name, v);
                }
            }
        }
        let outputs = self.outputs.iter().map(|t| values[t.as_str()].clone()).collect();
        Ok((outputs, traced))
    }
}

/// The graph outputs and the traced tensors (node index, tensor name, value) of a walk.
pub(crate) type Walked<V> = (Vec<V>, Vec<(usize, String, V)>);

/// A batch a run walks the graph with: a shape, batch first.
pub(crate) trait Batch: Clone {
    /// The shape.
    fn shape(&self) -> &[usize];
    /// Replaces the shape (same element count).
    fn set_shape(&mut self, shape: Vec<usize>);
}

impl<T: Clone> Batch for Tensor<T> {
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn set_shape(&mut self, shape: Vec<usize>) {
        self.shape = shape;
    }
}

pub(crate) fn eval_node<T: Float>(
    blocks: &dyn BlockSource,
    i: usize,
    node: &Node,
    ins: &[&Tensor<T>],
    n: usize,
) -> Result<Vec<Tensor<T>>, NetError> {
    let shapes: Vec<Vec<usize>> = node.output_shapes.iter().map(|s| full(n, s)).collect();
    Ok(match &node.role {
        Role::Block => {
            let fail = |source| NetError::Block { node: node.name.clone(), op: node.op.clone(), source };
            let map = blocks.block(i, node).map_err(fail)?;
            let (cols, rows) = (numel(&ins[0].shape[1..]), numel(&shapes[0][1..]));
            if map.cols() != cols || map.rows() != rows {
                return Err(NetError::shape(
                    &node.name,
                    &node.op,
                    format!(
                        "its map is {}x{}; it reads {:?} and writes {:?} per sample",
                        map.rows(),
                        map.cols(),
                        &ins[0].shape[1..],
                        &shapes[0][1..]
                    ),
                ));
            }
            let y = map.apply(&ins[0].data).map_err(|e| NetError::Matrix {
                node: node.name.clone(),
                op: node.op.clone(),
                source: Box::new(e),
            })?;
            vec![Tensor::new(shapes[0].clone(), y)]
        }
        Role::Junction(j) => junction(j, ins, shapes),
        Role::Nonlinearity(f) => vec![nonlinearity(f, ins, shapes.into_iter().next().expect("one output"))],
    })
}

/// Row-major strides.
pub(crate) fn strides(s: &[usize]) -> Vec<usize> {
    let mut st = vec![1; s.len()];
    for d in (0..s.len().saturating_sub(1)).rev() {
        st[d] = st[d + 1] * s[d + 1];
    }
    st
}

/// For each flat index of `out`, the flat index of `s` broadcast onto it.
fn broadcast_map(s: &[usize], out: &[usize]) -> Vec<usize> {
    let r = out.len();
    let pad: Vec<usize> = std::iter::repeat_n(1, r - s.len()).chain(s.iter().copied()).collect();
    let (ss, os) = (strides(&pad), strides(out));
    (0..numel(out))
        .map(|flat| (0..r).map(|d| if pad[d] == 1 { 0 } else { (flat / os[d]) % out[d] * ss[d] }).sum())
        .collect()
}

fn binary<T: Float>(a: &Tensor<T>, b: &Tensor<T>, f: impl Fn(T, T) -> T) -> Tensor<T> {
    let out = broadcast(&a.shape, &b.shape).expect("validated");
    if a.shape == out && b.shape == out {
        return Tensor::new(out, a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect());
    }
    let (ia, ib) = (broadcast_map(&a.shape, &out), broadcast_map(&b.shape, &out));
    Tensor::new(out, ia.iter().zip(&ib).map(|(&i, &j)| f(a.data[i], b.data[j])).collect())
}

pub(crate) fn junction<T: Float>(j: &Junction, ins: &[&Tensor<T>], shapes: Vec<Vec<usize>>) -> Vec<Tensor<T>> {
    let x = ins[0];
    match j {
        Junction::Add => vec![binary(ins[0], ins[1], |a, b| a + b)],
        Junction::Sub => vec![binary(ins[0], ins[1], |a, b| a - b)],
        Junction::Concat { axis } => {
            let out = &shapes[0];
            let outer = numel(&out[..*axis]);
            let mut data = Vec::with_capacity(numel(out));
            for o in 0..outer {
                for t in ins {
                    let chunk = numel(&t.shape[*axis..]);
                    data.extend_from_slice(&t.data[o * chunk..(o + 1) * chunk]);
                }
            }
            vec![Tensor::new(out.clone(), data)]
        }
        Junction::Split { axis, .. } => {
            let outer = numel(&x.shape[..*axis]);
            let chunk = numel(&x.shape[*axis..]);
            let mut start = 0;
            shapes
                .into_iter()
                .map(|s| {
                    let len = numel(&s[*axis..]);
                    let data = (0..outer)
                        .flat_map(|o| x.data[o * chunk + start..o * chunk + start + len].iter().copied())
                        .collect();
                    start += len;
                    Tensor::new(s, data)
                })
                .collect()
        }
        Junction::Slice { axes, starts, steps, .. } => {
            let out = &shapes[0];
            let (is, os) = (strides(&x.shape), strides(out));
            let data = (0..numel(out))
                .map(|flat| {
                    let mut src = 0i64;
                    for d in 0..out.len() {
                        let k = ((flat / os[d]) % out[d]) as i64;
                        let idx = match axes.iter().position(|&a| a == d) {
                            Some(p) => starts[p] as i64 + steps[p] * k,
                            None => k,
                        };
                        src += idx * is[d] as i64;
                    }
                    x.data[src as usize]
                })
                .collect();
            vec![Tensor::new(out.clone(), data)]
        }
        Junction::Transpose { perm } => {
            let out = &shapes[0];
            let is = strides(&x.shape);
            // the output in order, its source offset stepped like an odometer (no division per element)
            let step: Vec<usize> = perm.iter().map(|&p| is[p]).collect();
            let (mut idx, mut src) = (vec![0; out.len()], 0);
            let mut data = Vec::with_capacity(numel(out));
            for _ in 0..numel(out) {
                data.push(x.data[src]);
                for d in (0..out.len()).rev() {
                    idx[d] += 1;
                    src += step[d];
                    if idx[d] < out[d] {
                        break;
                    }
                    src -= step[d] * out[d];
                    idx[d] = 0;
                }
            }
            vec![Tensor::new(out.clone(), data)]
        }
        Junction::Reshape => vec![Tensor::new(shapes[0].clone(), x.data.clone())],
    }
}

/// `exp(x) / sum(exp(x))` (or its log) over groups: `outer` runs of `len` elements spaced `inner` apart.
fn softmax<T: Float>(x: &Tensor<T>, axis: usize, coerce: bool, log: bool) -> Vec<T> {
    let s = &x.shape;
    let (len, inner) = if coerce { (numel(&s[axis..]), 1) } else { (s[axis], numel(&s[axis + 1..])) };
    let outer = numel(&s[..axis]);
    let mut y = vec![T::ZERO; x.data.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| o * len * inner + k * inner + i;
            let m = (0..len).map(|k| x.data[at(k)].to_f64()).fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..len).map(|k| (x.data[at(k)].to_f64() - m).exp()).sum();
            for k in 0..len {
                let v = x.data[at(k)].to_f64() - m;
                y[at(k)] = T::from_f64(if log { v - sum.ln() } else { v.exp() / sum });
            }
        }
    }
    y
}

pub(crate) fn nonlinearity<T: Float>(f: &Nonlinearity, ins: &[&Tensor<T>], out: Vec<usize>) -> Tensor<T> {
    let x = ins[0];
    let map = |g: &dyn Fn(f64) -> f64| -> Tensor<T> {
        Tensor::new(x.shape.clone(), x.data.iter().map(|&v| T::from_f64(g(v.to_f64()))).collect())
    };
    let sigmoid = |v: f64| if v >= 0.0 { 1.0 / (1.0 + (-v).exp()) } else { v.exp() / (1.0 + v.exp()) };
    match f {
        Nonlinearity::Relu => map(&|v| v.max(0.0)),
        Nonlinearity::LeakyRelu { alpha } => map(&|v| if v >= 0.0 { v } else { alpha * v }),
        Nonlinearity::Elu { alpha } => map(&|v| if v > 0.0 { v } else { alpha * (v.exp() - 1.0) }),
        Nonlinearity::PRelu { slope, shape } => {
            let idx = broadcast_map(shape, &x.shape);
            Tensor::new(
                x.shape.clone(),
                x.data
                    .iter()
                    .zip(idx)
                    .map(|(&v, i)| {
                        let v = v.to_f64();
                        T::from_f64(if v >= 0.0 { v } else { slope[i] * v })
                    })
                    .collect(),
            )
        }
        Nonlinearity::Clip { min, max } => map(&|v| {
            let v = min.map_or(v, |m| v.max(m));
            max.map_or(v, |m| v.min(m))
        }),
        Nonlinearity::HardSigmoid { alpha, beta } => map(&|v| (alpha * v + beta).clamp(0.0, 1.0)),
        Nonlinearity::HardSwish => map(&|v| v * (v / 6.0 + 0.5).clamp(0.0, 1.0)),
        Nonlinearity::Sigmoid => map(&sigmoid),
        Nonlinearity::Tanh => map(&f64::tanh),
        Nonlinearity::Softplus => map(&|v| if v > 0.0 { v + (-v).exp().ln_1p() } else { v.exp().ln_1p() }),
        Nonlinearity::Softsign => map(&|v| v / (1.0 + v.abs())),
        Nonlinearity::Erf => map(&libm::erf),
        Nonlinearity::Gelu { tanh: false } => map(&|v| 0.5 * v * (1.0 + libm::erf(v / std::f64::consts::SQRT_2))),
        Nonlinearity::Gelu { tanh: true } => {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            map(&|v| 0.5 * v * (1.0 + (c * (v + 0.044715 * v * v * v)).tanh()))
        }
        Nonlinearity::Abs => map(&f64::abs),
        Nonlinearity::Exp => map(&f64::exp),
        Nonlinearity::Sqrt => map(&f64::sqrt),
        Nonlinearity::Reciprocal => map(&|v| 1.0 / v),
        Nonlinearity::Pow { exponent } => map(&|v| if *exponent == 2.0 { v * v } else { v.powf(*exponent) }),
        Nonlinearity::Mul => binary(ins[0], ins[1], |a, b| a * b),
        Nonlinearity::Div => binary(ins[0], ins[1], |a, b| a / b),
        Nonlinearity::Softmax { axis, coerce } => Tensor::new(x.shape.clone(), softmax(x, *axis, *coerce, false)),
        Nonlinearity::LogSoftmax { axis, coerce } => Tensor::new(x.shape.clone(), softmax(x, *axis, *coerce, true)),
        Nonlinearity::LayerNorm { axis, epsilon, scale, bias } => {
            let len = numel(&x.shape[*axis..]);
            let mut y = Vec::with_capacity(x.data.len());
            for row in x.data.chunks(len) {
                let v: Vec<f64> = row.iter().map(|&a| a.to_f64()).collect();
                let mean = v.iter().sum::<f64>() / len as f64;
                let var = v.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / len as f64;
                let inv = 1.0 / (var + epsilon).sqrt();
                y.extend(v.iter().enumerate().map(|(k, a)| T::from_f64((a - mean) * inv * scale[k] + bias[k])));
            }
            Tensor::new(x.shape.clone(), y)
        }
        Nonlinearity::GlobalMaxPool => {
            let inner = numel(&x.shape[2..]);
            let data =
                x.data.chunks(inner).map(|c| c.iter().copied().fold(c[0], |m, v| if v > m { v } else { m })).collect();
            Tensor::new(out, data)
        }
        Nonlinearity::Selu { alpha, gamma } => {
            map(&|v| if v > 0.0 { gamma * v } else { gamma * alpha * (v.exp() - 1.0) })
        }
        Nonlinearity::Celu { alpha } => map(&|v| v.max(0.0) + (alpha * ((v / alpha).exp() - 1.0)).min(0.0)),
        Nonlinearity::Mish => map(&|v| v * (if v > 0.0 { v + (-v).exp().ln_1p() } else { v.exp().ln_1p() }).tanh()),
        Nonlinearity::ThresholdedRelu { alpha } => map(&|v| if v > *alpha { v } else { 0.0 }),
        Nonlinearity::Sign => map(&|v| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                v
            }
        }),
        Nonlinearity::Log => map(&f64::ln),
        Nonlinearity::Round => map(&f64::round_ties_even),
        Nonlinearity::Floor => map(&f64::floor),
        Nonlinearity::Ceil => map(&f64::ceil),
        Nonlinearity::GlobalLpPool { p } => {
            let inner = numel(&x.shape[2..]);
            let data = x.data.chunks(inner).map(|c| T::from_f64(lp(c.iter().map(|v| v.to_f64()), *p))).collect();
            Tensor::new(out, data)
        }
        Nonlinearity::LpPool { p, kernel, strides: st, dilations, pads_begin, output } => {
            let mut data = Vec::with_capacity(numel(&out));
            windows(&x.shape, kernel, st, dilations, pads_begin, output, |plane, taps| {
                data.push(T::from_f64(lp(taps.iter().map(|&e| x.data[plane + e].to_f64()), *p)));
            });
            Tensor::new(out, data)
        }
        Nonlinearity::Lrn { size, alpha, beta, bias } => {
            // ONNX: channels c - floor((size - 1) / 2) ..= c + ceil((size - 1) / 2)
            let (c, inner) = (x.shape[1], numel(&x.shape[2..]));
            let (below, above) = ((size - 1) / 2, (size - 1).div_ceil(2));
            let mut y = Vec::with_capacity(x.data.len());
            for sample in x.data.chunks(c * inner) {
                for ch in 0..c {
                    for e in 0..inner {
                        let sq: f64 = (ch.saturating_sub(below)..=(ch + above).min(c - 1))
                            .map(|k| sample[k * inner + e].to_f64().powi(2))
                            .sum();
                        let v = sample[ch * inner + e].to_f64();
                        y.push(T::from_f64(v / (bias + alpha / *size as f64 * sq).powf(*beta)));
                    }
                }
            }
            Tensor::new(x.shape.clone(), y)
        }
        Nonlinearity::MaxPool { kernel, strides: st, dilations, pads_begin, output } => {
            let (reads, starts) = window_taps(&x.shape, kernel, st, dilations, pads_begin, output);
            let (plane_in, plane_out) = (numel(&x.shape[2..]), numel(output));
            let mut data = Vec::with_capacity(numel(&out));
            for plane in x.data.chunks(plane_in) {
                for o in 0..plane_out {
                    let mut best: Option<T> = None;
                    for &src in &reads[starts[o]..starts[o + 1]] {
                        let v = plane[src];
                        if best.is_none_or(|b| v > b || v.to_f64().is_nan()) {
                            best = Some(v);
                        }
                    }
                    data.push(best.unwrap_or(T::from_f64(f64::NEG_INFINITY)));
                }
            }
            Tensor::new(out, data)
        }
    }
}

/// `(Σ |v|^p)^(1/p)`.
fn lp(v: impl Iterator<Item = f64>, p: f64) -> f64 {
    if p == 2.0 {
        v.map(|a| a * a).sum::<f64>().sqrt()
    } else if p == 1.0 {
        v.map(f64::abs).sum()
    } else {
        v.map(|a| a.abs().powf(p)).sum::<f64>().powf(1.0 / p)
    }
}

/// The taps each output position of a pool on `(N, C, *spatial)` reads inside one `(N, C)` plane, found
/// once for every plane: position `o` reads the element offsets `reads[starts[o]..starts[o + 1]]` (pads
/// left out).
fn window_taps(
    shape: &[usize],
    kernel: &[usize],
    st: &[usize],
    dilations: &[usize],
    pads_begin: &[usize],
    output: &[usize],
) -> (Vec<usize>, Vec<usize>) {
    let r = kernel.len();
    let (ins_sp, in_st) = (&shape[2..], strides(&shape[2..]));
    let (os, ks, taps) = (strides(output), strides(kernel), numel(kernel));
    let (mut reads, mut starts) = (Vec::new(), vec![0]);
    for o in 0..numel(output) {
        'tap: for k in 0..taps {
            let mut src = 0;
            for d in 0..r {
                let pos = ((o / os[d]) % output[d] * st[d] + (k / ks[d]) % kernel[d] * dilations[d]) as isize
                    - pads_begin[d] as isize;
                if pos < 0 || pos >= ins_sp[d] as isize {
                    continue 'tap;
                }
                src += pos as usize * in_st[d];
            }
            reads.push(src);
        }
        starts.push(reads.len());
    }
    (reads, starts)
}

/// Every window of a pool on `(N, C, *spatial)`, in output order: `f(plane offset, element offsets in
/// the plane of the taps inside the input)` (pads left out).
fn windows(
    shape: &[usize],
    kernel: &[usize],
    st: &[usize],
    dilations: &[usize],
    pads_begin: &[usize],
    output: &[usize],
    mut f: impl FnMut(usize, &[usize]),
) {
    let (reads, starts) = window_taps(shape, kernel, st, dilations, pads_begin, output);
    let plane_in = numel(&shape[2..]);
    for plane in (0..numel(&shape[..2])).map(|p| p * plane_in) {
        for w in starts.windows(2) {
            f(plane, &reads[w[0]..w[1]]);
        }
    }
}

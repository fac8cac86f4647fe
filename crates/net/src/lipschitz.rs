//! Lipschitz constants in the 2-norm: each nonlinearity's ([`Nonlinearity::lipschitz`]) and a whole
//! graph's upper bound, node by node ([`Graph::lipschitz_bound`], AutoLip on the graph: Virmaux and
//! Scaman, "Lipschitz regularity of deep neural networks", NeurIPS 2018).
//!
//! For a tensor `t`, `L(t)` bounds the Lipschitz constant of the map from the graph inputs (all of
//! them, as one vector) to `t`; a graph input has `L = 1`. Node by node:
//! - a block `y = A x + b`: `L(y) = ||A||₂ · L(x)` (the block's certified upper bound);
//! - `Add` / `Sub`: `L(y) = Σ √r_i · L(x_i)`, `r_i` the copies broadcasting makes of operand `i`;
//! - `Concat`: `L(y) = √(Σ L(x_i)²)` (the squared distances of the pieces add up);
//! - `Split`, `Slice`, `Transpose`, reshapes: `L(y) = L(x)` (a selection or a permutation);
//! - a nonlinearity with a constant `c`: `L(y) = c · L(x)`; the product `x · g(x)` of a tensor and a
//!   gate computed from it alone (SiLU as `x · Sigmoid(x)`, HardSwish as `x · HardSigmoid(x)`) is one
//!   elementwise map with its own constant;
//! - an op with no global constant (the product of two computed tensors such as a squeeze-and-excitation
//!   gate, LayerNormalization, Exp, ...): counted as if it were 1-Lipschitz in each operand
//!   (`L(y) = Σ √r_i · L(x_i)`) and named in [`GraphBound::conditional_on`]: the bound then holds only
//!   where those ops do.
//!
//! The graph's bound is `√(Σ L(o)²)` over its outputs.

use std::collections::HashMap;

use serde::Serialize;

use crate::role::{numel, Junction, Nonlinearity, Role};
use crate::{Graph, NetError};

/// The Lipschitz constant of an op in the 2-norm, or why none is known.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Lipschitz {
    /// `||f(x) - f(y)|| <= c · ||x - y||` for all `x`, `y`.
    Constant(f64),
    /// No global constant (or none convmat knows): why.
    Unknown(&'static str),
}

impl Lipschitz {
    /// The constant, `None` when unknown.
    pub fn constant(&self) -> Option<f64> {
        match self {
            Self::Constant(c) => Some(*c),
            Self::Unknown(_) => None,
        }
    }
}

/// `sup |d/dx (0.5 x (1 + erf(x / √2)))|`, reached at `x = √2`: `Φ(√2) + √2 φ(√2)` = `(1 + erf(1)) / 2 +
/// e⁻¹ / √π` (the derivative `Φ(x) + x φ(x)` has its critical points where `φ(x)(2 - x²) = 0`).
pub const GELU: f64 = 1.128_904_145_185_155;
/// `sup |d/dx GELU_tanh(x)|`: 1.128993 by a grid of step 1e-5 on [-20, 20] (NumPy), rounded up.
pub const GELU_TANH: f64 = 1.129_000;
/// `sup |d/dx (x σ(x))|` = `σ(x)(1 + x(1 - σ(x)))` at its maximum (x ≈ 2.3994): 1.0998393 by a grid of
/// step 1e-5 (NumPy), rounded up.
pub const SILU: f64 = 1.099_840;
/// `sup |d/dx (x tanh(softplus(x)))|`: 1.0884982 by a grid of step 1e-5 (NumPy), rounded up.
pub const MISH: f64 = 1.088_500;
/// `2 / √π`, the largest slope of `erf` (at 0).
pub const ERF: f64 = std::f64::consts::FRAC_2_SQRT_PI;

impl Nonlinearity {
    /// The op's Lipschitz constant in the 2-norm on an input of full shape `input` (batch first), as
    /// `sup |f'|` for the elementwise ones:
    /// - 1: Relu, Clip (Relu6), Tanh, Softsign, Softplus, Abs, GlobalMaxPool (`|max a - max b| <=
    ///   max |a - b|`), Softmax (Gao and Pavel, "On the properties of the softmax function", 2017,
    ///   Proposition 4: 1-Lipschitz in the 2-norm), `Pow` with exponent 1;
    /// - LeakyRelu and Elu: `max(1, |alpha|)`; PRelu: `max(1, max |slope|)`; HardSigmoid: `|alpha|`;
    ///   HardSwish: 3/2 (its slope `x/3 + 1/2` at `x = 3`); Sigmoid: 1/4 (at 0); Erf: `2/√π`; Gelu:
    ///   [`GELU`] or [`GELU_TANH`];
    /// - MaxPool: `√m`, `m` the most windows one input lies in (1 when strides are at least the dilated
    ///   kernel): the squared differences of the windows' maxima sum to at most `m · ||x - y||²`;
    /// - LogSoftmax: `1 + √n` over `n` normalised elements (its Jacobian `I - 1 pᵀ` has norm at most
    ///   `1 + ||1|| ||p||`);
    /// - unknown: Exp, Sqrt, Reciprocal, Pow (other exponents): unbounded slopes; LayerNormalization: a
    ///   constant that grows like `max |scale| / √epsilon` near constant inputs; Mul, Div: the product
    ///   or quotient of two computed tensors.
    pub fn lipschitz(&self, input: &[usize]) -> Lipschitz {
        use Lipschitz::{Constant, Unknown};
        match self {
            Self::Relu | Self::Clip { .. } | Self::Tanh | Self::Softsign | Self::Softplus | Self::Abs => Constant(1.0),
            Self::GlobalMaxPool | Self::Softmax { .. } => Constant(1.0),
            Self::LeakyRelu { alpha } | Self::Elu { alpha } => Constant(alpha.abs().max(1.0)),
            Self::PRelu { slope, .. } => Constant(slope.iter().fold(1.0, |m: f64, s| m.max(s.abs()))),
            Self::HardSigmoid { alpha, .. } => Constant(alpha.abs()),
            Self::HardSwish => Constant(1.5),
            Self::Sigmoid => Constant(0.25),
            Self::Erf => Constant(ERF),
            Self::Gelu { tanh } => Constant(if *tanh { GELU_TANH } else { GELU }),
            Self::Pow { exponent } if *exponent == 1.0 => Constant(1.0),
            Self::Pow { exponent } if *exponent == 0.0 => Constant(0.0),
            Self::Pow { .. } => Unknown("x^p has an unbounded slope for p other than 0 and 1"),
            Self::Exp => Unknown("exp has an unbounded slope"),
            Self::Sqrt => Unknown("√x has an unbounded slope near 0"),
            Self::Reciprocal => Unknown("1/x has an unbounded slope near 0"),
            Self::MaxPool { kernel, strides, dilations, .. } => {
                Constant(window_overlap(kernel, strides, dilations).sqrt())
            }
            Self::LogSoftmax { axis, coerce } => {
                let n = if *coerce {
                    numel(input.get(*axis..).unwrap_or_default())
                } else {
                    input.get(*axis).copied().unwrap_or(1)
                };
                Constant(1.0 + (n as f64).sqrt())
            }
            Self::LayerNorm { .. } => Unknown("no useful global constant (it grows like max |scale| / √epsilon)"),
            Self::Mul => Unknown("the product of two computed tensors has no global constant"),
            Self::Div => Unknown("the quotient of two computed tensors has no global constant"),
            // slope gamma above 0, gamma·alpha·e^x below
            Self::Selu { alpha, gamma } => Constant(gamma.abs() * alpha.abs().max(1.0)),
            // slope 1 above 0, e^(x/alpha) <= 1 below
            Self::Celu { .. } => Constant(1.0),
            Self::Mish => Constant(MISH),
            Self::ThresholdedRelu { alpha } if *alpha == 0.0 => Constant(1.0),
            Self::ThresholdedRelu { .. } => Unknown("it jumps at alpha"),
            Self::Sign | Self::Round | Self::Floor | Self::Ceil => Unknown("a step function: discontinuous"),
            Self::Log => Unknown("log has an unbounded slope near 0"),
            // the p-norm of a window is 1-Lipschitz in the window's p-norm, which is at most
            // n^(1/p - 1/2) times its 2-norm for p < 2 (n taps) and at most its 2-norm for p >= 2
            Self::LpPool { p, kernel, strides, dilations, .. } => {
                let n = numel(kernel) as f64;
                Constant(window_overlap(kernel, strides, dilations).sqrt() * n.powf(1.0 / p - 0.5).max(1.0))
            }
            Self::GlobalLpPool { p } => {
                let n = numel(input.get(2..).unwrap_or_default()) as f64;
                Constant(n.powf(1.0 / p - 0.5).max(1.0))
            }
            Self::Lrn { .. } => Unknown("no global constant derived here"),
        }
    }
}

/// The most windows one input element lies in: per dimension, the outputs `o` with `i - o·s` one of the
/// taps `0, d, ..., (k-1)d`, at most `min(k, ⌈((k-1)d + 1) / s⌉)`.
pub(crate) fn window_overlap(kernel: &[usize], strides: &[usize], dilations: &[usize]) -> f64 {
    kernel
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let (s, d) = (strides.get(i).copied().unwrap_or(1).max(1), dilations.get(i).copied().unwrap_or(1).max(1));
            let span = (k.max(1) - 1) * d + 1;
            k.min(span.div_ceil(s)) as f64
        })
        .product()
}

/// A graph's Lipschitz upper bound in the 2-norm ([`Graph::lipschitz_bound`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct GraphBound {
    /// The bound (infinite when a block's upper bound is).
    pub upper: f64,
    /// The nodes with no known global constant, as `name (op): why`: where any is listed, `upper`
    /// counts each as 1-Lipschitz in each operand and bounds the graph only where that holds.
    pub conditional_on: Vec<String>,
    /// The nonlinearities whose constant is not known to be at most 1, as `name (op)`.
    pub not_one_lipschitz: Vec<String>,
}

impl Graph {
    /// The graph's Lipschitz upper bound in the 2-norm, node by node (AutoLip on the graph). `L(t)` bounds
    /// the Lipschitz constant of the map from the graph inputs to tensor `t` (a graph input: 1): a block
    /// multiplies by its norm's upper bound; `Add` / `Sub` give `Σ √r_i · L(x_i)` (`r_i` the copies
    /// broadcasting makes of operand `i`); `Concat` gives `√(Σ L(x_i)²)`; `Split`, `Slice`, `Transpose`
    /// and reshapes keep `L`; a nonlinearity multiplies by [`Nonlinearity::lipschitz`], and `x · g(x)`
    /// for a Sigmoid or HardSigmoid gate `g` of `x` alone by the product's own constant (SiLU, HardSwish);
    /// an op with no known constant counts as 1-Lipschitz in each operand and is named in
    /// [`GraphBound::conditional_on`]. The bound is `√(Σ L(o)²)` over the graph outputs.
    /// `block_upper(index)` is an upper bound of the spectral norm of the block at node `index`.
    ///
    /// # Errors
    /// A graph that does not [`validate`](Self::validate).
    pub fn lipschitz_bound(&self, mut block_upper: impl FnMut(usize) -> f64) -> Result<GraphBound, NetError> {
        let shapes = self.shapes()?;
        let writer: HashMap<&str, usize> =
            self.nodes.iter().enumerate().flat_map(|(i, n)| n.outputs.iter().map(move |o| (o.as_str(), i))).collect();
        let mut l: HashMap<&str, f64> = self.inputs.iter().map(|p| (p.name.as_str(), 1.0)).collect();
        let (mut conditional_on, mut not_one_lipschitz) = (Vec::new(), Vec::new());
        for (i, n) in self.nodes.iter().enumerate() {
            let ins: Vec<f64> = n.inputs.iter().map(|t| l[t.as_str()]).collect();
            let sizes: Vec<usize> = n.inputs.iter().map(|t| numel(&shapes[t.as_str()])).collect();
            let out_size = n.output_shapes.first().map_or(1, |s| numel(s));
            // Σ √r_i L_i: operands broadcast to the output (r_i copies of each element)
            let broadcast_sum =
                || ins.iter().zip(&sizes).map(|(&li, &s)| li * (out_size as f64 / s.max(1) as f64).sqrt()).sum::<f64>();
            let out = match &n.role {
                Role::Block => block_upper(i) * ins[0],
                Role::Junction(Junction::Add | Junction::Sub) => broadcast_sum(),
                Role::Junction(Junction::Concat { .. }) => ins.iter().map(|x| x * x).sum::<f64>().sqrt(),
                Role::Junction(_) => ins[0],
                Role::Nonlinearity(f) => {
                    let gate = if matches!(f, Nonlinearity::Mul) { self.gated(&n.inputs, &writer) } else { None };
                    let input = crate::graph::full(1, &shapes[n.inputs[0].as_str()]);
                    let c = match gate {
                        Some((c, _)) => Lipschitz::Constant(c),
                        None if n.params.contains_key(crate::norms::ASSUMED) => {
                            Lipschitz::Unknown("its arguments were not read (PyTorch's defaults assumed)")
                        }
                        None => f.lipschitz(&input),
                    };
                    if c.constant().is_none_or(|c| c > 1.0) {
                        not_one_lipschitz.push(format!("{} ({})", n.name, n.op));
                    }
                    match (c, gate) {
                        (Lipschitz::Constant(c), Some((_, x))) => c * ins[x],
                        (Lipschitz::Constant(c), None) if ins.len() == 1 => c * ins[0],
                        (Lipschitz::Constant(c), None) => c * broadcast_sum(),
                        (Lipschitz::Unknown(why), _) => {
                            conditional_on.push(format!("{} ({}): {why}", n.name, n.op));
                            broadcast_sum()
                        }
                    }
                }
            };
            for o in &n.outputs {
                l.insert(o, out);
            }
        }
        let upper = self.outputs.iter().map(|o| l[o.as_str()].powi(2)).sum::<f64>().sqrt();
        Ok(GraphBound { upper, conditional_on, not_one_lipschitz })
    }

    /// Whether `t` is a gate computed from the other operand of a Mul alone (a Sigmoid or HardSigmoid
    /// node reading it).
    fn is_gate_of(&self, t: &str, operands: &[String], writer: &HashMap<&str, usize>) -> bool {
        let Some(&w) = writer.get(t) else { return false };
        let g = &self.nodes[w];
        let gate = matches!(g.role, Role::Nonlinearity(Nonlinearity::Sigmoid | Nonlinearity::HardSigmoid { .. }));
        gate && g.inputs.len() == 1 && operands.iter().any(|o| o != t && *o == g.inputs[0])
    }

    /// The constant of `x · g(x)` when a Mul's operands are a tensor and a gate of it:
    /// SiLU ([`SILU`]) for a Sigmoid; for `HardSigmoid(alpha > 0, beta)`, whose product has the slope
    /// `2 alpha x + beta` on the gate's ramp, 0 below and 1 above it, `max(1, |beta|, |2 - beta|)`.
    fn gated(&self, operands: &[String], writer: &HashMap<&str, usize>) -> Option<(f64, usize)> {
        let [a, b] = operands else { return None };
        let (x, gate) = [(0, b), (1, a)].into_iter().find(|(_, t)| self.is_gate_of(t, operands, writer))?;
        // an elementwise gate has its input's shape: no broadcasting in the product
        let g = &self.nodes[writer[gate.as_str()]];
        match g.role {
            Role::Nonlinearity(Nonlinearity::Sigmoid) => Some((SILU, x)),
            Role::Nonlinearity(Nonlinearity::HardSigmoid { alpha, beta }) if alpha > 0.0 => {
                Some((1f64.max(beta.abs()).max((2.0 - beta).abs()), x))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Node, Port};
    use serde_json::Map;

    fn node(name: &str, role: Role, inputs: &[&str], shape: &[usize]) -> Node {
        Node {
            name: name.into(),
            op: name.into(),
            role,
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: vec![name.into()],
            output_shapes: vec![shape.to_vec()],
            folded: vec![],
            params: Map::new(),
        }
    }

    fn graph(nodes: Vec<Node>, out: &str) -> Graph {
        Graph { inputs: vec![Port { name: "x".into(), shape: vec![2, 4, 4] }], nodes, outputs: vec![out.into()] }
    }

    /// The constants against slopes measured by central differences on a fine grid (an independent
    /// check of the closed forms): each constant is at least the steepest measured slope and within
    /// 2e-4 of it (the grid step: ELU's steepest slope is at 0⁻).
    #[test]
    fn elementwise_constants_are_the_steepest_slopes() {
        let f = |n: &Nonlinearity, x: f64| -> f64 {
            let s = |v: f64| 1.0 / (1.0 + (-v).exp());
            match n {
                Nonlinearity::Gelu { tanh: false } => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
                Nonlinearity::Gelu { tanh: true } => {
                    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
                }
                Nonlinearity::Sigmoid => s(x),
                Nonlinearity::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
                Nonlinearity::Erf => libm::erf(x),
                Nonlinearity::Softplus => x.exp().ln_1p(),
                Nonlinearity::Elu { alpha } => {
                    if x > 0.0 {
                        x
                    } else {
                        alpha * (x.exp() - 1.0)
                    }
                }
                _ => unreachable!(),
            }
        };
        for n in [
            Nonlinearity::Gelu { tanh: false },
            Nonlinearity::Gelu { tanh: true },
            Nonlinearity::Sigmoid,
            Nonlinearity::HardSwish,
            Nonlinearity::Erf,
            Nonlinearity::Softplus,
            Nonlinearity::Elu { alpha: 1.7 },
        ] {
            let h = 1e-5;
            let steepest = (-200_000..200_000)
                .map(|i| i as f64 * 1e-4)
                .map(|x| ((f(&n, x + h) - f(&n, x - h)) / (2.0 * h)).abs())
                .fold(0.0, f64::max);
            let c = n.lipschitz(&[1, 3]).constant().unwrap();
            assert!(c >= steepest * (1.0 - 1e-9) && c <= steepest + 2e-4, "{}: {c} vs {steepest}", n.name());
        }
        let silu = (-200_000..200_000)
            .map(|i| i as f64 * 1e-4)
            .map(|x| {
                let g = |v: f64| v / (1.0 + (-v).exp());
                ((g(x + 1e-5) - g(x - 1e-5)) / 2e-5).abs()
            })
            .fold(0.0, f64::max);
        assert!(SILU >= silu && SILU <= silu + 1e-5, "{silu}");
    }

    #[test]
    fn pools_count_overlapping_windows() {
        let pool = |k: usize, s: usize, d: usize| Nonlinearity::MaxPool {
            kernel: vec![k, k],
            strides: vec![s, s],
            dilations: vec![d, d],
            pads_begin: vec![0, 0],
            output: vec![1, 1],
        };
        assert_eq!(pool(2, 2, 1).lipschitz(&[1, 1, 4, 4]), Lipschitz::Constant(1.0));
        // 3x3 stride 2: an element lies in up to 2 windows per dimension
        assert_eq!(pool(3, 2, 1).lipschitz(&[1, 1, 5, 5]), Lipschitz::Constant(2.0));
        // 3x3 stride 1: up to 3 per dimension
        assert_eq!(pool(3, 1, 1).lipschitz(&[1, 1, 5, 5]), Lipschitz::Constant(3.0));
        // 2x2 dilation 2 stride 2: taps 0 and 2, every element in up to 2 windows per dimension (span 3)
        assert_eq!(pool(2, 2, 2).lipschitz(&[1, 1, 5, 5]), Lipschitz::Constant(2.0));
        assert!(matches!(Nonlinearity::Mul.lipschitz(&[1]), Lipschitz::Unknown(_)));
    }

    /// AutoLip on a residual block with a SiLU and a squeeze-and-excitation product: the bound is the sum
    /// of the branches, the SiLU's constant multiplies, the SE product is named.
    #[test]
    fn residual_and_gates() {
        let s = [2, 4, 4];
        let nodes = vec![
            node("conv", Role::Block, &["x"], &s),
            node("sig", Role::Nonlinearity(Nonlinearity::Sigmoid), &["conv"], &s),
            node("silu", Role::Nonlinearity(Nonlinearity::Mul), &["conv", "sig"], &s),
            node("add", Role::Junction(Junction::Add), &["x", "silu"], &s),
        ];
        let b = graph(nodes.clone(), "add").lipschitz_bound(|_| 3.0).unwrap();
        assert_eq!(b.conditional_on, Vec::<String>::new());
        assert!((b.upper - (1.0 + SILU * 3.0)).abs() < 1e-12, "{}", b.upper);
        // a gate of another tensor (SE: x · σ(conv(x))) makes it conditional, counted 1-Lipschitz per operand
        let mut se = nodes;
        se[2].inputs = vec!["x".into(), "sig".into()];
        let b = graph(se, "silu").lipschitz_bound(|_| 3.0).unwrap();
        assert_eq!(b.conditional_on.len(), 1, "{:?}", b.conditional_on);
        assert!(b.conditional_on[0].starts_with("silu (silu)"));
        assert!((b.upper - (1.0 + 0.25 * 3.0)).abs() < 1e-12);
        // Concat: root of the sum of squares
        let cat = vec![
            node("a", Role::Block, &["x"], &s),
            node("b", Role::Block, &["x"], &s),
            node("cat", Role::Junction(Junction::Concat { axis: 1 }), &["a", "b"], &[4, 4, 4]),
        ];
        let b = graph(cat, "cat").lipschitz_bound(|i| [3.0, 4.0][i]).unwrap();
        assert!((b.upper - 5.0).abs() < 1e-12);
    }
}

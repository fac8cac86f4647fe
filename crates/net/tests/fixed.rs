//! A graph in fixed point: each block's result bit-exact with `ConvLayer::apply` (what `convmat apply`
//! computes) of its layer on the block's input with the same types, the certified accumulator path equal
//! to the narrow loop, and bad formats files answered by one line naming what is wrong.

use convmat_matrix::{Applied, ApplyOptions, ApplyTypes, ConvLayer};
use convmat_net::{Arithmetic, BlockMap, BlockSource, Formats, Graph, Node, Nonlinearity, Port, Role, Tensor};
use convmat_numeric::{Dtype, FixedType};
use convmat_shape::{LayerOptions, Padding};
use serde_json::Map;

/// conv (2 -> 3 channels, 3x3, padding 1, on 2x5x5, a per-channel scale and shift folded) -> relu ->
/// gemm (75 -> 4).
struct Net;

fn conv() -> ConvLayer {
    let w: Vec<f64> = (0..3 * 2 * 9).map(|k| ((k * 37 % 23) as f64 - 11.0) / 16.0).collect();
    ConvLayer::new(
        &[3, 2, 3, 3],
        w,
        Some(vec![0.3, -0.7, 0.05]),
        &[2, 5, 5],
        &LayerOptions::new().with_padding(Padding::uniform(1)),
    )
    .unwrap()
}
const SCALE: [f64; 3] = [0.5, 1.75, -0.75];
const SHIFT: [f64; 3] = [0.125, -0.2, 0.4];

fn dense() -> (Vec<f64>, Vec<f64>) {
    ((0..4 * 75).map(|k| ((k * 29 % 31) as f64 - 15.0) / 64.0).collect(), vec![0.25, -0.5, 1.0, 0.0])
}

impl BlockSource for Net {
    fn block(&self, _: usize, node: &Node) -> Result<BlockMap, Box<dyn std::error::Error + Send + Sync>> {
        Ok(match node.name.as_str() {
            "conv" => {
                let per = 25;
                BlockMap::Conv {
                    layer: conv(),
                    scale: Some((0..75).map(|r| SCALE[r / per]).collect()),
                    shift: Some((0..75).map(|r| SHIFT[r / per]).collect()),
                }
            }
            _ => {
                let (weight, bias) = dense();
                BlockMap::Dense { weight, rows: 4, cols: 75, reps: 1, bias }
            }
        })
    }
}

fn node(name: &str, role: Role, input: &str, output: &str, shape: &[usize]) -> Node {
    Node {
        name: name.into(),
        op: name.into(),
        role,
        inputs: vec![input.into()],
        outputs: vec![output.into()],
        output_shapes: vec![shape.to_vec()],
        folded: vec![],
        params: Map::new(),
    }
}

fn graph() -> Graph {
    Graph {
        inputs: vec![Port { name: "x".into(), shape: vec![2, 5, 5] }],
        nodes: vec![
            node("conv", Role::Block, "x", "c", &[3, 5, 5]),
            node("relu", Role::Nonlinearity(Nonlinearity::Relu), "c", "r", &[3, 5, 5]),
            node("flat", Role::Junction(convmat_net::Junction::Reshape), "r", "f", &[75]),
            node("gemm", Role::Block, "f", "y", &[4]),
        ],
        outputs: vec!["y".into()],
    }
}

fn input() -> Tensor<f64> {
    Tensor::new(vec![2, 2, 5, 5], (0..100).map(|k| ((k * 13 % 41) as f64 - 20.0) / 9.0).collect())
}

/// `ConvLayer::apply` in fixed point with the types as `convmat apply` takes them.
fn apply(layer: &ConvLayer, x: &[f64], n: usize, types: [Option<&str>; 4], modes: (&str, &str)) -> Vec<f64> {
    let t = |s: Option<&str>| s.map(|s| s.parse::<FixedType>().unwrap());
    let mut at = ApplyTypes::default();
    (at.input, at.weight, at.accumulator, at.out) = (t(types[0]), t(types[1]), t(types[2]), t(types[3]));
    (at.rounding, at.overflow) = (Some(modes.0.parse().unwrap()), Some(modes.1.parse().unwrap()));
    let dtype = Dtype::Fixed(at.input.unwrap().format);
    let y = layer.apply(x, n, &ApplyOptions::new(dtype).with_types(&at).unwrap()).unwrap();
    match y.values {
        Applied::F64(v) => v,
        _ => unreachable!(),
    }
}

fn formats(text: &str) -> Formats {
    Formats::from_json(text).unwrap()
}

fn folded() -> ConvLayer {
    let l = conv();
    let w = l.weight().iter().enumerate().map(|(i, w)| w * SCALE[i / 18]).collect();
    let b = (0..3).map(|c| l.bias().unwrap()[c] * SCALE[c] + SHIFT[c]).collect();
    l.with_weights(w, Some(b)).unwrap()
}

#[test]
fn every_block_is_bit_exact_with_apply() {
    let (w, b) = dense();
    let gemm = ConvLayer::new(&[4, 75, 1], w, Some(b), &[75, 1], &LayerOptions::default()).unwrap();
    for (rounding, overflow) in [("nearest", "saturate"), ("floor", "wrap"), ("convergent", "saturate")] {
        for acc in [None, Some("q3.6"), Some("q12.14")] {
            let acc_json = acc.map_or(String::new(), |a| format!(r#", "accumulator": "{a}""#));
            let f = formats(&format!(
                r#"{{"input": "q2.6", "default": {{"weight": "q2.6", "result": "q3.5", "rounding": "{rounding}", "overflow": "{overflow}"{acc_json}}},
                    "layers": {{"gemm": {{"weight": "q1.7", "result": "q5.4"}}}}}}"#
            ));
            let run = graph().run_fixed(&Net, vec![input()], &f, true).unwrap();
            let x = input();
            let xq: Vec<f64> = x.data.iter().map(|&v| ((v * 64.0).round().clamp(-128.0, 127.0)) / 64.0).collect();
            let want = apply(&folded(), &xq, 2, [Some("q2.6"), Some("q2.6"), acc, Some("q3.5")], (rounding, overflow));
            let conv_out = &run.trace.iter().find(|t| t.node == "conv").unwrap().value;
            assert_eq!(conv_out.data, want, "conv {rounding} {overflow} {acc:?}");
            let flat = &run.trace.iter().find(|t| t.node == "flat").unwrap().value;
            let want =
                apply(&gemm, &flat.data, 2, [Some("q3.5"), Some("q1.7"), acc, Some("q5.4")], (rounding, overflow));
            assert_eq!(run.outputs[0].data, want, "gemm {rounding} {overflow} {acc:?}");
            let rec = &run.report[0];
            assert_eq!(rec.arithmetic, Arithmetic::Fixed);
            // q12.14 holds every sum of every q2.6 input: proven, so run as the exact sum, no overflow
            assert_eq!(rec.certified, acc == Some("q12.14"), "{acc:?}");
            if acc == Some("q3.6") {
                assert!(rec.products + rec.accumulators > 0, "q3.6 overflows: {rec:?}");
            }
            if acc != Some("q3.6") {
                assert!(rec.results > 0, "q3.5 results saturate or wrap");
            }
            assert_eq!(rec.channels.len(), 3);
            // against the float run: finite, and good where nothing wraps and no narrow accumulator rounds
            let good = overflow == "saturate" && acc != Some("q3.6");
            assert!(rec.sqnr_db.is_some_and(|d| d < 80.0 && (!good || d > 10.0)), "{:?}", rec.sqnr_db);
        }
    }
}

#[test]
fn bad_formats_get_one_line() {
    let check = |text: &str, want: &str| {
        let e = match Formats::from_json(text) {
            Ok(f) => graph().run_fixed(&Net, vec![input()], &f, false).unwrap_err().to_string(),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(want), "{e}");
        assert!(!e.contains('\n'), "{e}");
    };
    check(
        r#"{"default": {"weight": "q2.6"}, "layers": {"conv9": {}}}"#,
        "the formats name layer 'conv9', which the graph does not have (its blocks: conv, gemm)",
    );
    check(
        r#"{"input": "q2.6", "default": {"weight": "q1.7"}}"#,
        "does not fit its type q1.7 (range -1 .. 0.9921875): give at least 2 integer bits (e.g. q2.7)",
    );
    check(r#"{"default": {"weight": "q2.6"}"#, "the formats are not valid: EOF while parsing");
    check(r#"{"default": {"wieght": "q2.6"}}"#, "unknown field `wieght`");
    check(r#"{"default": {"weight": "q2.6", "rounding": "up-ish"}}"#, "layer 'default': \"rounding\":");
    check(r#"{"default": {"weight": "q2.6"}}"#, "layer 'conv' has no \"input\" type");
    check(
        r#"{"input": "q2.6", "default": {"weight": "q2.6"}, "layers": {"relu": {"weight": "q1.7"}}}"#,
        "layer 'relu' is a nonlinearity (relu): \"weight\" applies to blocks only",
    );
    check(r#"{"input": "q2.6", "layers": {"gemm": {"weight": "q2.6"}}}"#, "layer 'conv' has no \"weight\" type");
}

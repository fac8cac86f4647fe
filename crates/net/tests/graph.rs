//! The graph record's checks: each bad graph gives one error naming the node and the numbers.

use convmat_net::{BlockMap, BlockSource, Graph, Junction, NetError, Node, Nonlinearity, Port, Role, Tensor};
use serde_json::Map;

/// Every block doubles its input (shapes of one sample given per node).
struct Double;
impl BlockSource for Double {
    fn block(&self, _: usize, node: &Node) -> Result<BlockMap, Box<dyn std::error::Error + Send + Sync>> {
        let n: usize = node.output_shapes[0].iter().product();
        Ok(BlockMap::Diagonal { scale: vec![2.0; n], shift: vec![0.0; n] })
    }
}

fn node(name: &str, role: Role, inputs: &[&str], outputs: &[(&str, &[usize])]) -> Node {
    Node {
        name: name.into(),
        op: name.into(),
        role,
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: outputs.iter().map(|(o, _)| o.to_string()).collect(),
        output_shapes: outputs.iter().map(|(_, s)| s.to_vec()).collect(),
        folded: vec![],
        params: Map::new(),
    }
}

fn graph(nodes: Vec<Node>, output: &str) -> Graph {
    Graph { inputs: vec![Port { name: "x".into(), shape: vec![2, 2] }], nodes, outputs: vec![output.into()] }
}

fn err(g: &Graph) -> String {
    let e: NetError = g.validate().unwrap_err();
    e.to_string()
}

#[test]
fn bad_graphs_name_the_node() {
    let b = |name: &str, input: &str, out: &str| node(name, Role::Block, &[input], &[(out, &[2, 2])]);
    // a cycle: a reads what b (later) writes
    let g = graph(vec![b("a", "v", "u"), b("b", "u", "v")], "v");
    assert!(err(&g).contains("node 'a' reads 'v', which node 'b' (later in the graph) writes"), "{}", err(&g));
    // a tensor nobody writes
    let g = graph(vec![b("a", "nope", "u")], "u");
    assert!(err(&g).contains("node 'a' reads 'nope', which no graph input and no node writes"), "{}", err(&g));
    // two writers
    let g = graph(vec![b("a", "x", "u"), b("b", "x", "u")], "u");
    assert!(err(&g).contains("node 'b' writes 'u', which node 'a' already writes"), "{}", err(&g));
    // a junction whose operands do not fit
    let c = node("cat", Role::Junction(Junction::Concat { axis: 1 }), &["x", "t"], &[("y", &[4, 2])]);
    let t = Node { output_shapes: vec![vec![2, 3]], ..b("t", "x", "t") };
    let g = graph(vec![t, c], "y");
    assert!(
        err(&g).contains("node 'cat' (cat): inputs of shapes [1, 2, 2] and [1, 2, 3] do not concatenate on axis 1"),
        "{}",
        err(&g)
    );
    let add = node("add", Role::Junction(Junction::Add), &["x", "t"], &[("y", &[2, 2])]);
    let t = Node { output_shapes: vec![vec![3, 2]], ..b("t", "x", "t") };
    assert!(err(&graph(vec![t, add], "y")).contains("operands of shapes [1, 2, 2] and [1, 3, 2] do not broadcast"));
    // a declared shape its semantics do not give
    let r = node("relu", Role::Nonlinearity(Nonlinearity::Relu), &["x"], &[("y", &[4])]);
    assert!(err(&graph(vec![r], "y")).contains("declares outputs [[4]]; its inputs [[2, 2]] give [[2, 2]]"));
    // an output nobody writes
    assert!(err(&graph(vec![], "z")).contains("graph output 'z'"));
}

#[test]
fn a_run_checks_its_input() {
    let g = graph(vec![node("relu", Role::Nonlinearity(Nonlinearity::Relu), &["x"], &[("y", &[2, 2])])], "y");
    let e = g.run(&Double, vec![Tensor::new(vec![1, 2, 3], vec![0.0f32; 6])], false).unwrap_err().to_string();
    assert!(e.contains("input 'x' has shape [1, 2, 3]; the graph takes [2, 2] per sample"), "{e}");
    let e = g.run::<f32>(&Double, vec![], false).unwrap_err().to_string();
    assert!(e.contains("the graph has 1 inputs (x); 0 were given"), "{e}");
}

/// A residual block with a split, a shuffle-like transpose and a concat, against the same computed by hand.
#[test]
fn junctions_and_nonlinearities_compose() {
    let g = Graph {
        inputs: vec![Port { name: "x".into(), shape: vec![2, 3] }],
        nodes: vec![
            node(
                "split",
                Role::Junction(Junction::Split { axis: 1, sizes: vec![1, 1] }),
                &["x"],
                &[("a", &[1, 3]), ("b", &[1, 3])],
            ),
            node("double", Role::Block, &["b"], &[("d", &[1, 3])]),
            node("cat", Role::Junction(Junction::Concat { axis: 1 }), &["d", "a"], &[("c", &[2, 3])]),
            node("tr", Role::Junction(Junction::Transpose { perm: vec![0, 2, 1] }), &["c"], &[("t", &[3, 2])]),
            node("flat", Role::Junction(Junction::Reshape), &["t"], &[("f", &[2, 3])]),
            node("add", Role::Junction(Junction::Add), &["f", "x"], &[("s", &[2, 3])]),
            node("mul", Role::Nonlinearity(Nonlinearity::Mul), &["s", "x"], &[("y", &[2, 3])]),
            node("relu", Role::Nonlinearity(Nonlinearity::Relu), &["y"], &[("z", &[2, 3])]),
        ],
        outputs: vec!["z".into()],
    };
    let x: Vec<f64> = vec![1.0, -2.0, 3.0, 4.0, 5.0, -6.0, 0.5, 1.5, 2.5, -1.0, 2.0, 3.0];
    let run = g.run(&Double, vec![Tensor::new(vec![2, 2, 3], x.clone())], true).unwrap();
    let mut want = Vec::new();
    for s in x.chunks(6) {
        let (a, b) = (&s[..3], &s[3..]);
        let c: Vec<f64> = b.iter().map(|v| 2.0 * v).chain(a.iter().copied()).collect(); // (2, 3)
        let t: Vec<f64> = (0..3).flat_map(|j| (0..2).map(move |i| (i, j))).map(|(i, j)| c[i * 3 + j]).collect();
        want.extend(t.iter().zip(s).map(|(t, x)| ((t + x) * x).max(0.0)));
    }
    assert_eq!(run.outputs[0].data, want);
    assert_eq!(run.outputs[0].shape, [2, 2, 3]);
    let names: Vec<&str> = run.trace.iter().map(|t| t.tensor.as_str()).collect();
    assert_eq!(names, ["a", "b", "d", "c", "t", "f", "s", "y", "z"]);
}

#[test]
fn the_record_round_trips_through_json() {
    let g = graph(
        vec![node(
            "clip",
            Role::Nonlinearity(Nonlinearity::Clip { min: Some(0.0), max: Some(6.0) }),
            &["x"],
            &[("y", &[2, 2])],
        )],
        "y",
    );
    let text = serde_json::to_string(&g).unwrap();
    assert!(text.contains(r#""kind":"nonlinearity","nonlinearity":"Clip","min":0.0,"max":6.0"#), "{text}");
    let back: Graph = serde_json::from_str(&text).unwrap();
    assert_eq!(back, g);
}

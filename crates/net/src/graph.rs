//! The graph record: nodes in topological order, each reading and writing named tensors, and its
//! validation.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::role::{Kind, Role};
use crate::NetError;

/// A graph input: its name and the shape of one sample (the batch dimension dropped).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Port {
    /// The tensor's name.
    pub name: String,
    /// One sample's shape.
    pub shape: Vec<usize>,
}

/// One node of a [`Graph`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The node's name (unique in the graph).
    pub name: String,
    /// The op as its source wrote it (`Conv`, `Flatten`, `Clip`, ...), for reports; what the node does
    /// is its [`role`](Self::role).
    pub op: String,
    /// What it does.
    #[serde(flatten)]
    pub role: Role,
    /// The computed tensors it reads, in operand order (constants are part of the role or the block).
    pub inputs: Vec<String>,
    /// The tensors it writes.
    pub outputs: Vec<String>,
    /// One sample's shape of each output.
    pub output_shapes: Vec<Vec<usize>>,
    /// Other source nodes folded into this one (a block's BatchNorm, a Pad before a Conv), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub folded: Vec<String>,
    /// The source's attributes and derived facts (for reports and manifests; evaluation reads the role).
    #[serde(default)]
    pub params: Map<String, Json>,
}

impl Node {
    /// The role as one word.
    pub fn kind(&self) -> Kind {
        self.role.kind()
    }
}

/// A whole network: graph inputs, nodes in topological order, graph outputs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// The graph inputs.
    pub inputs: Vec<Port>,
    /// The nodes, every one after the writers of the tensors it reads.
    pub nodes: Vec<Node>,
    /// The tensors the graph returns.
    pub outputs: Vec<String>,
}

/// Adds the batch dimension `n` before a sample's shape.
pub(crate) fn full(n: usize, sample: &[usize]) -> Vec<usize> {
    std::iter::once(n).chain(sample.iter().copied()).collect()
}

impl Graph {
    /// Checks the record: every tensor written once (by a graph input or one node), every node after
    /// the writers of what it reads, graph outputs written, and every junction's and nonlinearity's
    /// declared output shapes what its ONNX semantics give on its inputs' shapes. Blocks are checked
    /// against their maps when they are built.
    ///
    /// # Errors
    /// [`NetError::Cycle`], [`NetError::Unwritten`], [`NetError::Rewritten`], [`NetError::Output`],
    /// [`NetError::Shape`], naming the node, the tensor and the shapes.
    pub fn validate(&self) -> Result<(), NetError> {
        self.shapes().map(drop)
    }

    /// One sample's shape of every tensor, after [`validate`](Self::validate)'s checks.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn shapes(&self) -> Result<HashMap<&str, Vec<usize>>, NetError> {
        let mut writer: HashMap<&str, usize> = HashMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            for o in &n.outputs {
                if let Some(&first) = writer.get(o.as_str()) {
                    let first = format!("node '{}'", self.nodes[first].name);
                    return Err(NetError::Rewritten { node: n.name.clone(), tensor: o.clone(), first });
                }
                writer.insert(o, i);
            }
        }
        let mut shapes: HashMap<&str, Vec<usize>> = HashMap::new();
        for p in &self.inputs {
            if writer.contains_key(p.name.as_str()) || shapes.contains_key(p.name.as_str()) {
                let node = writer
                    .get(p.name.as_str())
                    .map_or_else(|| "a graph input".to_string(), |&w| self.nodes[w].name.clone());
                return Err(NetError::Rewritten { node, tensor: p.name.clone(), first: "the graph input".into() });
            }
            shapes.insert(&p.name, p.shape.clone());
        }
        for n in &self.nodes {
            let mut ins = Vec::with_capacity(n.inputs.len());
            for t in &n.inputs {
                match shapes.get(t.as_str()) {
                    Some(s) => ins.push(full(1, s)),
                    None => {
                        return Err(match writer.get(t.as_str()) {
                            Some(&w) => NetError::Cycle {
                                node: n.name.clone(),
                                tensor: t.clone(),
                                writer: self.nodes[w].name.clone(),
                            },
                            None => NetError::Unwritten { node: n.name.clone(), tensor: t.clone() },
                        })
                    }
                }
            }
            if n.outputs.len() != n.output_shapes.len() {
                return Err(NetError::shape(
                    &n.name,
                    &n.op,
                    format!("{} outputs but {} output shapes", n.outputs.len(), n.output_shapes.len()),
                ));
            }
            let declared: Vec<Vec<usize>> = n.output_shapes.iter().map(|s| full(1, s)).collect();
            let inferred = match &n.role {
                Role::Block if ins.len() == 1 && declared.len() == 1 => Ok(declared.clone()),
                Role::Block => Err(format!(
                    "a block reads one tensor and writes one; this one reads {} and writes {}",
                    ins.len(),
                    declared.len()
                )),
                Role::Junction(j) => j.output_shapes(&ins, &declared),
                Role::Nonlinearity(f) => f.output_shapes(&ins),
                // `Role` is non-exhaustive only for other crates
            };
            let inferred = inferred.map_err(|what| NetError::shape(&n.name, &n.op, what))?;
            if inferred != declared {
                return Err(NetError::shape(
                    &n.name,
                    &n.op,
                    format!(
                        "declares outputs {:?}; its inputs {:?} give {:?}",
                        n.output_shapes,
                        shapes_of(&ins),
                        shapes_of(&inferred)
                    ),
                ));
            }
            for (o, s) in n.outputs.iter().zip(&n.output_shapes) {
                shapes.insert(o, s.clone());
            }
        }
        if let Some(t) = self.outputs.iter().find(|t| !shapes.contains_key(t.as_str())) {
            return Err(NetError::Output { tensor: t.clone() });
        }
        Ok(shapes)
    }

    /// The blocks, in graph order.
    pub fn blocks(&self) -> impl Iterator<Item = (usize, &Node)> {
        self.nodes.iter().enumerate().filter(|(_, n)| n.kind() == Kind::Block)
    }
}

fn shapes_of(full: &[Vec<usize>]) -> Vec<Vec<usize>> {
    full.iter().map(|s| s[1..].to_vec()).collect()
}

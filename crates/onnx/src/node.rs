//! One ONNX node: its name, op and attributes, read with the defaults the operator spec gives.

use serde_json::{json, Map, Value as Json};

use crate::proto::{attribute_type as at, AttributeProto, NodeProto};
use crate::OnnxError;

/// A node of the graph with a name that is never empty (the first output's name stands in for a
/// missing one) and typed attribute access.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node<'a> {
    pub p: &'a NodeProto,
    pub name: &'a str,
}

impl<'a> Node<'a> {
    pub fn new(p: &'a NodeProto) -> Self {
        let name = if !p.name.is_empty() {
            p.name.as_str()
        } else {
            p.output.first().map(String::as_str).unwrap_or(p.op_type.as_str())
        };
        Self { p, name }
    }

    pub fn op(&self) -> &'a str {
        &self.p.op_type
    }

    /// Input `i`, or `None` when absent or given as the empty name (an omitted optional input).
    pub fn input(&self, i: usize) -> Option<&'a str> {
        self.p.input.get(i).map(String::as_str).filter(|s| !s.is_empty())
    }

    pub fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        self.p.attribute.iter().find(|a| a.name == name)
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.attr(name).map(|a| a.i)
    }

    pub fn float(&self, name: &str) -> Option<f64> {
        self.attr(name).map(|a| a.f as f64)
    }

    pub fn ints(&self, name: &str) -> Option<&'a [i64]> {
        self.attr(name).map(|a| a.ints.as_slice())
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.attr(name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }

    /// A list of non-negative integers (strides, dilations, kernel_shape, pads).
    pub fn usizes(&self, name: &str) -> Result<Option<Vec<usize>>, OnnxError> {
        self.ints(name)
            .map(|v| {
                v.iter()
                    .map(|&x| {
                        usize::try_from(x).map_err(|_| {
                            OnnxError::attr(self.name, self.op(), name, format!("{v:?}"), "values must be non-negative")
                        })
                    })
                    .collect()
            })
            .transpose()
    }

    /// A per-spatial-dimension list: `rank` values, or `default` for each when absent.
    pub fn per_dim(&self, name: &str, rank: usize, default: usize) -> Result<Vec<usize>, OnnxError> {
        match self.usizes(name)? {
            None => Ok(vec![default; rank]),
            Some(v) if v.len() == rank => Ok(v),
            Some(v) => Err(OnnxError::attr(
                self.name,
                self.op(),
                name,
                format!("{v:?}"),
                format!("expected {rank} values, one per spatial dimension"),
            )),
        }
    }

    /// Every attribute as JSON (ints, floats, strings and their lists; tensors by shape).
    pub fn attributes_json(&self) -> Map<String, Json> {
        let mut m = Map::new();
        for a in &self.p.attribute {
            let v = match a.r#type {
                at::FLOAT => json!(a.f),
                at::INT => json!(a.i),
                at::STRING => json!(String::from_utf8_lossy(&a.s)),
                at::FLOATS => json!(a.floats),
                at::INTS => json!(a.ints),
                at::TENSOR => json!({"tensor_dims": a.t.as_ref().map(|t| t.dims.clone()).unwrap_or_default()}),
                _ => continue,
            };
            m.insert(a.name.clone(), v);
        }
        m
    }
}

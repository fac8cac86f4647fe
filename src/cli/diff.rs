//! `convmat diff`: two traces compared in graph order, the first diverging tensor named.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use convmat_net::diff_traces;

/// Compare two traces (`convmat run --trace`) tensor by tensor: the first tensor in graph order whose
/// values differ, how many elements, by how many steps.
#[derive(Debug, Args)]
#[command(after_help = "\
Tensors are matched by name, in the first trace's order (graph order); a trace written by another tool
in the same layout (trace.json listing node, op, tensor, shape, file; one .npy per tensor) compares too.
For tensors of integers (stored integers of a quantized run) the differences are counted per number of
steps. The exit status is 0 whether or not the traces differ.

--json prints {first, tensors: [{node, op, tensor, shape, elements, differ, max_diff, steps}],
only_first, only_second}: first is the index in tensors of the first that differs (null if none),
steps maps a difference in steps to how many elements differ by it.

Examples:
  convmat run model_int8.onnx --input x.npy --trace ours
  convmat diff ours theirs")]
pub struct DiffArgs {
    /// The first trace folder (its order is the graph order).
    #[arg(value_name = "TRACE_A")]
    first: PathBuf,
    /// The second trace folder.
    #[arg(value_name = "TRACE_B")]
    second: PathBuf,
    /// Print the comparison as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: DiffArgs) -> Result<()> {
    let d = diff_traces(&args.first, &args.second)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(());
    }
    let same = d.first.unwrap_or(d.tensors.len());
    match d.first_diverging() {
        None => println!("{} tensors compared in graph order: all identical", d.tensors.len()),
        Some(t) => {
            let steps = if t.steps.is_empty() {
                String::new()
            } else {
                let parts: Vec<String> =
                    t.steps.iter().map(|(s, n)| format!("{n} by {s} step{}", if *s == 1 { "" } else { "s" })).collect();
                format!(" ({})", parts.join(", "))
            };
            println!(
                "first diverging tensor: '{}' (node '{}', {}): {} of {} elements differ, max difference {}{}",
                t.tensor, t.node, t.op, t.differ, t.elements, t.max_diff, steps
            );
            let later = d.tensors[same + 1..].iter().filter(|t| t.differ > 0).count();
            println!(
                "{} tensors compared in graph order: {same} identical before it, {later} of the {} after it differ",
                d.tensors.len(),
                d.tensors.len() - same - 1
            );
        }
    }
    for (what, names) in [("only in the first trace", &d.only_first), ("only in the second trace", &d.only_second)] {
        if !names.is_empty() {
            println!("{what}: {}", names.join(", "));
        }
    }
    Ok(())
}

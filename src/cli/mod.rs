//! Subcommands of the `convmat` binary.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod apply;
mod args;
mod build;
mod check;
mod demo;
mod export;
mod layer;
mod lower;
mod onnx;
mod range;
mod run;
mod shape;
mod spy;
mod svd;
mod times;
mod watch;

/// Turn a convolution layer into the exact matrix it applies (PyTorch semantics), and characterize it.
#[derive(Debug, Parser)]
#[command(name = "convmat", version, about, long_about = None, propagate_version = true, max_term_width = 150)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Apply(apply::ApplyArgs),
    Build(build::BuildArgs),
    Check(check::CheckArgs),
    Demo(demo::DemoArgs),
    Export(export::ExportArgs),
    Lower(lower::LowerArgs),
    Onnx(onnx::OnnxArgs),
    Range(range::RangeArgs),
    Run(run::RunArgs),
    Shape(shape::ShapeArgs),
    Spy(spy::SpyArgs),
    Svd(svd::SvdArgs),
}

/// How a CLI user supplies what a library error says is missing, when it is a flag: appended to the
/// error line (the library's message names the missing input shape in words every front end shares).
pub fn hint(e: &anyhow::Error) -> Option<String> {
    match e.chain().find_map(|c| c.downcast_ref::<convmat_onnx::OnnxError>())? {
        convmat_onnx::OnnxError::DynamicShape { dims, example, .. } => {
            let ex: Vec<String> = example.iter().map(usize::to_string).collect();
            Some(format!("pass --input-shape {} (for example --input-shape {})", dims.join(","), ex.join(",")))
        }
        _ => None,
    }
}

/// Runs one subcommand.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Apply(a) => apply::run(a),
        Command::Build(a) => build::run(a),
        Command::Check(a) => check::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Export(a) => export::run(a),
        Command::Lower(a) => lower::run(a),
        Command::Onnx(a) => onnx::run(a),
        Command::Range(a) => range::run(a),
        Command::Run(a) => run::run(a),
        Command::Shape(a) => shape::run(a),
        Command::Spy(a) => spy::run(a),
        Command::Svd(a) => svd::run(a),
    }
}

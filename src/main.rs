//! The `convmat` command line: see `convmat --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap's message is a paragraph, then usage; keep the paragraph, on one line.
            let text = e.render().to_string();
            let message = text.split("\n\n").next().unwrap_or_default();
            let message = message.trim_start_matches("error: ").split_whitespace().collect::<Vec<_>>().join(" ");
            eprintln!("error: {message} (see 'convmat --help')");
            return ExitCode::from(2);
        }
    };
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.chain().any(|c| matches!(c.downcast_ref(), Some(convmat_spectrum::SpectrumError::Cancelled))) => {
            eprintln!("interrupted (Ctrl-C): stopped between steps, nothing written");
            ExitCode::from(130)
        }
        Err(e) => {
            // One line: what is wrong, which value, what would be valid.
            let mut msg = format!("{e:#}").replace('\n', " ");
            if let Some(hint) = cli::hint(&e) {
                msg = format!("{msg}; {hint}");
            }
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}

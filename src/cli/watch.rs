//! Long spectra on a terminal: a spinner fed by the library's [`Monitor`] and Ctrl-C as its cancel flag.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use convmat_spectrum::{Monitor, Phase, Progress};

use super::times::PhaseTimes;
use indicatif::ProgressBar;

/// Set by the first Ctrl-C; the library stops at its next step and the command exits with 130.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Ctrl-C handling and, on a terminal, a progress line on stderr.
pub struct Watch {
    bar: Option<ProgressBar>,
}

impl Watch {
    /// Installs the Ctrl-C handler (the first press asks the computation to stop between steps, a
    /// second exits at once with 130) and shows progress when `show` and stderr is a terminal.
    pub fn new(show: bool) -> Result<Self> {
        ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted (Ctrl-C twice): exiting, nothing written");
                std::process::exit(130);
            }
        })?;
        let bar = (show && std::io::stderr().is_terminal()).then(|| {
            let p = ProgressBar::new_spinner();
            if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {prefix}: {msg}") {
                p.set_style(style);
            }
            p.set_prefix("svd");
            p.set_message("reading the layer");
            p.enable_steady_tick(Duration::from_millis(120));
            p
        });
        Ok(Self { bar })
    }

    /// What is being computed (shown before the progress numbers).
    pub fn stage(&self, what: &str) {
        if let Some(b) = &self.bar {
            b.set_prefix(what.to_string());
            b.set_message("starting");
        }
    }

    /// Shows one progress report.
    fn show(&self, p: &Progress) {
        let Some(b) = &self.bar else { return };
        let mut m = format!("step {}", p.steps);
        if p.residual.is_finite() {
            m.push_str(&format!(", {}/{} converged, residual {:.1e}", p.converged, p.wanted, p.residual));
        }
        if let Some(w) = p.width {
            m.push_str(&format!(", interval width {w:.1e}"));
        }
        b.set_message(format!("{m} (Ctrl-C stops)"));
    }

    /// Runs `f` with a monitor that shows progress and stops on Ctrl-C.
    pub fn run<T>(&self, f: impl FnOnce(&Monitor<'_>) -> T) -> T {
        let show = |p: &Progress| self.show(p);
        let monitor = Monitor::new().cancel_on(&INTERRUPTED).on_progress(&show);
        let Some(times) = PhaseTimes::from_env() else { return f(&monitor) };
        let phase = |p: Phase| times.finished(p);
        let out = f(&monitor.on_phase(&phase));
        times.report();
        out
    }

    /// Clears the progress line.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.finish();
    }
}

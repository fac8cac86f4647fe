//! Watching and stopping long runs: a progress callback and a cancel flag, checked between steps.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::SpectrumError;

/// How far a run has got, reported to [`Monitor::on_progress`]'s callback after every step.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Progress {
    /// Lanczos steps taken (products with `A` and `Aᵀ`; a block step counts once), or, for the
    /// direct methods, work items done (frequencies of the FFT).
    pub steps: usize,
    /// Values whose residual was below the tolerance at the last convergence check.
    pub converged: usize,
    /// Values asked for.
    pub wanted: usize,
    /// The largest relative residual `||Aᵀu - σv|| / σ_1` of the wanted values at the last check
    /// (infinite before the first check).
    pub residual: f64,
    /// For the certified norm: the relative width `(upper - lower) / lower` of the last interval
    /// estimated (`None` before the interlacing bounds separate anything).
    pub width: Option<f64>,
}

impl Progress {
    pub(crate) fn new(wanted: usize) -> Self {
        Self { steps: 0, converged: 0, wanted, residual: f64::INFINITY, width: None }
    }
}

/// A stretch of the certified norm's work, reported to [`Monitor::on_phase`]'s callback each time one
/// ends: a caller that wants to know where the time goes charges the time since the previous report
/// to it (`convmat svd`'s `CERT_TIMES=1` does, with wall and CPU time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// The start block (the symbol's peak search and the first orthonormal block).
    Start,
    /// Products with `A` and `Aᵀ`.
    Products,
    /// Block QR and reorthogonalisation of the new Lanczos blocks.
    Orthogonalize,
    /// Ritz values of the projected block-bidiagonal matrix.
    Ritz,
    /// Interlacing upper bounds (the hot blocks of the circulant embeddings).
    Bounds,
    /// The explicit certificate (`R = AᵀAX - XM` and its norms).
    Explicit,
}

names! {
    /// `start`, `products`, `orthogonalize`, `ritz`, `bounds` or `explicit`.
    Phase {
        Start => "start",
        Products => "products",
        Orthogonalize => "orthogonalize",
        Ritz => "ritz",
        Bounds => "bounds",
        Explicit => "explicit",
    }
}

impl Phase {
    /// Every phase, in the order a run first reaches them.
    pub const ALL: [Phase; 6] =
        [Phase::Start, Phase::Products, Phase::Orthogonalize, Phase::Ritz, Phase::Bounds, Phase::Explicit];
}

/// A caller's hold on a long computation: an optional cancel flag, checked between steps (a run
/// that finds it set returns [`SpectrumError::Cancelled`]), and an optional callback that receives
/// [`Progress`] after every step. The default watches nothing.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use convmat_matrix::Conv;
/// use convmat_shape::{ConvSpec, Geometry, Padding};
/// use convmat_spectrum::{singular_values_with, Method, Monitor, Progress, Request, SpectrumError};
/// let spec = ConvSpec::new(2, 4, 4, [3]).with_padding(Padding::uniform(1));
/// let w: Vec<f64> = (0..4 * 4 * 9).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
/// let conv = Conv::new(Geometry::new(&spec, &[40, 40]).unwrap(), w, None).unwrap();
/// let stop = AtomicBool::new(false);
/// // give up after 3 steps, as a Ctrl-C handler would set the flag
/// let watch = |p: &Progress| if p.steps >= 3 { stop.store(true, Ordering::Relaxed) };
/// let monitor = Monitor::new().cancel_on(&stop).on_progress(&watch);
/// let r = singular_values_with(&conv, Request::Top(4), Method::Lanczos, 1e-14, &monitor);
/// assert_eq!(r.unwrap_err(), SpectrumError::Cancelled);
/// ```
#[derive(Clone, Copy, Default)]
pub struct Monitor<'a> {
    cancel: Option<&'a AtomicBool>,
    progress: Option<&'a (dyn Fn(&Progress) + Sync)>,
    phase: Option<&'a (dyn Fn(Phase) + Sync)>,
}

impl std::fmt::Debug for Monitor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("cancel", &self.cancel)
            .field("progress", &self.progress.map(|_| "callback"))
            .field("phase", &self.phase.map(|_| "callback"))
            .finish()
    }
}

impl<'a> Monitor<'a> {
    /// A monitor that watches nothing (as the functions without `_with` use).
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the run (with [`SpectrumError::Cancelled`]) at the next step after `flag` is set.
    pub fn cancel_on(mut self, flag: &'a AtomicBool) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// Calls `f` after every step with the run's [`Progress`] (from the computing thread: keep it
    /// short; it may set the cancel flag).
    pub fn on_progress(mut self, f: &'a (dyn Fn(&Progress) + Sync)) -> Self {
        self.progress = Some(f);
        self
    }

    /// Calls `f` each time a [`Phase`] of the work ends (from the computing thread; the library
    /// measures nothing itself).
    pub fn on_phase(mut self, f: &'a (dyn Fn(Phase) + Sync)) -> Self {
        self.phase = Some(f);
        self
    }

    /// Reports that a stretch of `phase` just ended.
    pub(crate) fn finished(&self, phase: Phase) {
        if let Some(f) = self.phase {
            f(phase);
        }
    }

    /// Whether the cancel flag is set.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// The same cancel flag without the callback: for work nested in a run that reports its own
    /// progress (the FFT blocks of the certified norm's bounds).
    pub(crate) fn quiet(&self) -> Monitor<'a> {
        Monitor { cancel: self.cancel, progress: None, phase: None }
    }

    /// `Err(Cancelled)` when the cancel flag is set.
    pub(crate) fn check(&self) -> Result<(), SpectrumError> {
        if self.is_cancelled() {
            Err(SpectrumError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Reports `p` to the callback, then checks the flag (so a callback can stop the run).
    pub(crate) fn step(&self, p: &Progress) -> Result<(), SpectrumError> {
        if let Some(f) = self.progress {
            f(p);
        }
        self.check()
    }
}

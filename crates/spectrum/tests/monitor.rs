//! The progress and cancellation hook: every long routine reports its steps and stops between steps
//! once the cancel flag is set (here by the progress callback itself, as a Ctrl-C handler would).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use convmat_matrix::Conv;
use convmat_shape::{ConvSpec, Geometry, Padding, PaddingMode};
use convmat_spectrum::{
    certified_norm, certified_norm_with, fft_singular_values_with, interlacing_upper_bounds_with, lanczos_with,
    singular_values, singular_values_with, Method, Monitor, Progress, Request, SpectrumError, Start,
};

fn conv(spec: ConvSpec, input: &[usize]) -> Conv<f64> {
    let n = spec.weight_shape().iter().product();
    let w = convmat_numeric::SeededRng::new(3).uniform_vec(n);
    Conv::new(Geometry::new(&spec, input).unwrap(), w, None).unwrap()
}

/// A zero-padded layer whose norm and top values take many Lanczos steps at a tight tolerance.
fn zero_padded() -> Conv<f64> {
    conv(ConvSpec::new(2, 4, 4, [3]).with_padding(Padding::uniform(1)).with_bias(false), &[24, 24])
}

/// Runs `f` with a monitor that records every report and sets the cancel flag once `steps` reaches
/// `after`; returns the result and the reports.
fn cancel_after<T>(
    after: usize,
    f: impl FnOnce(&Monitor<'_>) -> Result<T, SpectrumError>,
) -> (Result<T, SpectrumError>, Vec<Progress>) {
    let stop = AtomicBool::new(false);
    let seen = Mutex::new(Vec::new());
    let watch = |p: &Progress| {
        seen.lock().unwrap().push(*p);
        if p.steps >= after {
            stop.store(true, Ordering::Relaxed);
        }
    };
    let monitor = Monitor::new().cancel_on(&stop).on_progress(&watch);
    let r = f(&monitor);
    (r, seen.into_inner().unwrap())
}

#[test]
fn lanczos_stops_at_the_step_the_flag_is_set() {
    let c = zero_padded();
    for k in [1, 6] {
        let (r, seen) = cancel_after(5, |m| lanczos_with(&c, k, 1e-14, Start::Auto, m));
        assert_eq!(r.unwrap_err(), SpectrumError::Cancelled, "k {k}");
        let steps: Vec<usize> = seen.iter().map(|p| p.steps).collect();
        assert_eq!(steps, vec![1, 2, 3, 4, 5], "k {k}: one report per step, none after the flag");
        assert!(seen.iter().all(|p| p.wanted == k && p.converged <= k), "k {k}");
    }
}

#[test]
fn certified_norm_stops_and_reports_its_residual() {
    let c = zero_padded();
    let (r, seen) = cancel_after(8, |m| certified_norm_with(&c, 1e-14, Start::Auto, m));
    assert_eq!(r.unwrap_err(), SpectrumError::Cancelled);
    assert_eq!(seen.last().unwrap().steps, 8);
    assert!(seen.iter().any(|p| p.residual.is_finite()), "a residual was reported before the stop");
}

#[test]
fn watched_runs_give_the_same_answer() {
    // the same answer up to rounding: rayon's parallel sums may add in another order from run to run
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-10 * b.abs();
    let c = zero_padded();
    let (r, seen) = cancel_after(usize::MAX, |m| certified_norm_with(&c, 1e-8, Start::Auto, m));
    let (watched, plain) = (r.unwrap(), certified_norm(&c, 1e-8).unwrap());
    assert!(close(watched.lower, plain.lower) && watched.certificate == plain.certificate, "{watched:?} vs {plain:?}");
    assert!(!seen.is_empty() && seen.windows(2).all(|w| w[0].steps < w[1].steps));
    let (r, _) = cancel_after(usize::MAX, |m| singular_values_with(&c, Request::Top(3), Method::Lanczos, 1e-9, m));
    let (watched, plain) = (r.unwrap(), singular_values(&c, Request::Top(3), Method::Lanczos, 1e-9).unwrap());
    assert_eq!((watched.method, watched.start), (plain.method, plain.start));
    assert!(watched.values.iter().zip(&plain.values).all(|(a, b)| close(*a, *b)), "{watched:?} vs {plain:?}");
}

#[test]
fn fft_and_bounds_stop_between_frequency_blocks() {
    let circ = conv(
        ConvSpec::new(2, 4, 4, [3]).with_padding(Padding::Same).with_padding_mode(PaddingMode::Circular),
        &[16, 16],
    );
    let (r, seen) = cancel_after(3, |m| fft_singular_values_with(&circ, m));
    assert_eq!(r.unwrap_err(), SpectrumError::Cancelled);
    // blocks run in parallel: those already started finish, no new one starts
    assert!(seen.len() < 16 * 16 / 2, "{} blocks reported", seen.len());
    let (r, _) = cancel_after(3, |m| interlacing_upper_bounds_with(&zero_padded(), 10, m));
    assert_eq!(r.unwrap_err(), SpectrumError::Cancelled);
}

#[test]
fn nested_work_reports_no_steps_of_its_own() {
    // the certified norm computes FFT bounds midway: its reports are its own Lanczos steps only
    let c = zero_padded();
    let (r, seen) = cancel_after(usize::MAX, |m| singular_values_with(&c, Request::Top(3), Method::Lanczos, 1e-9, m));
    r.unwrap();
    assert!(seen.windows(2).all(|w| w[0].steps < w[1].steps) && seen.iter().all(|p| p.wanted == 3));
}

#[test]
fn a_flag_set_elsewhere_stops_a_long_run() {
    let c = zero_padded();
    let stop = AtomicBool::new(true);
    let m = Monitor::new().cancel_on(&stop);
    assert_eq!(certified_norm_with(&c, 1e-14, Start::Auto, &m).unwrap_err(), SpectrumError::Cancelled);
    let r = singular_values_with(&c, Request::All, Method::Dense, 1e-9, &m);
    assert_eq!(r.unwrap_err(), SpectrumError::Cancelled, "a set flag stops even the dense method before it starts");
    assert_eq!(
        singular_values_with(&c, Request::Norm, Method::Auto, 1e-14, &m).unwrap_err().to_string(),
        "cancelled before the singular values were found"
    );
}

//! Phase timers of the certified norm, printed to stderr when `CERT_TIMES` is set: wall time and the
//! process's CPU time (user + sys of all threads, from `/proc/self/stat`; zero elsewhere) per phase.
//! On a shared machine the CPU time is the robust signal.

use std::time::Instant;

/// The phases of a certified-norm run.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Phase {
    Start,
    Products,
    Block,
    Ritz,
    Bounds,
    Explicit,
}

const PHASES: [(Phase, &str); 6] = [
    (Phase::Start, "start"),
    (Phase::Products, "products"),
    (Phase::Block, "block QR/reorth"),
    (Phase::Ritz, "ritz"),
    (Phase::Bounds, "bounds"),
    (Phase::Explicit, "explicit"),
];

/// Accumulated wall and CPU seconds per phase; inert unless `CERT_TIMES` is set.
pub(crate) struct Times {
    wall: [f64; PHASES.len()],
    cpu: [f64; PHASES.len()],
    since: Option<(Instant, f64)>,
    /// When the run started; `None` when `CERT_TIMES` is not set.
    first: Option<(Instant, f64)>,
}

/// The process's user + sys CPU seconds (Linux), else 0.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // the fields after the command name (which may hold spaces) end with ')'
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the state
    (ticks(11) + ticks(12)) / 100.0
}

impl Times {
    pub(crate) fn new() -> Self {
        let now = std::env::var_os("CERT_TIMES").is_some().then(|| (Instant::now(), cpu_seconds()));
        Self { wall: [0.0; PHASES.len()], cpu: [0.0; PHASES.len()], since: now, first: now }
    }

    /// Charges the time since the last call to `phase`.
    pub(crate) fn lap(&mut self, phase: Phase) {
        if self.first.is_none() {
            return;
        }
        let now = (Instant::now(), cpu_seconds());
        if let Some((t, c)) = self.since {
            self.wall[phase as usize] += (now.0 - t).as_secs_f64();
            self.cpu[phase as usize] += now.1 - c;
        }
        self.since = Some(now);
    }

    /// Prints the table (once per run).
    pub(crate) fn report(&self, steps: usize) {
        let Some((t0, c0)) = self.first else { return };
        let mut line = format!("cert times ({steps} steps):");
        for (p, name) in PHASES {
            line += &format!(" {name} {:.3}/{:.2}", self.wall[p as usize], self.cpu[p as usize]);
        }
        line += &format!(" | total {:.3} s wall, {:.2} s cpu", t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
        eprintln!("{line}");
    }
}

//! `CERT_TIMES=1`: where a certified norm's time goes, per [`Phase`] of the library's run, as wall and
//! process CPU seconds on stderr (on a shared machine the CPU time is the robust signal). The library
//! reports when each stretch of work ends; this front end does the measuring and the printing.

use std::sync::Mutex;
use std::time::Instant;

use convmat_spectrum::Phase;

/// Wall and CPU seconds charged to each phase since the timer started.
pub struct PhaseTimes {
    state: Mutex<State>,
}

struct State {
    first: (Instant, f64),
    last: (Instant, f64),
    spent: Vec<(Phase, f64, f64)>,
}

/// The process's user + sys CPU seconds (Linux, all threads), else 0.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // the fields after the command name (which may hold spaces) start after the last ')'
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime: fields 14 and 15 of the line, 12 and 13 after the state
    (ticks(11) + ticks(12)) / 100.0
}

impl PhaseTimes {
    /// A timer when `CERT_TIMES` is set, else `None`.
    pub fn from_env() -> Option<Self> {
        std::env::var_os("CERT_TIMES")?;
        let now = (Instant::now(), cpu_seconds());
        let spent = Phase::ALL.iter().map(|&p| (p, 0.0, 0.0)).collect();
        Some(Self { state: Mutex::new(State { first: now, last: now, spent }) })
    }

    /// Charges the time since the last report to `phase`.
    pub fn finished(&self, phase: Phase) {
        let Ok(mut s) = self.state.lock() else { return };
        let now = (Instant::now(), cpu_seconds());
        let (wall, cpu) = ((now.0 - s.last.0).as_secs_f64(), now.1 - s.last.1);
        s.last = now;
        if let Some(e) = s.spent.iter_mut().find(|e| e.0 == phase) {
            e.1 += wall;
            e.2 += cpu;
        }
    }

    /// Prints one line: each phase's wall/CPU seconds and the totals.
    pub fn report(&self) {
        let Ok(s) = self.state.lock() else { return };
        let mut line = String::from("cert times (wall/cpu s):");
        for (p, wall, cpu) in &s.spent {
            line += &format!(" {p} {wall:.3}/{cpu:.2}");
        }
        line += &format!(
            " | total {:.3} s wall, {:.2} s cpu",
            s.first.0.elapsed().as_secs_f64(),
            cpu_seconds() - s.first.1
        );
        eprintln!("{line}");
    }
}

//! Progress of a catch-up job on standard error, and its summary.
//!
//! On a terminal one line is redrawn in place (at most 10 times a second): per kind the
//! objects done, the rate, and an ETA only when the caller knows a total (Stripe's lists give
//! none, so `billing import` shows counts and rate alone). Elsewhere (a log, CI) a plain line is
//! written at most every `PLAIN_EVERY` and when a kind ends. The summary is a small table:
//! applied, unchanged, parked, rejected per kind, and the total.

use super::Tally;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

const REDRAW_EVERY: Duration = Duration::from_millis(100);
const PLAIN_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Default)]
struct KindState {
    tally: Tally,
    /// Counted by an earlier run of the same job (a resumed import): excluded from the rate.
    before: u64,
    total: Option<u64>,
    started: Option<Instant>,
    done: bool,
    note: Option<String>,
}

#[derive(Debug)]
struct State {
    kinds: BTreeMap<String, KindState>,
    /// The order kinds were started in (the summary keeps it).
    order: Vec<String>,
    last_draw: Option<Instant>,
}

/// Reports one job's progress; shared by its tasks.
#[derive(Debug)]
pub struct Progress {
    job: String,
    terminal: bool,
    quiet: bool,
    state: Mutex<State>,
}

impl Progress {
    /// Draws in place when standard error is a terminal, plain lines otherwise.
    pub fn new(job: &str) -> Self {
        Self::with_terminal(job, std::io::stderr().is_terminal())
    }

    pub fn with_terminal(job: &str, terminal: bool) -> Self {
        Self {
            job: job.to_owned(),
            terminal,
            quiet: false,
            state: Mutex::new(State {
                kinds: BTreeMap::new(),
                order: Vec::new(),
                last_draw: None,
            }),
        }
    }

    /// Counts without writing anything (tests, benchmarks).
    pub fn quiet(job: &str) -> Self {
        Self {
            quiet: true,
            ..Self::with_terminal(job, false)
        }
    }

    /// `kind` begins, with what an earlier run of the job already counted and its total if
    /// known.
    pub fn start_kind(&self, kind: &str, resumed: Tally, total: Option<u64>) {
        let mut state = self.lock();
        if !state.kinds.contains_key(kind) {
            state.order.push(kind.to_owned());
        }
        state.kinds.insert(
            kind.to_owned(),
            KindState {
                before: resumed.total(),
                tally: resumed,
                total,
                started: Some(Instant::now()),
                ..KindState::default()
            },
        );
    }

    /// `kind`'s counts so far (after a page).
    pub fn update(&self, kind: &str, tally: &Tally) {
        let line = {
            let mut state = self.lock();
            let entry = state.kinds.entry(kind.to_owned()).or_default();
            entry.tally = *tally;
            let due = state.last_draw.is_none_or(|t| {
                t.elapsed()
                    >= if self.terminal {
                        REDRAW_EVERY
                    } else {
                        PLAIN_EVERY
                    }
            });
            if !due {
                return;
            }
            state.last_draw = Some(Instant::now());
            self.line(&state)
        };
        self.draw(&line);
    }

    /// `kind` is done (its last page), or skipped with `note` saying why.
    pub fn finish_kind(&self, kind: &str, tally: &Tally, note: Option<&str>) {
        let line = {
            let mut state = self.lock();
            if !state.kinds.contains_key(kind) {
                state.order.push(kind.to_owned());
            }
            let entry = state.kinds.entry(kind.to_owned()).or_default();
            entry.tally = *tally;
            entry.done = true;
            entry.note = note.map(str::to_owned);
            self.line(&state)
        };
        self.draw(&line);
        if self.terminal && !self.quiet {
            // The finished kind keeps its own line.
            eprintln!();
        }
    }

    /// Every kind's counts, in the order they started.
    pub fn tallies(&self) -> Vec<(String, Tally)> {
        let state = self.lock();
        state
            .order
            .iter()
            .filter_map(|k| state.kinds.get(k).map(|s| (k.clone(), s.tally)))
            .collect()
    }

    /// The final summary: one row per kind, then the total.
    pub fn summary(&self) -> String {
        let state = self.lock();
        let mut out = format!(
            "{:<16} {:>9} {:>9} {:>7} {:>8}\n",
            self.job, "applied", "unchanged", "parked", "rejected"
        );
        let mut total = Tally::default();
        for kind in &state.order {
            let Some(k) = state.kinds.get(kind) else {
                continue;
            };
            total.add(&k.tally);
            let t = &k.tally;
            out.push_str(&format!(
                "{kind:<16} {:>9} {:>9} {:>7} {:>8}",
                t.applied, t.unchanged, t.parked, t.rejected
            ));
            if let Some(note) = &k.note {
                out.push_str(&format!("  ({note})"));
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "{:<16} {:>9} {:>9} {:>7} {:>8}\n",
            "total", total.applied, total.unchanged, total.parked, total.rejected
        ));
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The kind most recently started that is still running, else the last one.
    fn line(&self, state: &State) -> String {
        let current = state
            .order
            .iter()
            .rev()
            .find(|k| state.kinds.get(*k).is_some_and(|s| !s.done))
            .or(state.order.last());
        let Some((kind, k)) = current.and_then(|c| state.kinds.get(c).map(|k| (c, k))) else {
            return format!("{}: starting", self.job);
        };
        render(&self.job, kind, k)
    }

    fn draw(&self, line: &str) {
        if self.quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.terminal {
            // Carriage return and clear to the end of the line: redrawn in place.
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }
}

/// One kind's line: `import customers: 1200 (applied 1100, unchanged 90, parked 10) 240/s`,
/// with `[#####.....] 40% ETA 12s` when its total is known.
fn render(job: &str, kind: &str, k: &KindState) -> String {
    let t = &k.tally;
    let done = t.total();
    let mut line = format!(
        "{job} {kind}: {done} (applied {}, unchanged {}, parked {}",
        t.applied, t.unchanged, t.parked
    );
    if t.rejected > 0 {
        line.push_str(&format!(", rejected {}", t.rejected));
    }
    line.push(')');
    let elapsed = k.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    let fresh = done.saturating_sub(k.before);
    let rate = if elapsed > 0.0 {
        fresh as f64 / elapsed
    } else {
        0.0
    };
    line.push_str(&format!(" {rate:.0}/s"));
    if let Some(total) = k.total.filter(|t| *t > 0) {
        let share = (done as f64 / total as f64).min(1.0);
        let filled = (share * 20.0).round() as usize;
        line.push_str(&format!(
            " [{}{}] {:.0}%",
            "#".repeat(filled),
            ".".repeat(20 - filled),
            share * 100.0
        ));
        if rate > 0.0 && !k.done {
            let left = total.saturating_sub(done) as f64 / rate;
            line.push_str(&format!(" ETA {left:.0}s"));
        }
    }
    if k.done {
        line.push_str(match &k.note {
            Some(_) => " skipped",
            None => " done",
        });
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_shows_counts_and_an_eta_only_with_a_total() {
        let mut k = KindState {
            tally: Tally {
                applied: 30,
                unchanged: 10,
                parked: 0,
                rejected: 0,
            },
            started: Some(Instant::now() - Duration::from_secs(10)),
            ..KindState::default()
        };
        let line = render("import", "customers", &k);
        assert!(
            line.starts_with("import customers: 40 (applied 30, unchanged 10, parked 0) 4/s"),
            "{line}"
        );
        assert!(!line.contains("ETA"), "{line}");
        k.total = Some(80);
        let line = render("import", "customers", &k);
        assert!(line.contains("50%") && line.contains("ETA 10s"), "{line}");
    }

    #[test]
    fn the_summary_has_a_row_per_kind_in_order_and_a_total() {
        let p = Progress::quiet("import");
        let one = Tally {
            applied: 2,
            unchanged: 1,
            parked: 1,
            rejected: 0,
        };
        p.start_kind("products", Tally::default(), None);
        p.finish_kind("products", &one, None);
        p.start_kind("customers", Tally::default(), None);
        p.update("customers", &one);
        p.finish_kind(
            "entitlements",
            &Tally::default(),
            Some("not offered by this API"),
        );
        let summary = p.summary();
        let rows: Vec<&str> = summary.lines().collect();
        assert_eq!(rows.len(), 5, "{summary}");
        assert!(rows[1].starts_with("products"), "{summary}");
        assert!(rows[2].starts_with("customers"), "{summary}");
        assert!(rows[3].contains("(not offered by this API)"), "{summary}");
        assert!(
            rows[4].split_whitespace().collect::<Vec<_>>() == ["total", "4", "2", "2", "0"],
            "{summary}"
        );
        assert_eq!(p.tallies().len(), 3);
    }
}

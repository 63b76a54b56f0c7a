//! Counts, latency histograms and the JSON summary of a run.
//!
//! Latencies are in microseconds: an *exchange* is one request and its final answer (from the
//! first transmission, so retransmissions count against it); a *registration* is the whole
//! exchange sequence ending in 200 (REGISTER, 401, REGISTER, 200 with a challenge; one exchange
//! with pre-emptive credentials or without auth).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency recorded: timer F at the largest T1 allowed, with margin.
const MAX_US: u64 = 600_000_000;

pub fn histogram() -> Histogram<u64> {
    // Three significant digits up to 10 minutes: bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, MAX_US, 3).expect("constant, valid bounds")
}

/// What one thread (or the whole run) counted.
#[derive(Clone)]
pub struct Stats {
    /// Registrations completed with 200 (initial and refreshes).
    pub registrations: u64,
    /// Of which the first for their user agent in this run (with a challenge when auth is on).
    pub initial: u64,
    /// Of which refreshes (pre-emptive credentials).
    pub refreshes: u64,
    /// De-registrations completed with 200 (`--unregister`).
    pub unregistrations: u64,
    /// Request/final-answer pairs of the measured phase.
    pub exchanges: u64,
    /// Request/final-answer pairs of the de-registrations.
    pub unregister_exchanges: u64,
    /// 401/407 answers taken as challenges (including `stale=true`).
    pub challenges: u64,
    /// Of which with `stale=true`.
    pub stale: u64,
    pub retransmissions: u64,
    pub timeouts: u64,
    /// Final answers other than 200 that ended a registration, by status code.
    pub failures: BTreeMap<u16, u64>,
    /// Open loop: registrations due when every user agent was busy (not sent).
    pub missed: u64,
    /// Datagrams that matched no transaction in flight (late answers to retransmissions, ...).
    pub stray: u64,
    /// Datagrams the kernel refused to send.
    pub send_errors: u64,
    pub registration_us: Histogram<u64>,
    /// Each registration's time less the load generator's turnaround between a challenge and
    /// the retried request: the time its requests spent in the network and the server.
    pub registration_server_us: Histogram<u64>,
    pub exchange_us: Histogram<u64>,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            registrations: 0,
            initial: 0,
            refreshes: 0,
            unregistrations: 0,
            exchanges: 0,
            unregister_exchanges: 0,
            challenges: 0,
            stale: 0,
            retransmissions: 0,
            timeouts: 0,
            failures: BTreeMap::new(),
            missed: 0,
            stray: 0,
            send_errors: 0,
            registration_us: histogram(),
            registration_server_us: histogram(),
            exchange_us: histogram(),
        }
    }
}

impl Stats {
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    pub fn merge(&mut self, o: &Stats) {
        self.registrations += o.registrations;
        self.initial += o.initial;
        self.refreshes += o.refreshes;
        self.unregistrations += o.unregistrations;
        self.exchanges += o.exchanges;
        self.unregister_exchanges += o.unregister_exchanges;
        self.challenges += o.challenges;
        self.stale += o.stale;
        self.retransmissions += o.retransmissions;
        self.timeouts += o.timeouts;
        for (code, n) in &o.failures {
            *self.failures.entry(*code).or_default() += n;
        }
        self.missed += o.missed;
        self.stray += o.stray;
        self.send_errors += o.send_errors;
        // Same bounds on both sides: adding cannot fail.
        let _ = self.registration_us.add(&o.registration_us);
        let _ = self.registration_server_us.add(&o.registration_server_us);
        let _ = self.exchange_us.add(&o.exchange_us);
    }
}

/// Latency percentiles in microseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            mean: (h.mean() * 10.0).round() / 10.0,
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Counts {
    pub registrations: u64,
    pub initial: u64,
    pub refreshes: u64,
    pub unregistrations: u64,
    pub exchanges: u64,
    pub unregister_exchanges: u64,
    pub challenges: u64,
    pub stale: u64,
    pub retransmissions: u64,
    pub timeouts: u64,
    pub failures: BTreeMap<u16, u64>,
    pub failed: u64,
    pub missed: u64,
    pub stray: u64,
    pub send_errors: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Rates {
    /// Registrations per second asked for (open loop), or achieved (closed loop).
    pub offered_per_s: f64,
    /// Registrations completed per second of the measured phase.
    pub achieved_per_s: f64,
    pub exchanges_per_s: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    /// From a registration's first request leaving to its 200 arriving, both as the kernel
    /// saw them, as the phone would see it.
    pub registration: Percentiles,
    /// The same less the load generator's own turnaround between a challenge and its retry:
    /// what the server and the network took.
    #[serde(default)]
    pub registration_server: Percentiles,
    /// Each request to its final answer.
    pub exchange: Percentiles,
}

/// The JSON written at the end of a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Names the server (or setup) in plots: `--label`.
    pub label: String,
    /// The run's settings, as given.
    pub config: serde_json::Value,
    /// Seconds from the first request to the last answer of the measured phase (de-registration
    /// excluded).
    pub duration_s: f64,
    /// CPU seconds (user + system) the load generator used, all threads, whole run.
    pub cpu_s: f64,
    /// Of which per exchange, in microseconds: its own cost, whatever else the cores ran.
    pub cpu_us_per_exchange: f64,
    pub counts: Counts,
    pub rates: Rates,
    pub latency_us: Latency,
}

impl Summary {
    pub fn new(
        label: String,
        config: serde_json::Value,
        duration_s: f64,
        cpu_s: f64,
        offered: Option<f64>,
        s: &Stats,
    ) -> Summary {
        let all_exchanges = s.exchanges + s.unregister_exchanges;
        let per_s = |n: u64| {
            if duration_s > 0.0 {
                (n as f64 / duration_s * 10.0).round() / 10.0
            } else {
                0.0
            }
        };
        let achieved = per_s(s.registrations);
        Summary {
            label,
            config,
            duration_s: (duration_s * 1000.0).round() / 1000.0,
            cpu_s: (cpu_s * 1000.0).round() / 1000.0,
            cpu_us_per_exchange: if all_exchanges > 0 {
                (cpu_s * 1e7 / all_exchanges as f64).round() / 10.0
            } else {
                0.0
            },
            counts: Counts {
                registrations: s.registrations,
                initial: s.initial,
                refreshes: s.refreshes,
                unregistrations: s.unregistrations,
                exchanges: s.exchanges,
                unregister_exchanges: s.unregister_exchanges,
                challenges: s.challenges,
                stale: s.stale,
                retransmissions: s.retransmissions,
                timeouts: s.timeouts,
                failures: s.failures.clone(),
                failed: s.failed(),
                missed: s.missed,
                stray: s.stray,
                send_errors: s.send_errors,
            },
            rates: Rates {
                offered_per_s: offered.unwrap_or(achieved),
                achieved_per_s: achieved,
                exchanges_per_s: per_s(s.exchanges),
            },
            latency_us: Latency {
                registration: Percentiles::of(&s.registration_us),
                registration_server: Percentiles::of(&s.registration_server_us),
                exchange: Percentiles::of(&s.exchange_us),
            },
        }
    }
}

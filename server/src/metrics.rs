//! The server's counters and their Prometheus text form (`GET /metrics`, DESIGN.md section 7).
//!
//! Only process-wide totals: reports accepted, rejected by reason, failed, duplicates,
//! conflicts, rate-limited; connections; request latency; the storage queue. Nothing per
//! client, source or report, and nothing is logged from here.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why an upload was refused, as the `reason` label of `clearcount_reports_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Not JSON, or not a report (400).
    Malformed,
    /// Larger than the limit, or the body was cut (413).
    TooLarge,
    /// Not `application/json` (415).
    ContentType,
    /// A report the config does not allow (422).
    Invalid,
    /// Same config index, week and x as a stored report, different otherwise (409).
    Conflict,
    /// The body did not arrive in time (408).
    SlowBody,
}

impl Reject {
    const ALL: [Reject; 6] = [
        Reject::Malformed,
        Reject::TooLarge,
        Reject::ContentType,
        Reject::Invalid,
        Reject::Conflict,
        Reject::SlowBody,
    ];

    fn name(self) -> &'static str {
        match self {
            Reject::Malformed => "malformed",
            Reject::TooLarge => "too_large",
            Reject::ContentType => "content_type",
            Reject::Invalid => "invalid",
            Reject::Conflict => "conflict",
            Reject::SlowBody => "slow_body",
        }
    }
}

/// Upper bounds of the request latency histogram, in seconds.
const LATENCY_BOUNDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Reports stored.
    pub accepted: AtomicU64,
    /// Reports refused, by [`Reject`] in the order of `Reject::ALL`.
    rejected: [AtomicU64; 6],
    /// Reports that failed on the server side (5xx).
    pub failed: AtomicU64,
    /// Repeats of a stored report (answered 200, not stored again).
    pub duplicates: AtomicU64,
    /// Uploads refused by the per-source limiter (429).
    pub rate_limited: AtomicU64,
    /// Connections open now.
    pub connections_open: AtomicU64,
    /// Connections closed at once because their source held its share.
    pub connections_refused: AtomicU64,
    /// Requests by latency bucket (the last is +Inf).
    latency: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    /// Sum of request latencies in microseconds.
    latency_micros: AtomicU64,
}

impl Metrics {
    /// Counts a refused upload.
    pub fn reject(&self, why: Reject) {
        let i = Reject::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.rejected[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Uploads refused so far, all reasons.
    pub fn rejected(&self) -> u64 {
        self.rejected
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Records one request's latency.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = LATENCY_BOUNDS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(LATENCY_BOUNDS.len());
        self.latency[i].fetch_add(1, Ordering::Relaxed);
        self.latency_micros.fetch_add(
            d.as_micros().try_into().unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The Prometheus text exposition (format 0.0.4) of every counter, plus the storage state
    /// given by the caller.
    pub fn render(&self, storage_kind: &str, storage_queue: usize) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut s = String::with_capacity(4096);
        let name = "clearcount_reports_accepted_total";
        head(&mut s, name, "counter", "Reports stored.");
        let _ = writeln!(s, "{name} {}", get(&self.accepted));
        let name = "clearcount_reports_rejected_total";
        head(
            &mut s,
            name,
            "counter",
            "Uploads refused with a 4xx, by reason.",
        );
        for (r, c) in Reject::ALL.iter().zip(&self.rejected) {
            let _ = writeln!(s, "{name}{{reason=\"{}\"}} {}", r.name(), get(c));
        }
        for (name, kind, help, c) in [
            (
                "clearcount_reports_failed_total",
                "counter",
                "Uploads that failed on the server side (5xx).",
                &self.failed,
            ),
            (
                "clearcount_reports_duplicate_total",
                "counter",
                "Repeats of a stored report, answered 200 and not stored again.",
                &self.duplicates,
            ),
            (
                "clearcount_reports_rate_limited_total",
                "counter",
                "Uploads refused by the per-source limiter (429).",
                &self.rate_limited,
            ),
            (
                "clearcount_connections_refused_total",
                "counter",
                "Connections closed at once because their source held its share of slots.",
                &self.connections_refused,
            ),
            (
                "clearcount_connections_open",
                "gauge",
                "Client connections open now.",
                &self.connections_open,
            ),
        ] {
            head(&mut s, name, kind, help);
            let _ = writeln!(s, "{name} {}", get(c));
        }
        let name = "clearcount_request_duration_seconds";
        head(
            &mut s,
            name,
            "histogram",
            "Time from a request's head to its response's head.",
        );
        let mut cumulative = 0;
        for (i, c) in self.latency.iter().enumerate() {
            cumulative += get(c);
            let le = LATENCY_BOUNDS
                .get(i)
                .map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(s, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = get(&self.latency_micros) as f64 / 1e6;
        let _ = writeln!(s, "{name}_sum {sum}\n{name}_count {cumulative}");
        let name = "clearcount_storage_queue";
        head(
            &mut s,
            name,
            "gauge",
            "Accepted reports waiting for their commit.",
        );
        let _ = writeln!(s, "{name} {storage_queue}");
        let name = "clearcount_storage_info";
        head(&mut s, name, "gauge", "The storage in use (always 1).");
        let _ = writeln!(s, "{name}{{kind=\"{storage_kind}\"}} 1");
        s
    }
}

fn head(s: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.accepted.fetch_add(3, Ordering::Relaxed);
        m.reject(Reject::Conflict);
        m.observe(Duration::from_millis(3));
        m.observe(Duration::from_secs(60));
        let text = m.render("sqlite", 2);
        for line in [
            "# TYPE clearcount_reports_accepted_total counter",
            "clearcount_reports_accepted_total 3",
            "clearcount_reports_rejected_total{reason=\"conflict\"} 1",
            "clearcount_reports_rejected_total{reason=\"malformed\"} 0",
            "clearcount_request_duration_seconds_bucket{le=\"0.0025\"} 0",
            "clearcount_request_duration_seconds_bucket{le=\"0.005\"} 1",
            "clearcount_request_duration_seconds_bucket{le=\"+Inf\"} 2",
            "clearcount_request_duration_seconds_count 2",
            "clearcount_storage_queue 2",
            "clearcount_storage_info{kind=\"sqlite\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert_eq!(m.rejected(), 1);
    }
}

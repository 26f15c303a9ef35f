//! Prometheus metrics in the plain-text exposition format (version 0.0.4), served at TF
//! Serving's `/monitoring/prometheus/metrics`. Hand-written: three metric families do not
//! earn a client library and its registry.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A histogram with fixed upper bounds; each observation lands in one bucket, and the
/// exposition sums them into Prometheus's cumulative `le` buckets.
pub struct Histogram {
    bounds: Vec<f64>,
    /// One count per bound, plus the `+Inf` bucket.
    counts: Vec<AtomicU64>,
    /// The sum of observations, as `f64` bits (there is no atomic float).
    sum: AtomicU64,
}

impl Histogram {
    /// A histogram with the given ascending upper bounds.
    pub fn new(bounds: &[f64]) -> Self {
        Histogram { bounds: bounds.to_vec(), counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(), sum: AtomicU64::new(0) }
    }

    /// Records one observation.
    pub fn observe(&self, v: f64) {
        let i = self.bounds.iter().position(|&b| v <= b).unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let _ = self.sum.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + v).to_bits()));
    }

    /// How many observations exceeded `bound` (used by tests: "was a batch larger than 1?").
    pub fn count_above(&self, bound: f64) -> u64 {
        self.bounds.iter().zip(&self.counts).filter(|(&b, _)| b > bound).map(|(_, c)| c.load(Ordering::Relaxed)).sum::<u64>()
            + self.counts[self.bounds.len()].load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut total = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            total += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {total}");
        }
        total += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let _ = writeln!(out, "{name}_sum {}", f64::from_bits(self.sum.load(Ordering::Relaxed)));
        let _ = writeln!(out, "{name}_count {total}");
    }
}

/// The server's metrics: requests by endpoint and status code, request latency, and the size
/// of each batch the model ran.
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// End-to-end request latency in seconds, as the handler saw it.
    pub latency: Histogram,
    /// Rows per forward pass.
    pub batch_size: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        Metrics {
            requests: Mutex::new(BTreeMap::new()),
            latency: Histogram::new(&[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            batch_size: Histogram::new(&[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]),
        }
    }

    /// Counts one finished request.
    pub fn record_request(&self, endpoint: &'static str, code: u16, latency: Duration) {
        // A poisoned lock only means a panic elsewhere mid-increment; the counts stay usable.
        let mut map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry((endpoint, code)).or_insert(0) += 1;
        drop(map);
        self.latency.observe(latency.as_secs_f64());
    }

    /// The number of requests to `endpoint` answered with `code` so far.
    pub fn requests(&self, endpoint: &str, code: u16) -> u64 {
        let map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().filter(|((e, c), _)| *e == endpoint && *c == code).map(|(_, n)| n).sum()
    }

    /// The exposition text, with `queued` (requests waiting for the model) as a gauge.
    pub fn render(&self, queued: usize) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP fovea_serve_requests_total HTTP requests answered, by endpoint and status code.\n");
        out.push_str("# TYPE fovea_serve_requests_total counter\n");
        for ((endpoint, code), n) in self.requests.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "fovea_serve_requests_total{{endpoint=\"{endpoint}\",code=\"{code}\"}} {n}");
        }
        self.latency.render(&mut out, "fovea_serve_request_duration_seconds", "Request latency in seconds, read to response.");
        self.batch_size.render(&mut out, "fovea_serve_batch_size", "Rows (instances) per forward pass of the model.");
        let _ = writeln!(out, "# HELP fovea_serve_queued_requests Requests waiting for the model.");
        let _ = writeln!(out, "# TYPE fovea_serve_queued_requests gauge\nfovea_serve_queued_requests {queued}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_in_the_exposition() {
        let m = Metrics::new();
        m.batch_size.observe(1.0);
        m.batch_size.observe(3.0);
        m.batch_size.observe(1000.0);
        let text = m.render(0);
        assert!(text.contains("fovea_serve_batch_size_bucket{le=\"1\"} 1\n"), "{text}");
        assert!(text.contains("fovea_serve_batch_size_bucket{le=\"4\"} 2\n"), "{text}");
        assert!(text.contains("fovea_serve_batch_size_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("fovea_serve_batch_size_sum 1004\n"), "{text}");
        assert_eq!(m.batch_size.count_above(1.0), 2);
        m.record_request("predict", 200, Duration::from_millis(2));
        m.record_request("predict", 200, Duration::from_millis(2));
        assert!(m.render(0).contains("fovea_serve_requests_total{endpoint=\"predict\",code=\"200\"} 2\n"));
        assert_eq!(m.requests("predict", 200), 2);
    }
}

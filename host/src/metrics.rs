//! Prometheus metrics of the host: HTTP requests by route and status,
//! cancellations by outcome, jobs by state, plugin call latency.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::JobState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

/// The host's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    cancellations: Family<OutcomeLabels, Counter>,
    jobs: Family<StateLabels, Gauge>,
    job_attempts: Family<OutcomeLabels, Counter>,
    plugin_call_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rescind");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            http_requests.clone(),
        );
        let cancellations = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "cancellations",
            "Cancellation requests by outcome: committed, replayed, or the refusal code",
            cancellations.clone(),
        );
        let jobs = Family::<StateLabels, Gauge>::default();
        registry.register("jobs", "Jobs by state", jobs.clone());
        let job_attempts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "job_attempts",
            "Job attempts by outcome",
            job_attempts.clone(),
        );
        // 1 ms … ~33 s
        let plugin_call_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "plugin_call_seconds",
            "Wall time of integration processor calls",
            plugin_call_seconds.clone(),
        );
        Metrics {
            registry,
            http_requests,
            cancellations,
            jobs,
            job_attempts,
            plugin_call_seconds,
        }
    }

    /// Counts an HTTP request.
    pub fn http_request(&self, method: &str, route: &str, status: u16) {
        self.http_requests
            .get_or_create(&HttpLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    /// Counts a cancellation request's outcome.
    pub fn cancellation(&self, outcome: &str) {
        self.cancellations
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts a job attempt's outcome and its plugin call time.
    pub fn job_attempt(&self, outcome: &str, seconds: f64) {
        self.job_attempts
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
        self.plugin_call_seconds.observe(seconds);
    }

    /// Sets the job gauges from a count per state.
    pub fn set_jobs(&self, counts: &[(JobState, i64)]) {
        for (state, count) in counts {
            self.jobs
                .get_or_create(&StateLabels {
                    state: state.as_str().to_owned(),
                })
                .set(*count);
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

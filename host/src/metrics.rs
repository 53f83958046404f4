//! Prometheus metrics of the host: HTTP requests by route and status,
//! cancellations by outcome, jobs by state, plugin call latency.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use std::sync::Mutex;

use crate::plugins::registry::RegistryMetrics;
use crate::store::{JobState, Pruned};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: String,
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
    jobs_pruned: Counter,
    job_attempts_pruned: Counter,
    plugin_call_seconds: Histogram,
    plugin_uploads: Family<OutcomeLabels, Counter>,
    plugin_switches: Family<ActionLabels, Counter>,
    plugin_compilations: Counter,
    plugin_folder_events: Family<OutcomeLabels, Counter>,
    /// Serialises bringing the registry's counters over, so that two
    /// scrapes at once do not both add the same increase.
    plugin_sync: Mutex<()>,
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
        let jobs_pruned = Counter::default();
        registry.register(
            "jobs_pruned",
            "Finished jobs deleted by the job retention (periodic or by hand)",
            jobs_pruned.clone(),
        );
        let job_attempts_pruned = Counter::default();
        registry.register(
            "job_attempts_pruned",
            "Attempts deleted with the jobs the job retention deleted",
            job_attempts_pruned.clone(),
        );
        // 1 ms … ~33 s
        let plugin_call_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "plugin_call_seconds",
            "Wall time of integration processor calls",
            plugin_call_seconds.clone(),
        );
        let plugin_uploads = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "plugin_uploads",
            "Plugin uploads (API and watched folder) by outcome: accepted or refused",
            plugin_uploads.clone(),
        );
        let plugin_switches = Family::<ActionLabels, Counter>::default();
        registry.register(
            "plugin_switches",
            "Active plugin version switches by action: activated, rolled-back (by an operator), \
             automatic-rollback (by an activation guard)",
            plugin_switches.clone(),
        );
        let plugin_compilations = Counter::default();
        registry.register(
            "plugin_compilations",
            "Plugin components compiled (a load from the on-disk cache does not count)",
            plugin_compilations.clone(),
        );
        let plugin_folder_events = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "plugin_folder_events",
            "What the plugins folder watch did with a file: loaded, already-stored, refused, \
             unsettled",
            plugin_folder_events.clone(),
        );
        Metrics {
            registry,
            http_requests,
            cancellations,
            jobs,
            job_attempts,
            jobs_pruned,
            job_attempts_pruned,
            plugin_call_seconds,
            plugin_uploads,
            plugin_switches,
            plugin_compilations,
            plugin_folder_events,
            plugin_sync: Mutex::new(()),
        }
    }

    /// Counts an HTTP request.
    pub fn http_request(&self, method: &'static str, route: &str, status: u16) {
        self.http_requests
            .get_or_create(&HttpLabels {
                method,
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    /// Counts a cancellation request's outcome.
    pub fn cancellation(&self, outcome: &'static str) {
        self.cancellations
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts a job attempt's outcome and its plugin call time.
    pub fn job_attempt(&self, outcome: &'static str, seconds: f64) {
        self.job_attempts
            .get_or_create(&OutcomeLabels { outcome })
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

    /// Counts what a batch of the job retention deleted.
    pub fn jobs_pruned(&self, pruned: Pruned) {
        self.jobs_pruned.inc_by(pruned.jobs);
        self.job_attempts_pruned.inc_by(pruned.attempts);
    }

    /// Counts what the plugins folder watch did with a file.
    pub fn plugin_folder_event(&self, outcome: &'static str) {
        self.plugin_folder_events
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Brings the plugin registry's counters (kept by the registry since it
    /// opened, as this host's metrics are) and the runtime's compilation
    /// count over, before a scrape.
    pub fn set_plugin_counters(&self, registry: &RegistryMetrics, compilations: u64) {
        let _sync = self.plugin_sync.lock().unwrap_or_else(|e| e.into_inner());
        let catch_up = |counter: &Counter, total: u64| {
            counter.inc_by(total.saturating_sub(counter.get()));
        };
        let upload = |outcome: &'static str| {
            self.plugin_uploads
                .get_or_create(&OutcomeLabels { outcome })
        };
        let switch = |action: &str| {
            self.plugin_switches.get_or_create(&ActionLabels {
                action: action.to_owned(),
            })
        };
        catch_up(&upload("accepted"), registry.uploads);
        catch_up(&upload("refused"), registry.refused_uploads);
        catch_up(&switch("activated"), registry.activations);
        catch_up(&switch("rolled-back"), registry.rollbacks);
        catch_up(&switch("automatic-rollback"), registry.automatic_rollbacks);
        catch_up(&self.plugin_compilations, compilations);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

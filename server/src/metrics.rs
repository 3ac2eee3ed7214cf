//! Prometheus metrics (OpenMetrics text at `GET /metrics`, or on `--metrics-listen`).
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `tessera_http_requests_total` | `route`, `method`, `status` | every answered request (`route` is the route template, `other` outside the routes) |
//! | `tessera_http_request_duration_seconds` | `route`, `method` | latency histogram |
//! | `tessera_login_total` | `step` (`password`, `mfa`), `outcome` | `session`, `mfa_required`, or the problem code (`invalid_credentials`, `rate_limited`, …) |
//! | `tessera_refresh_total` | `outcome` | `rotated`, `grace`, `reuse`, `expired`, `revoked`, `unknown` |
//! | `tessera_rate_limited_total` | `route` | 429 `rate_limited` answers |
//! | `tessera_store_operation_duration_seconds` | `op` | store latency (`rotate`, `ping`) |
//! | `tessera_sessions_created_total` | – | sessions created by this instance (login and MFA) |
//! | `tessera_live_sessions` | – | sessions live now in the whole store (not revoked, within the idle and absolute lifetimes): counted from the store at each scrape, so every instance reports the same shared number and logouts, revocations, reuse detections and expiry on any instance show at once |

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::store::RotateOutcome;

/// Content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: Label,
    method: Label,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Label,
    method: Label,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    step: &'static str,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteOnly {
    route: Label,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
}

/// A label value: borrowed for the usual (static) route templates and methods, so
/// recording a request allocates nothing once its label set exists.
pub type Label = std::borrow::Cow<'static, str>;

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency() -> Histogram {
    // 100 µs … ~3.3 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// The server's metrics; one per [`AppState`](crate::AppState), rendered by `GET /metrics`.
pub struct Metrics {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    durations: HistogramFamily<RouteLabels>,
    logins: Family<LoginLabels, Counter>,
    refreshes: Family<OutcomeLabels, Counter>,
    rate_limited: Family<RouteOnly, Counter>,
    store_ops: HistogramFamily<OpLabels>,
    sessions_created: Counter,
    live_sessions: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered (at zero).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tessera");
        let requests = Family::<HttpLabels, Counter>::default();
        let durations: HistogramFamily<RouteLabels> = Family::new_with_constructor(latency);
        let logins = Family::<LoginLabels, Counter>::default();
        let refreshes = Family::<OutcomeLabels, Counter>::default();
        let rate_limited = Family::<RouteOnly, Counter>::default();
        let store_ops: HistogramFamily<OpLabels> = Family::new_with_constructor(latency);
        let sessions_created = Counter::default();
        let live_sessions = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            durations.clone(),
        );
        registry.register(
            "login",
            "Login steps by outcome (session, mfa_required or the problem code)",
            logins.clone(),
        );
        registry.register(
            "refresh",
            "Refresh-token presentations by outcome",
            refreshes.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused with 429 rate_limited",
            rate_limited.clone(),
        );
        registry.register(
            "store_operation_duration_seconds",
            "Session store operation latency",
            store_ops.clone(),
        );
        registry.register(
            "sessions_created",
            "Sessions created by this instance",
            sessions_created.clone(),
        );
        registry.register(
            "live_sessions",
            "Sessions live now in the store (counted at each scrape)",
            live_sessions.clone(),
        );
        Metrics {
            live_sessions,
            registry,
            requests,
            durations,
            logins,
            refreshes,
            rate_limited,
            store_ops,
            sessions_created,
        }
    }

    /// Records one answered request.
    pub fn request(
        &self,
        route: impl Into<Label>,
        method: impl Into<Label>,
        status: u16,
        took: Duration,
    ) {
        let (route, method) = (route.into(), method.into());
        self.requests
            .get_or_create(&HttpLabels {
                route: route.clone(),
                method: method.clone(),
                status,
            })
            .inc();
        if status == 429 {
            self.rate_limited
                .get_or_create(&RouteOnly {
                    route: route.clone(),
                })
                .inc();
        }
        self.durations
            .get_or_create(&RouteLabels { route, method })
            .observe(took.as_secs_f64());
    }

    /// Records a login step (`password` or `mfa`) and its outcome.
    pub fn login(&self, step: &'static str, outcome: &str) {
        if outcome == "session" {
            self.sessions_created.inc();
        }
        self.logins
            .get_or_create(&LoginLabels {
                step,
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Records what the store decided for a presented refresh token.
    pub fn refresh(&self, outcome: &RotateOutcome) {
        let outcome = match outcome {
            RotateOutcome::Rotated(_) => "rotated",
            RotateOutcome::Grace { .. } => "grace",
            RotateOutcome::Reused { .. } => "reuse",
            RotateOutcome::Expired => "expired",
            RotateOutcome::Revoked => "revoked",
            RotateOutcome::Unknown => "unknown",
        };
        self.refreshes
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Records the latency of one store operation.
    pub fn store_op(&self, op: &'static str, took: Duration) {
        self.store_ops
            .get_or_create(&OpLabels { op })
            .observe(took.as_secs_f64());
    }

    /// Sets the live-session gauge (the scrape handler counts them in the store first).
    pub fn set_live_sessions(&self, n: u64) {
        self.live_sessions.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text exposition (Prometheus reads it).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // writing into a String cannot fail
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_recorded() {
        let m = Metrics::new();
        m.request("/auth/login", "POST", 429, Duration::from_millis(3));
        m.login("password", "session");
        m.refresh(&RotateOutcome::Reused { sid: "x".into() });
        m.store_op("rotate", Duration::from_micros(250));
        m.set_live_sessions(7);
        let text = m.render();
        assert!(text.contains("tessera_live_sessions 7"));
        assert!(text.contains(
            r#"tessera_http_requests_total{route="/auth/login",method="POST",status="429"} 1"#
        ));
        assert!(text.contains(r#"tessera_rate_limited_total{route="/auth/login"} 1"#));
        assert!(text.contains(r#"tessera_login_total{step="password",outcome="session"} 1"#));
        assert!(text.contains(r#"tessera_refresh_total{outcome="reuse"} 1"#));
        assert!(text.contains("tessera_sessions_created_total 1"));
        assert!(text.contains(r#"tessera_store_operation_duration_seconds_count{op="rotate"} 1"#));
        assert!(text.ends_with("# EOF\n"));
    }
}

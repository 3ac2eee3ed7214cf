//! Request ids, request metrics and logging.
//!
//! Every request gets an `x-request-id` (tower-http's request-id layer; an incoming id is
//! kept only if it is 1–64 characters of `[A-Za-z0-9._:-]`, otherwise replaced), carried
//! in the request's tracing span (so in every log line the request causes), in the
//! response header, and as the `instance` of a problem+json body
//! (`urn:tessera:request:<id>`), so a user's error report finds the server's log lines.

use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::Response;
use tower_http::request_id::{MakeRequestId, RequestId};
use tower_http::trace::DefaultOnResponse;

use crate::metrics::Label;
use crate::state::AppState;

/// The request-id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Largest problem or login body the middleware reads back (they are a few hundred bytes).
const BODY_PEEK_LIMIT: usize = 64 * 1024;

/// Log line format (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (tracing-subscriber's JSON, with the span's fields).
    Json,
}

/// Installs the global tracing subscriber: `filter` (EnvFilter syntax) to stderr in `format`.
pub fn init_logging(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// Generates request ids: 128 random bits, hex.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bytes: [u8; 16] = rand::random();
        let mut hex = [0u8; 32];
        for (i, b) in bytes.iter().enumerate() {
            hex[2 * i] = HEX[usize::from(b >> 4)];
            hex[2 * i + 1] = HEX[usize::from(b & 0x0f)];
        }
        HeaderValue::from_bytes(&hex).ok().map(RequestId::new)
    }
}

/// Whether an incoming `x-request-id` may be kept (a proxy's id helps tracing; anything
/// else could forge or break log lines).
pub fn acceptable_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    (1..=64).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
}

/// One layer that gives every request its `x-request-id`: an incoming id is kept when
/// [`acceptable_request_id`], otherwise dropped and replaced by a [`NewRequestId`] (a
/// plain service wrapper: it runs on every request, so no boxing and no extra future).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> tower::Layer<S> for RequestIdLayer {
    type Service = SetRequestId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SetRequestId(inner)
    }
}

/// The service of [`RequestIdLayer`].
#[derive(Debug, Clone, Copy)]
pub struct SetRequestId<S>(S);

impl<S, B> tower::Service<axum::http::Request<B>> for SetRequestId<S>
where
    S: tower::Service<axum::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut req: axum::http::Request<B>) -> Self::Future {
        let keep = req
            .headers()
            .get(&REQUEST_ID)
            .is_some_and(acceptable_request_id);
        if !keep {
            if let Some(id) = NewRequestId.make_request_id(&req) {
                // `insert` replaces every incoming value
                req.headers_mut()
                    .insert(REQUEST_ID, id.header_value().clone());
            }
        }
        self.0.call(req)
    }
}

/// The route template as a metrics label: interned (route templates are a small fixed
/// set), so a request's labels borrow instead of allocating. At most `MAX_INTERNED`
/// distinct templates are kept; any beyond (there are none today) are copied.
fn route_label(path: Option<&MatchedPath>) -> Label {
    const MAX_INTERNED: usize = 128;
    static ROUTES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let Some(path) = path.map(MatchedPath::as_str) else {
        return Label::Borrowed("other");
    };
    let mut set = ROUTES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(&r) = set.get(path) {
        return Label::Borrowed(r);
    }
    if set.len() >= MAX_INTERNED {
        return Label::Owned(path.to_owned());
    }
    let r: &'static str = Box::leak(path.to_owned().into_boxed_str());
    set.insert(r);
    Label::Borrowed(r)
}

fn method_label(m: &Method) -> Label {
    Label::Borrowed(match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        _ => return Label::Owned(m.as_str().to_owned()),
    })
}

/// The per-request bookkeeping of [`track`] as a layer (a plain service wrapper, one boxed
/// future per request; `axum::middleware::from_fn` would box the inner service and its
/// future again on every request).
#[derive(Clone)]
pub struct TrackLayer(pub AppState);

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Track {
            inner,
            state: self.0.clone(),
        }
    }
}

/// The service of [`TrackLayer`].
#[derive(Clone)]
pub struct Track<S> {
    inner: S,
    state: AppState,
}

impl<S> tower::Service<Request> for Track<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // the ready service goes with the request; a clone stays for the next call
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(track(self.state.clone(), req, inner))
    }
}

/// Per-request bookkeeping: metrics by route template, login outcomes, the response's
/// `x-request-id`, and the problem body's `instance`.
async fn track<S>(state: AppState, req: Request, mut inner: S) -> Result<Response, Infallible>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    let started = Instant::now();
    // the id as set by the request-id layer (a cheap clone of the header value)
    let id = req.headers().get(&REQUEST_ID).cloned();
    let route = route_label(req.extensions().get::<MatchedPath>());
    let method = method_label(req.method());
    let res = inner.call(req).await?;
    let status = res.status().as_u16();
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    let login_step = match &*route {
        "/auth/login" => Some("password"),
        "/auth/mfa" => Some("mfa"),
        _ => None,
    };
    let mut res = if is_problem || (login_step.is_some() && status == 200) {
        let (mut parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(body, BODY_PEEK_LIMIT)
            .await
            .unwrap_or_default();
        let mut json: serde_json::Value =
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        if let Some(step) = login_step {
            let outcome = if is_problem {
                json.get("code")
                    .and_then(|c| c.as_str())
                    .unwrap_or("unknown")
                    .to_string()
            } else if json.get("mfa_required").and_then(|v| v.as_bool()) == Some(true) {
                "mfa_required".to_string()
            } else {
                "session".to_string()
            };
            state.metrics().login(step, &outcome);
        }
        let body = match (is_problem, json.as_object_mut()) {
            (true, Some(obj)) => {
                obj.insert(
                    "instance".into(),
                    serde_json::Value::String(format!(
                        "urn:tessera:request:{}",
                        id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-")
                    )),
                );
                parts.headers.remove(header::CONTENT_LENGTH);
                Body::from(serde_json::to_vec(&json).unwrap_or_default())
            }
            _ => Body::from(bytes),
        };
        Response::from_parts(parts, body)
    } else {
        res
    };
    if let Some(v) = id {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    state
        .metrics()
        .request(route, method, status, started.elapsed());
    Ok(res)
}

/// The span each request runs in (with its id, method and path).
fn request_span(req: &axum::http::Request<Body>) -> tracing::Span {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    )
}

/// The tracing layer: a span per request and one access-log line per request, inside its
/// span (so with its request id).
pub type TraceLayer = tower_http::trace::TraceLayer<
    tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>,
    fn(&axum::http::Request<Body>) -> tracing::Span,
    tower_http::trace::DefaultOnRequest,
    DefaultOnResponse,
>;

/// See [`TraceLayer`].
pub fn trace_layer() -> TraceLayer {
    tower_http::trace::TraceLayer::new_for_http()
        .make_span_with(request_span as fn(&axum::http::Request<Body>) -> tracing::Span)
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_outside_are_kept_only_when_plain() {
        for ok in ["abc", "0f3e-11.ab_c:9", "a".repeat(64).as_str()] {
            assert!(
                acceptable_request_id(&HeaderValue::from_str(ok).unwrap()),
                "{ok}"
            );
        }
        for bad in ["", "a b", "a\"b", "{}", "a".repeat(65).as_str(), "x\u{7f}"] {
            let v = HeaderValue::from_bytes(bad.as_bytes());
            assert!(v.map_or(true, |v| !acceptable_request_id(&v)), "{bad:?}");
        }
    }

    #[test]
    fn generated_ids_are_acceptable_and_distinct() {
        let req = axum::http::Request::new(());
        let a = NewRequestId.make_request_id(&req).unwrap();
        let b = NewRequestId.make_request_id(&req).unwrap();
        assert!(acceptable_request_id(a.header_value()));
        assert_eq!(a.header_value().len(), 32);
        assert_ne!(a.header_value(), b.header_value());
    }
}

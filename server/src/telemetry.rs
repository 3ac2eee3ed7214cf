//! Request ids, request metrics and logging.
//!
//! Every request gets an `x-request-id` (tower-http's request-id layer; an incoming id is
//! kept only if it is 1–64 characters of `[A-Za-z0-9._:-]`, otherwise replaced), carried
//! in the request's tracing span (so in every log line the request causes), in the
//! response header, and as the `instance` of a problem+json body
//! (`urn:tessera:request:<id>`), so a user's error report finds the server's log lines.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tower_http::request_id::{MakeRequestId, RequestId, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

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

async fn drop_unacceptable_request_id(mut req: Request, next: Next) -> Response {
    if let Some(v) = req.headers().get(&REQUEST_ID) {
        if !acceptable_request_id(v) {
            req.headers_mut().remove(&REQUEST_ID);
        }
    }
    next.run(req).await
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

/// Per-request bookkeeping: metrics by route template, login outcomes, the response's
/// `x-request-id`, and the problem body's `instance`.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    // the id as set by the request-id layer (a cheap clone of the header value)
    let id = req.headers().get(&REQUEST_ID).cloned();
    let route = route_label(req.extensions().get::<MatchedPath>());
    let method = method_label(req.method());
    let res = next.run(req).await;
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
    res
}

/// Wraps the finished routes with the request-id, tracing and metrics layers (outermost
/// last): untrusted ids dropped → id set → span opened → metrics and `instance`.
pub fn layer(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    router
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<Body>| {
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
                })
                // one access-log line per request, inside its span (so with its request id)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, NewRequestId))
        .layer(axum::middleware::from_fn(drop_unacceptable_request_id))
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

//! Logging set-up and the per-request span.

use std::time::Duration;

use axum::{
    body::Body,
    extract::MatchedPath,
    http::{Request, Response},
};
use tower_http::classify::ServerErrorsFailureClass;
use tracing::{Level, Span};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// Human-readable logs by default, JSON lines with `LOG_FORMAT=json`; levels from
/// `RUST_LOG`.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Text => registry.with(fmt::layer()).try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
    };
}

/// One span per request: method, matched route (not the raw path, so ids do not
/// explode cardinality), request id, and later the user id. Health probes get a DEBUG
/// span so they do not flood the logs.
pub fn make_span(req: &Request<Body>) -> Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "<unmatched>".to_owned());
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if route.starts_with("/health") {
        tracing::debug_span!("request", method = %req.method(), route, request_id, user_id = tracing::field::Empty)
    } else {
        tracing::info_span!("request", method = %req.method(), route, request_id, user_id = tracing::field::Empty)
    }
}

/// Log levels say who must act: ERROR is a real internal failure and is logged once
/// where it happens (`error.rs`, a panic); the `response` line of a 5xx is WARN, of a
/// 4xx INFO. So the failure hook does not log status codes again (the default logs every
/// 5xx — readiness 503s, `payments_not_configured` — at ERROR); it only reports a
/// response body that broke off mid-stream.
pub fn on_failure(class: ServerErrorsFailureClass, latency: Duration, _span: &Span) {
    if let ServerErrorsFailureClass::Error(error) = class {
        tracing::warn!(
            error,
            latency_ms = latency.as_secs_f64() * 1000.0,
            "response failed"
        );
    }
}

pub fn on_response<B>(res: &Response<B>, latency: Duration, span: &Span) {
    let status = res.status().as_u16();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    if span.metadata().is_some_and(|m| *m.level() == Level::DEBUG) {
        tracing::debug!(status, latency_ms, "response");
    } else if status >= 500 {
        tracing::warn!(status, latency_ms, "response");
    } else {
        tracing::info!(status, latency_ms, "response");
    }
}

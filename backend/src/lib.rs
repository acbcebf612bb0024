//! Mocheong backend: REST API, chat gateway and notification streams of the wedding
//! invitation platform. `main.rs` is a thin command line over [`build_state`],
//! [`router`] and [`run`]; the integration tests start the same [`run`] on port 0.

#![forbid(unsafe_code)]

pub mod admin;
pub mod api_doc;
pub mod auth;
pub mod chat;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod extract;
pub mod files;
pub mod gate;
pub mod guestbook;
pub mod health;
pub mod i18n;
pub mod invitations;
pub mod metrics;
pub mod pages;
pub mod pagination;
pub mod payments;
pub mod redis_conn;
pub mod server;
pub mod state;
pub mod telemetry;

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, HeaderValue, Method, StatusCode},
    response::IntoResponse,
    routing::get,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use config::Config;
use error::Error;
pub use state::{AppState, build_state};

/// Default cap for JSON bodies; upload routes raise their own limit.
const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// The API routes together with their OpenAPI description.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(api_doc::ApiDoc::openapi())
        .nest("/api/auth", auth::router())
        .nest("/api", chat::history::router())
        .nest("/api/me", pages::editors::me_router())
        .nest(
            "/api/admin",
            admin::router().merge(events::status::admin_router()),
        )
        .nest("/api/events", events::sse::router())
        .nest(
            "/api/pages",
            pages::router()
                .merge(invitations::router())
                .merge(guestbook::router())
                .merge(files::pages_router()),
        )
        .nest("/api/files", files::router())
        .nest(
            "/api/public",
            pages::public::router()
                .merge(invitations::public_router())
                .merge(guestbook::public_router()),
        )
        .nest("/api/payments", payments::router())
        .nest("/health", health::router())
}

/// The routes and the OpenAPI document describing them, completed by its rules.
fn api_parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut doc) = api().split_for_parts();
    api_doc::complete(&mut doc);
    (routes, doc)
}

/// The OpenAPI document, as served at `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_parts().1
}

/// The complete HTTP application with its layers, the Socket.IO layer (`sockets`)
/// included. CORS is the outermost layer so that browsers on another origin reach the
/// REST API and both Socket.IO transports (polling, then the websocket upgrade) alike:
/// Socket.IO requests never reach the router, so a CORS layer inside the socket layer
/// would never see them. Everything else (request id, tracing, panics, timeout, body
/// limit) wraps the routes only, as before: long polls and websockets are not requests
/// to time out or log one by one.
pub fn router(state: AppState, sockets: chat::ChatLayer) -> Router {
    let (routes, openapi) = api_parts();
    let openapi = Arc::new(openapi);
    let x_request_id = HeaderName::from_static("x-request-id");
    let cors = cors_layer(&state.cfg.cors_origins);

    routes
        .route(
            "/api/openapi.json",
            get(move || async move { Json(openapi.as_ref().clone()) }),
        )
        .route("/metrics", get(metrics::scrape))
        .fallback(|| async { Error::not_found("route") })
        .method_not_allowed_fallback(|| async {
            Error::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(
                    x_request_id.clone(),
                    MakeRequestUuid,
                ))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(telemetry::make_span)
                        .on_response(telemetry::on_response)
                        .on_failure(telemetry::on_failure),
                )
                .layer(PropagateRequestIdLayer::new(x_request_id))
                .layer(axum::middleware::from_fn(metrics::track_http))
                .layer(CatchPanicLayer::custom(
                    |panic: Box<dyn std::any::Any + Send>| {
                        let message = panic
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        // Logged here, once; the answer is the same bare 500 as any internal error.
                        tracing::error!(panic = message, "handler panicked");
                        Error::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "internal",
                            "internal server error",
                        )
                        .into_response()
                    },
                ))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::GATEWAY_TIMEOUT,
                    state.cfg.request_timeout,
                ))
                .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT)),
        )
        // Outermost, so every error answer, even a panic's, is in the asked language.
        .layer(axum::middleware::from_fn(i18n::negotiate))
        .with_state(state)
        .layer(sockets)
        .layer(cors)
}

/// Request headers a single-page app sends besides the CORS-safelisted ones.
const CORS_ALLOW_HEADERS: [&str; 5] = [
    "authorization",
    "content-type",
    "accept-language",
    "x-request-id",
    "last-event-id",
];
/// Response headers the page's JavaScript may read.
const CORS_EXPOSE_HEADERS: [&str; 4] = [
    "x-request-id",
    "retry-after",
    "content-disposition",
    "content-length",
];
/// How long a browser may cache a preflight answer (Chromium caps it at 2 hours).
const CORS_MAX_AGE: Duration = Duration::from_secs(600);

/// CORS for the configured origins (`CORS_ORIGINS`), with credentials so that cookies
/// (the SSE stream's) and `withCredentials` Socket.IO clients work. No origins: no CORS
/// headers at all, so browsers allow same-origin use only.
fn cors_layer(origins: &[String]) -> CorsLayer {
    if origins.is_empty() {
        return CorsLayer::new();
    }
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
        ])
        .allow_headers(CORS_ALLOW_HEADERS.map(HeaderName::from_static))
        .expose_headers(CORS_EXPOSE_HEADERS.map(HeaderName::from_static))
        .allow_credentials(true)
        .max_age(CORS_MAX_AGE)
}

/// Serves the application on `listener` (with the admission limits of [`server`])
/// until `shutdown` is cancelled, then lets in-flight requests finish (bounded by
/// `SHUTDOWN_GRACE_SECS`).
pub async fn run(state: AppState, listener: TcpListener) -> anyhow::Result<()> {
    let shutdown = state.shutdown.clone();
    let grace = state.cfg.shutdown_grace;
    let mut limits = state.cfg.server.clone();
    limits.max_connections = server::fit_connection_cap(limits.max_connections);
    let (socket_layer, io) = chat::start(&state);
    let app = router(state, socket_layer);
    // Sockets are long-lived: close them when shutdown starts, or graceful shutdown
    // would wait for them until the grace period ends.
    let closing = shutdown.clone();
    tokio::spawn(async move {
        closing.cancelled().await;
        io.close().await;
    });
    let server = server::serve(listener, app, limits, shutdown.clone());
    tokio::select! {
        res = server => res?,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }
    Ok(())
}

/// Cancels `token` on SIGTERM or Ctrl-C.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = term => {},
        }
        tracing::info!("shutdown signal received");
        token.cancel();
    });
}

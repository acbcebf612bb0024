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
pub mod guestbook;
pub mod health;
pub mod i18n;
pub mod invitations;
pub mod pages;
pub mod pagination;
pub mod payments;
pub mod state;
pub mod telemetry;

use std::{net::SocketAddr, sync::Arc};

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

/// The complete HTTP application with its layers.
pub fn router(state: AppState) -> Router {
    let (routes, openapi) = api_parts();
    let openapi = Arc::new(openapi);
    let x_request_id = HeaderName::from_static("x-request-id");

    let cors = if state.cfg.cors_origins.is_empty() {
        CorsLayer::new()
    } else {
        let origins: Vec<HeaderValue> = state
            .cfg
            .cors_origins
            .iter()
            .filter_map(|o| o.parse().ok())
            .collect();
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PATCH,
                Method::PUT,
                Method::DELETE,
            ])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
            ])
            .allow_credentials(true)
    };

    routes
        .route(
            "/api/openapi.json",
            get(move || async move { Json(openapi.as_ref().clone()) }),
        )
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
                        .on_response(telemetry::on_response),
                )
                .layer(PropagateRequestIdLayer::new(x_request_id))
                .layer(CatchPanicLayer::custom(|_| {
                    tracing::error!("handler panicked");
                    Error::internal(anyhow::anyhow!("panic")).into_response()
                }))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::GATEWAY_TIMEOUT,
                    state.cfg.request_timeout,
                ))
                .layer(cors)
                .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT)),
        )
        // Outermost, so every error answer, even a panic's, is in the asked language.
        .layer(axum::middleware::from_fn(i18n::negotiate))
        .with_state(state)
}

/// Serves the application on `listener` until `shutdown` is cancelled, then lets
/// in-flight requests finish (bounded by `SHUTDOWN_GRACE_SECS`).
pub async fn run(state: AppState, listener: TcpListener) -> anyhow::Result<()> {
    let shutdown = state.shutdown.clone();
    let grace = state.cfg.shutdown_grace;
    let (socket_layer, io) = chat::start(&state);
    let app = router(state).layer(socket_layer);
    // Sockets are long-lived: close them when shutdown starts, or graceful shutdown
    // would wait for them until the grace period ends.
    let closing = shutdown.clone();
    tokio::spawn(async move {
        closing.cancelled().await;
        io.close().await;
    });
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned());
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

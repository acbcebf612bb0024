//! `GET /api/events/sse` — the signed-in user's notification stream — and
//! `POST /api/events/ticket`, which lets a browser open it.

use std::{collections::HashSet, convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, header},
    response::{
        IntoResponse,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures_util::stream;
use sea_orm::EntityTrait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::hub::{Outgoing, Registration};
use crate::{
    auth::{AuthUser, authenticate},
    db::user::{self, Status},
    error::{Error, ErrorBody, Result},
    extract::Query,
    state::AppState,
};

/// The cookie a browser may carry instead of a ticket: the access JWT, set by the web
/// front end (`HttpOnly; Secure; SameSite=Lax; Path=/api/events`).
pub const ACCESS_COOKIE: &str = "mocheong_access";

/// How long an `EventSource` waits before reconnecting after a drop.
const RECONNECT_AFTER: Duration = Duration::from_secs(3);

/// Routes nested under `/api/events`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(event_stream))
        .routes(routes!(create_ticket))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// A single-use ticket from `POST /api/events/ticket` (for `EventSource`).
    pub ticket: Option<String>,
    /// Same as the `Last-Event-ID` header, for clients that cannot set it.
    pub last_event_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketOut {
    /// Pass as `?ticket=` to `GET /api/events/sse`; works once.
    pub ticket: String,
    pub expires_in_secs: u64,
}

/// A single-use ticket for opening the event stream from a browser.
#[utoipa::path(post, path = "/ticket", tag = "events", security(("bearer" = [])),
    responses((status = 201, body = TicketOut), (status = 401, body = ErrorBody)))]
async fn create_ticket(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<(axum::http::StatusCode, Json<TicketOut>)> {
    let ttl = state.cfg.sse_ticket_ttl;
    let ticket = state.notifications.tickets.issue(&user.id, ttl).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(TicketOut {
            ticket,
            expires_in_secs: ttl.as_secs(),
        }),
    ))
}

/// The caller's notifications as Server-Sent Events, on every open tab.
///
/// Named events (`rsvp.received`, `guestbook.posted`, `payment.paid`,
/// `payment.cancelled`, `file.uploaded`, `page.published`, `chat.reply.completed`)
/// with the event's ULID as `id:` and its JSON as `data:`; a keep-alive comment every
/// `SSE_KEEPALIVE_SECS`. Authenticated by `?ticket=`, `Authorization: Bearer` or the
/// `mocheong_access` cookie, in that order. A `Last-Event-ID` replays what was missed.
#[utoipa::path(get, path = "/sse", tag = "events", params(StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "id of the last event received")),
    responses((status = 200, content_type = "text/event-stream", description = "the event stream"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn event_stream(
    State(state): State<AppState>,
    Query(params): Query<StreamParams>,
    headers: HeaderMap,
) -> Result<impl IntoResponse> {
    let user_id = authenticate_stream(&state, &params, &headers).await?;
    tracing::Span::current().record("user_id", user_id.as_str());
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(params.last_event_id)
        .map(|id| id.trim().to_owned())
        .filter(|id| ulid::Ulid::from_string(id).is_ok());

    let notifications = &state.notifications;
    // Registered before the replay is read, so an event published in between is
    // either in the replay or arrives live (and the duplicate is dropped).
    let (registration, live) = notifications.hub.register(&user_id);
    let replay = match &last_event_id {
        None => Vec::new(),
        Some(last) => notifications
            .recent
            .since(&user_id, last)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "replay buffer unavailable; resuming without replay");
                Vec::new()
            }),
    };
    let events = event_stream_of(registration, live, replay, state.shutdown.clone());
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(state.cfg.sse_keepalive));
    Ok((
        [
            // Stops nginx (and similar proxies) from buffering the stream.
            (
                HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        sse,
    ))
}

struct StreamState {
    // Held for its Drop: removes the stream from the hub when the body is dropped.
    _registration: Registration,
    live: mpsc::Receiver<Arc<Outgoing>>,
    replay: std::vec::IntoIter<Arc<Outgoing>>,
    replayed: HashSet<String>,
    shutdown: CancellationToken,
    greeted: bool,
}

fn event_stream_of(
    registration: Registration,
    live: mpsc::Receiver<Arc<Outgoing>>,
    replay: Vec<Arc<Outgoing>>,
    shutdown: CancellationToken,
) -> impl futures_util::Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let state = StreamState {
        _registration: registration,
        live,
        replayed: replay.iter().map(|e| e.id.clone()).collect(),
        replay: replay.into_iter(),
        shutdown,
        greeted: false,
    };
    stream::unfold(state, |mut s| async move {
        if !s.greeted {
            s.greeted = true;
            // Sent at once so clients and proxies see the stream is open.
            let hello = Event::default().retry(RECONNECT_AFTER).comment("connected");
            return Some((Ok(hello), s));
        }
        if let Some(event) = s.replay.next() {
            return Some((Ok(to_sse(&event)), s));
        }
        loop {
            let event = tokio::select! {
                biased;
                _ = s.shutdown.cancelled() => return None,
                event = s.live.recv() => event?,
            };
            if !s.replayed.is_empty() && s.replayed.remove(&event.id) {
                continue;
            }
            return Some((Ok(to_sse(&event)), s));
        }
    })
}

fn to_sse(event: &Outgoing) -> Event {
    Event::default()
        .event(&event.event_type)
        .id(&event.id)
        .data(&event.data)
}

/// The user the stream belongs to: ticket, then bearer token, then cookie.
async fn authenticate_stream(
    state: &AppState,
    params: &StreamParams,
    headers: &HeaderMap,
) -> Result<String> {
    if let Some(ticket) = &params.ticket {
        let invalid = || {
            Error::unauthorized("the ticket is unknown, used or expired")
                .into_code("invalid_ticket")
        };
        let user_id = state
            .notifications
            .tickets
            .redeem(ticket)
            .await?
            .ok_or_else(invalid)?;
        let row = user::Entity::find_by_id(user_id)
            .one(&state.db)
            .await?
            .ok_or_else(invalid)?;
        if row.status != Status::Active {
            return Err(Error::forbidden("account is suspended").into_code("account_suspended"));
        }
        return Ok(row.id);
    }
    let token = bearer(headers).or_else(|| cookie(headers, ACCESS_COOKIE));
    let Some(token) = token else {
        return Err(Error::unauthorized(
            "missing credentials: use ?ticket=, a bearer token or the mocheong_access cookie",
        )
        .into_code("missing_token"));
    };
    Ok(authenticate(state, token).await?.id)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; mocheong_access=tok.en; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, ACCESS_COOKIE), Some("tok.en"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}

//! The one error type of the HTTP API.
//!
//! Every failure leaves as `{"error": {"code", "message", "field"?}}`. Client errors are
//! not logged as errors; an internal error is logged once, with its context, and the
//! client gets a bare 500 with no internals.

use std::borrow::Cow;

use axum::{
    Json,
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use sea_orm::{DbErr, SqlErr};
use serde::Serialize;
use utoipa::ToSchema;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    Http {
        status: StatusCode,
        code: Cow<'static, str>,
        message: Cow<'static, str>,
        field: Option<String>,
        retry_after: Option<u64>,
        /// Extra machine-readable detail, e.g. the rejected rows of a CSV import.
        details: Option<serde_json::Value>,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The wire shape of an error, for the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code for programs.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// The offending input field, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl Error {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Error::Http {
            status,
            code: code.into(),
            message: message.into(),
            field: None,
            retry_after: None,
            details: None,
        }
    }

    pub fn with_details(mut self, value: serde_json::Value) -> Self {
        if let Error::Http { details, .. } = &mut self {
            *details = Some(value);
        }
        self
    }

    pub fn with_field(mut self, name: impl Into<String>) -> Self {
        if let Error::Http { field, .. } = &mut self {
            *field = Some(name.into());
        }
        self
    }

    pub fn into_code(mut self, new_code: &'static str) -> Self {
        if let Error::Http { code, .. } = &mut self {
            *code = new_code.into();
        }
        self
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422 naming the field that failed.
    pub fn validation(field: impl Into<String>, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
        .with_field(field)
    }

    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Error::Http {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited".into(),
            message: "too many requests; try again later".into(),
            field: None,
            retry_after: Some(retry_after_secs.max(1)),
            details: None,
        }
    }

    /// 503 `busy`: this kind of work is at its limit; try again in a second.
    pub fn busy(what: &str) -> Self {
        Error::Http {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "busy".into(),
            message: format!("the server is busy with {what}; try again shortly").into(),
            field: None,
            retry_after: Some(1),
            details: None,
        }
    }

    /// 413 `payload_too_large`, the one answer for every body over its limit.
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is too large",
        )
    }

    pub fn unavailable(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Error::Internal(err.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::Http { status, .. } => *status,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        Error::Internal(anyhow::Error::new(err).context("database"))
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code, message, field, retry_after, details) = match self {
            Error::Http {
                status,
                code,
                message,
                field,
                retry_after,
                details,
            } => (status, code, message, field, retry_after, details),
            Error::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal".into(),
                    "internal server error".into(),
                    None,
                    None,
                    None,
                )
            }
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.into_owned(),
                message: message.into_owned(),
                field,
                details,
            },
        };
        let mut res = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// Turns a unique-constraint violation into a 409 naming the field; other database
/// errors stay internal.
pub trait ResultExt<T> {
    fn on_unique_violation(self, field: &'static str, message: &'static str) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T, DbErr> {
    fn on_unique_violation(self, field: &'static str, message: &'static str) -> Result<T> {
        self.map_err(|err| match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                Error::conflict("already_exists", message).with_field(field)
            }
            _ => err.into(),
        })
    }
}

impl From<JsonRejection> for Error {
    fn from(rej: JsonRejection) -> Self {
        match rej {
            JsonRejection::MissingJsonContentType(_) => Error::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ),
            JsonRejection::JsonDataError(e) => Error::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                e.body_text(),
            ),
            JsonRejection::JsonSyntaxError(e) => Error::bad_request("invalid_json", e.body_text()),
            other => Error::new(other.status(), "bad_request", other.body_text()),
        }
    }
}

impl From<PathRejection> for Error {
    fn from(rej: PathRejection) -> Self {
        Error::bad_request("invalid_path", rej.body_text())
    }
}

impl From<QueryRejection> for Error {
    fn from(rej: QueryRejection) -> Self {
        Error::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            rej.body_text(),
        )
    }
}

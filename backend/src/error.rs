//! The one error type of the HTTP API.
//!
//! Every failure leaves as `{"error": {"code", "message", "field"?, "retryAfter"?,
//! "details"?}}`; a validation error lists every invalid field in
//! `details.fields` (the first is also `field`). Messages are in the request's
//! language ([`crate::i18n`]); codes never change. Client errors are not logged as
//! errors; an internal error is logged once, with its context, and the client gets a
//! bare 500 with no internals.

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

use crate::i18n::{Lang, Text};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    Http {
        status: StatusCode,
        code: Cow<'static, str>,
        /// In English; the Korean comes from `extra.message_ko` or the catalog.
        message: Cow<'static, str>,
        field: Option<String>,
        /// Extra machine-readable detail, e.g. the rejected rows of a CSV import.
        details: Option<serde_json::Value>,
        /// What few errors have, boxed to keep `Result`s small.
        extra: Option<Box<Extra>>,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

#[derive(Debug, Default)]
pub struct Extra {
    pub message_ko: Option<Cow<'static, str>>,
    /// Every invalid field of a validation error (`field` is the first).
    pub fields: Vec<InvalidField>,
    pub retry_after: Option<u64>,
}

/// One invalid input field: where it is, a stable code, and a message for people.
#[derive(Clone, Debug)]
pub struct InvalidField {
    /// camelCase, dotted for nested fields, `[i]` for list items: `giftAccounts[0].number`.
    pub field: String,
    /// `required`, `invalid_type`, `length`, `range`, `phone`, ...
    pub code: Cow<'static, str>,
    pub message: Text,
}

/// The wire shape of an error, for the OpenAPI document.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {
    "code": "validation_failed",
    "message": "password: must be 8 to 128 characters",
    "field": "password",
    "details": {"fields": [
        {"field": "password", "code": "length", "message": "must be 8 to 128 characters"},
        {"field": "displayName", "code": "required", "message": "is required"}
    ]}
}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// Stable snake_case code for programs; the same in every language.
    pub code: String,
    /// For people, in the language `Accept-Language` asks for (`ko` or `en`; English
    /// by default).
    pub message: String,
    /// The (first) offending input field, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds to wait before trying again (429; the same as `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub retry_after: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<ErrorDetails>,
}

/// Machine-readable detail of an error; some errors add keys of their own
/// (`quota_exceeded`: `usedBytes`, `quotaBytes`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetails {
    /// Every invalid field, in a stable order (validation errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<FieldError>>,
    /// The rejected rows of a CSV import (`invalid_csv_rows`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<RowError>>,
    /// Other detail of particular errors, beside these (e.g. `usedBytes` and
    /// `quotaBytes` of `quota_exceeded`).
    #[serde(flatten)]
    #[schema(ignore)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct FieldError {
    #[schema(example = "giftAccounts[0].number")]
    pub field: String,
    #[schema(example = "account_number")]
    pub code: String,
    #[schema(example = "must be digits and dashes (5 to 30 digits)")]
    pub message: String,
}

/// One bad row of an imported CSV file (row 1 is the first data row).
#[derive(Serialize, ToSchema)]
pub struct RowError {
    #[schema(minimum = 1)]
    pub row: u64,
    pub field: Option<String>,
    pub message: String,
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
            details: None,
            extra: None,
        }
    }

    fn extra_mut(&mut self) -> Option<&mut Extra> {
        match self {
            Error::Http { extra, .. } => Some(extra.get_or_insert_with(Default::default)),
            Error::Internal(_) => None,
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

    /// The Korean message, where the catalog of [`crate::i18n`] cannot give it.
    pub fn with_korean(mut self, text: impl Into<Cow<'static, str>>) -> Self {
        if let Some(extra) = self.extra_mut() {
            extra.message_ko = Some(text.into());
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

    /// 422 `validation_failed` listing every invalid field; the message is the first
    /// one's, with the count of the others.
    pub fn invalid_fields(mut fields: Vec<InvalidField>) -> Self {
        fields.sort_by(|a, b| a.field.cmp(&b.field));
        let Some(first) = fields.first() else {
            return Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "has an invalid value",
            );
        };
        let summary = |lang| {
            let first_message = first.message.get(lang);
            match (fields.len() - 1, lang) {
                (0, _) => format!("{}: {first_message}", first.field),
                (n, Lang::En) => format!("{}: {first_message} (and {n} more)", first.field),
                (n, Lang::Ko) => format!("{}: {first_message} (외 {n}개)", first.field),
            }
        };
        let (en, ko) = (summary(Lang::En), summary(Lang::Ko));
        let field = first.field.clone();
        let mut err = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", en)
            .with_korean(ko)
            .with_field(field);
        if let Some(extra) = err.extra_mut() {
            extra.fields = fields;
        }
        err
    }

    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let secs = retry_after_secs.max(1);
        let mut err = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; try again in {secs} seconds"),
        );
        if let Some(extra) = err.extra_mut() {
            extra.retry_after = Some(secs);
        }
        err
    }

    /// 503 `busy`: this kind of work is at its limit; try again in a second.
    pub fn busy(what: &str) -> Self {
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("the server is busy with {what}; try again shortly"),
        );
        if let Some(extra) = err.extra_mut() {
            extra.retry_after = Some(1);
        }
        err
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

    /// The body this error answers with, in `lang`.
    pub fn body(&self, lang: Lang) -> ErrorBody {
        let Error::Http {
            code,
            message,
            field,
            details,
            extra,
            ..
        } = self
        else {
            return ErrorBody {
                error: ErrorDetail {
                    code: "internal".into(),
                    message: Text::en("internal server error").get(lang).into_owned(),
                    field: None,
                    retry_after: None,
                    details: None,
                },
            };
        };
        let none = Extra::default();
        let extra = extra.as_deref().unwrap_or(&none);
        let message = Text {
            en: message.clone(),
            ko: extra.message_ko.clone(),
        };
        let mut listed: Vec<FieldError> = extra
            .fields
            .iter()
            .map(|f| FieldError {
                field: f.field.clone(),
                code: f.code.clone().into_owned(),
                message: f.message.get(lang).into_owned(),
            })
            .collect();
        // A handler's single-field error is listed too, so clients read one shape.
        if listed.is_empty()
            && let Some(name) = field
        {
            listed.push(FieldError {
                field: name.clone(),
                code: code.clone().into_owned(),
                message: message.get(lang).into_owned(),
            });
        }
        let mut other = match details {
            Some(serde_json::Value::Object(map)) => map.clone(),
            _ => serde_json::Map::new(),
        };
        let rows = other.remove("rows").and_then(|rows| {
            let rows: Vec<RawRow> = serde_json::from_value(rows).ok()?;
            Some(
                rows.into_iter()
                    .map(|r| RowError {
                        row: r.row,
                        field: r.field,
                        message: Text::en(r.message).get(lang).into_owned(),
                    })
                    .collect(),
            )
        });
        let details =
            (!listed.is_empty() || rows.is_some() || !other.is_empty()).then(|| ErrorDetails {
                fields: (!listed.is_empty()).then_some(listed),
                rows,
                other,
            });
        ErrorBody {
            error: ErrorDetail {
                code: code.clone().into_owned(),
                message: message.get(lang).into_owned(),
                field: field.clone(),
                retry_after: extra.retry_after,
                details,
            },
        }
    }
}

#[derive(serde::Deserialize)]
struct RawRow {
    row: u64,
    field: Option<String>,
    message: String,
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        Error::Internal(anyhow::Error::new(err).context("database"))
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Error::Internal(err) = &self {
            tracing::error!(error = ?err, "internal error");
        }
        let body = self.body(Lang::current());
        let retry_after = body.error.retry_after;
        let mut res = (self.status(), Json(body)).into_response();
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

/// 415 for a body that is not JSON.
pub fn not_json() -> Error {
    Error::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "expected Content-Type: application/json",
    )
}

// The rejections of axum's own extractors; the app uses those of `crate::extract`,
// which name the field, but these keep any other use in the same shape.
impl From<JsonRejection> for Error {
    fn from(rej: JsonRejection) -> Self {
        match rej {
            JsonRejection::MissingJsonContentType(_) => not_json(),
            JsonRejection::JsonDataError(_) => Error::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "has an invalid value",
            ),
            JsonRejection::JsonSyntaxError(_) => {
                Error::bad_request("invalid_json", "the request body is not valid JSON")
            }
            other => Error::new(other.status(), "bad_request", other.body_text()),
        }
    }
}

impl From<PathRejection> for Error {
    fn from(_: PathRejection) -> Self {
        Error::bad_request("invalid_path", "the path is not valid")
    }
}

impl From<QueryRejection> for Error {
    fn from(_: QueryRejection) -> Self {
        Error::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "has an invalid value",
        )
    }
}

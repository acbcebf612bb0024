//! The OpenAPI document. The route annotations say what is particular to each route
//! (its body, its success answers, the errors only it gives); [`complete`] adds what
//! holds for every route by rule, so 80 handlers do not each repeat it: unique
//! operation ids, the error answers an extractor or layer can give (401 on
//! authenticated routes, 415/422 on body routes, ...), and response descriptions.

use serde_json::json;
use utoipa::{
    Modify, OpenApi,
    openapi::{
        self, ContentBuilder, HttpMethod, Ref, RefOr, ResponseBuilder,
        header::HeaderBuilder,
        path::{Operation, ParameterIn},
        schema::{ObjectBuilder, Type},
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use crate::error;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Mocheong API",
        description = "Wedding invitation platform backend. Conventions (naming, errors, \
            languages, lists): docs/api.md."
    ),
    modifiers(&BearerAuth),
    components(schemas(error::ErrorBody))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
    }
}

/// Applies the document-wide rules to the merged document of every router.
pub fn complete(doc: &mut openapi::OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    for answer in ErrorAnswer::ALL {
        components
            .responses
            .insert(answer.name().into(), RefOr::T(answer.response()));
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        for (_, op) in operations_mut(item) {
            unique_operation_id(path, op);
            add_error_answers(path, op);
            describe_answers(op);
        }
    }
}

/// The error answers common to many routes, each a shared response in
/// `components.responses`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ErrorAnswer {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    RateLimited,
    Internal,
}

impl ErrorAnswer {
    const ALL: [ErrorAnswer; 10] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::Conflict,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::ValidationFailed,
        Self::RateLimited,
        Self::Internal,
    ];

    fn status(self) -> &'static str {
        match self {
            Self::BadRequest => "400",
            Self::Unauthorized => "401",
            Self::Forbidden => "403",
            Self::NotFound => "404",
            Self::Conflict => "409",
            Self::PayloadTooLarge => "413",
            Self::UnsupportedMediaType => "415",
            Self::ValidationFailed => "422",
            Self::RateLimited => "429",
            Self::Internal => "500",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::BadRequest => "BadRequest",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "NotFound",
            Self::Conflict => "Conflict",
            Self::PayloadTooLarge => "PayloadTooLarge",
            Self::UnsupportedMediaType => "UnsupportedMediaType",
            Self::ValidationFailed => "ValidationFailed",
            Self::RateLimited => "RateLimited",
            Self::Internal => "Internal",
        }
    }

    /// `(description, example code, example message)`.
    fn text(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::BadRequest => (
                "Malformed request: the body is not JSON (`invalid_json`), or a path \
                 parameter is malformed (`invalid_path`).",
                "invalid_json",
                "the request body is not valid JSON",
            ),
            Self::Unauthorized => (
                "No valid access token: `missing_token`, `invalid_token`, `token_expired` \
                 (refresh and retry).",
                "token_expired",
                "access token has expired",
            ),
            Self::Forbidden => (
                "Authenticated but not allowed: `forbidden` (e.g. an owner-only action, \
                 the admin role), `account_suspended`, or the route's own code.",
                "forbidden",
                "only the page's owner may do this",
            ),
            Self::NotFound => (
                "`not_found`: the resource does not exist, or is not visible to the caller.",
                "not_found",
                "page not found",
            ),
            Self::Conflict => (
                "The request conflicts with the current state, e.g. `already_exists` \
                 (with `field`).",
                "already_exists",
                "this page address is already taken",
            ),
            Self::PayloadTooLarge => (
                "`payload_too_large`: the body is over the limit (1 MiB for JSON).",
                "payload_too_large",
                "request body is too large",
            ),
            Self::UnsupportedMediaType => (
                "`unsupported_media_type`: the body's Content-Type is not the one the \
                 route takes.",
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ),
            Self::ValidationFailed => (
                "`validation_failed`: a missing, mistyped or invalid field or query \
                 parameter. Every one is listed in `details.fields`; the first is also \
                 `field`.",
                "validation_failed",
                "perPage: must be between 1 and 100",
            ),
            Self::RateLimited => (
                "`rate_limited`: too many requests from this client; wait `retryAfter` \
                 seconds (also the `Retry-After` header).",
                "rate_limited",
                "too many requests; try again in 12 seconds",
            ),
            Self::Internal => (
                "`internal`: a bug or an outage on our side; the message has no detail.",
                "internal",
                "internal server error",
            ),
        }
    }

    fn response(self) -> openapi::Response {
        let (description, code, message) = self.text();
        let mut example = json!({"error": {"code": code, "message": message}});
        match self {
            Self::ValidationFailed => {
                example["error"]["field"] = json!("perPage");
                example["error"]["details"] = json!({"fields": [
                    {"field": "perPage", "code": "range", "message": "must be between 1 and 100"}
                ]});
            }
            Self::RateLimited => example["error"]["retryAfter"] = json!(12),
            _ => {}
        }
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .example(Some(example))
            .build();
        let mut response = ResponseBuilder::new()
            .description(description)
            .content("application/json", content);
        if self == Self::RateLimited {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1)),
                    )
                    .description(Some("Seconds to wait before trying again."))
                    .build(),
            );
        }
        response.build()
    }
}

/// Adds the error answers that the extractors and layers of a route can give, judged
/// from what the route takes: a token, path parameters, a query, a body. An answer
/// the route documents with a description of its own is kept.
fn add_error_answers(path: &str, op: &mut Operation) {
    let mut answers = vec![ErrorAnswer::Internal];
    let secured = op.security.as_ref().is_some_and(|reqs| {
        reqs.iter().any(|r| {
            serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_object().map(|o| !o.is_empty()))
                .unwrap_or(false)
        })
    });
    if secured {
        // The token extractor answers 401, and 403 for a suspended account.
        answers.extend([ErrorAnswer::Unauthorized, ErrorAnswer::Forbidden]);
    }
    let params = op.parameters.as_deref().unwrap_or_default();
    if params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path))
    {
        answers.push(ErrorAnswer::NotFound);
    }
    if params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Query))
    {
        answers.push(ErrorAnswer::ValidationFailed);
    }
    if let Some(body) = &op.request_body {
        answers.extend([
            ErrorAnswer::PayloadTooLarge,
            ErrorAnswer::UnsupportedMediaType,
            ErrorAnswer::ValidationFailed,
        ]);
        if body.content.contains_key("application/json") {
            answers.push(ErrorAnswer::BadRequest);
        }
    }
    if rate_limited(path) {
        answers.push(ErrorAnswer::RateLimited);
    }
    for answer in answers {
        let entry = op.responses.responses.entry(answer.status().into());
        let shared = RefOr::Ref(Ref::new(format!(
            "#/components/responses/{}",
            answer.name()
        )));
        match entry {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(shared);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                if matches!(o.get(), RefOr::T(r) if r.description.is_empty()) {
                    o.insert(shared);
                }
            }
        }
    }
    // Explicit error answers without words get the shared one of their status.
    for answer in ErrorAnswer::ALL {
        if let Some(r) = op.responses.responses.get_mut(answer.status())
            && matches!(r, RefOr::T(resp) if resp.description.is_empty())
        {
            *r = RefOr::Ref(Ref::new(format!(
                "#/components/responses/{}",
                answer.name()
            )));
        }
    }
}

/// Routes behind a per-IP or per-account limiter (`auth::rate_limit`).
fn rate_limited(path: &str) -> bool {
    path.starts_with("/api/public/") || matches!(path, "/api/auth/login" | "/api/auth/register")
}

/// Every answer has a description: the route's own, else its status's meaning.
fn describe_answers(op: &mut Operation) {
    for (status, answer) in op.responses.responses.iter_mut() {
        if let RefOr::T(r) = answer
            && r.description.is_empty()
        {
            r.description = match status.as_str() {
                "200" => "OK",
                "201" => "Created",
                "202" => "Accepted: the work goes on in the background",
                "204" => "Done; no content",
                "302" | "303" | "307" => "Redirect to `Location`",
                "304" => "Not modified",
                "502" => "An upstream provider refused or failed the request",
                "503" => "A dependency is missing or down; try again later",
                _ => "Error (see `error.code`)",
            }
            .into();
        }
    }
}

fn operations_mut(item: &mut openapi::PathItem) -> Vec<(HttpMethod, &mut Operation)> {
    [
        (HttpMethod::Get, item.get.as_mut()),
        (HttpMethod::Put, item.put.as_mut()),
        (HttpMethod::Post, item.post.as_mut()),
        (HttpMethod::Delete, item.delete.as_mut()),
        (HttpMethod::Patch, item.patch.as_mut()),
        (HttpMethod::Head, item.head.as_mut()),
        (HttpMethod::Options, item.options.as_mut()),
        (HttpMethod::Trace, item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}

/// Handler names repeat between the user and the admin API (`list_pages` twice):
/// admin operations are `admin_<handler>`, so generated clients get one name each.
fn unique_operation_id(path: &str, op: &mut Operation) {
    if path.starts_with("/api/admin/")
        && let Some(id) = op.operation_id.as_mut()
        && !id.starts_with("admin_")
    {
        id.insert_str(0, "admin_");
    }
}

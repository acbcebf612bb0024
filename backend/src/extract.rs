//! Request extractors whose rejections are the app's [`Error`], so that every bad
//! request is answered with the same JSON shape.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::{
    body::Bytes,
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request},
    http::{StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use crate::{error::Error, state::AppState};

/// `Path` with JSON rejections.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct Path<T>(pub T);

/// `Query` with JSON rejections (422).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct Query<T>(pub T);

/// A JSON body that is parsed and then validated with `validator`.
/// Malformed JSON is 400; a missing, mistyped or invalid field is 422 naming the field
/// (camelCase, dotted for nested fields).
pub struct ValidatedJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidatedJson<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let value: T = parse_json_body(req, state).await?;
        value.validate().map_err(validation_error)?;
        Ok(ValidatedJson(value))
    }
}

/// A raw body (webhook signatures, CSV) whose rejections are JSON too: over the body
/// limit it is the same 413 `payload_too_large` as everywhere else.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(body_rejection)
    }
}

fn body_rejection(rej: axum::extract::rejection::BytesRejection) -> Error {
    if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::payload_too_large()
    } else {
        Error::bad_request("invalid_body", rej.body_text())
    }
}

/// Reads a JSON body with precise errors; shared by extractors that validate later.
pub async fn parse_json_body<S, T>(req: Request, state: &S) -> Result<T, Error>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        });
    if !is_json {
        return Err(Error::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ));
    }
    let bytes = Bytes::from_request(req, state)
        .await
        .map_err(body_rejection)?;
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                // serde names a missing field in the message; its path is the parent.
                let field = match message
                    .strip_prefix("missing field `")
                    .and_then(|r| r.split('`').next())
                {
                    Some(missing) if path == "." => missing.to_owned(),
                    Some(missing) => format!("{path}.{missing}"),
                    None => path,
                };
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                Error::validation(field, message)
            }
            _ => Error::bad_request("invalid_json", format!("malformed JSON: {inner}")),
        }
    })
}

/// Turns `validator` errors into one 422 naming the first failing field (sorted, so the
/// answer is stable) and listing the others in the message.
pub fn validation_error(errors: ValidationErrors) -> Error {
    let mut found = Vec::new();
    collect(&errors, String::new(), &mut found);
    found.sort();
    let (field, message) = found
        .first()
        .cloned()
        .unwrap_or_else(|| (String::new(), "invalid input".into()));
    let message = if found.len() > 1 {
        let others: Vec<_> = found[1..].iter().map(|(f, _)| f.as_str()).collect();
        format!("{field}: {message} (also invalid: {})", others.join(", "))
    } else {
        format!("{field}: {message}")
    };
    Error::validation(field, message)
}

fn collect(errors: &ValidationErrors, prefix: String, out: &mut Vec<(String, String)>) {
    for (name, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            camel_case(name)
        } else {
            format!("{prefix}.{}", camel_case(name))
        };
        match kind {
            ValidationErrorsKind::Field(errs) => {
                let msg = errs
                    .first()
                    .map(|e| {
                        e.message
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_else(|| e.code.to_string())
                    })
                    .unwrap_or_default();
                out.push((path, msg));
            }
            ValidationErrorsKind::Struct(inner) => collect(inner, path, out),
            ValidationErrorsKind::List(items) => {
                for (i, inner) in items {
                    collect(inner, format!("{path}[{i}]"), out);
                }
            }
        }
    }
}

/// Rust field names are snake_case; the JSON the client sent is camelCase.
fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The client's IP address: the socket peer, or, behind a trusted proxy
/// (`TRUST_PROXY=true`), the address that proxy appended to `X-Forwarded-For`.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        Ok(ClientIp(client_ip(parts, state.cfg.trust_proxy)))
    }
}

pub fn client_ip(parts: &Parts, trust_proxy: bool) -> IpAddr {
    if trust_proxy
        && let Some(ip) = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return ip;
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

#[cfg(test)]
mod tests {
    use super::camel_case;

    #[test]
    fn snake_to_camel() {
        assert_eq!(camel_case("display_name"), "displayName");
        assert_eq!(camel_case("email"), "email");
    }
}

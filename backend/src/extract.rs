//! Request extractors whose rejections are the app's [`Error`], so that every bad
//! request is answered with the same JSON shape.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::{
    body::Bytes,
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request},
    http::{StatusCode, Uri, header, request::Parts},
};
use serde::de::{DeserializeOwned, IgnoredAny};
use validator::{ValidationError, ValidationErrors, ValidationErrorsKind};

use crate::{
    error::{Error, InvalidField, not_json},
    i18n::Text,
    state::AppState,
};

/// `Path` with JSON rejections.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct Path<T>(pub T);

/// A query string, parsed field by field: a bad value is a 422 naming its parameter.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        Self::try_from_uri(&parts.uri)
    }
}

impl<T: DeserializeOwned> Query<T> {
    /// Parses the query string of `uri` (for extractors built on this one).
    pub fn try_from_uri(uri: &Uri) -> Result<Self, Error> {
        let query = uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|err| {
                let path = err.path().to_string();
                Error::invalid_fields(vec![serde_field(path, &err.into_inner().to_string())])
            })
    }
}

/// A JSON body that is parsed and then validated with `validator`.
/// Malformed JSON is 400; a missing, mistyped or invalid field is 422 naming every
/// such field (camelCase, dotted for nested fields).
pub struct ValidatedJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidatedJson<T>
where
    T: DeserializeOwned + validator::Validate,
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
        return Err(not_json());
    }
    let bytes = Bytes::from_request(req, state)
        .await
        .map_err(body_rejection)?;
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        // Only a body that is not JSON at all is malformed (400); well-formed JSON
        // of the wrong shape is a field error (422), however deep the field.
        if serde_json::from_slice::<IgnoredAny>(&bytes).is_err() {
            return Error::bad_request("invalid_json", "the request body is not valid JSON");
        }
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        let message = message.split(" at line ").next().unwrap_or_default();
        Error::invalid_fields(vec![serde_field(path, message)])
    })
}

/// A serde error as an invalid field with a message for people (never serde's
/// wording, which names Rust types).
fn serde_field(path: String, message: &str) -> InvalidField {
    // serde names a missing field in the message; its path is the parent.
    if let Some(missing) = message
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
    {
        let field = if path == "." || path.is_empty() {
            missing.to_owned()
        } else {
            format!("{path}.{missing}")
        };
        return field_error(field, "required", "is required");
    }
    let field = if path == "." { String::new() } else { path };
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let choices: Vec<&str> = rest
            .split_once("expected ")
            .map(|(_, e)| e.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        return InvalidField {
            field,
            code: "invalid_choice".into(),
            message: Text::en(format!("must be one of: {}", choices.join(", "))),
        };
    }
    let expected = message
        .split_once(", expected ")
        .map(|(_, e)| e)
        .unwrap_or(message);
    let (code, text) = match expected {
        e if e.contains("date") || CHRONO_ERRORS.contains(&e) => (
            "invalid_datetime",
            "must be a date and time with its UTC offset, e.g. 2027-05-15T12:30:00+09:00",
        ),
        e if e.starts_with('u') && e[1..].parse::<u8>().is_ok() => {
            ("invalid_type", "must be a whole number of at least 0")
        }
        e if e.starts_with('i') && e[1..].parse::<u8>().is_ok()
            || e.contains("integer")
            || INT_ERRORS.contains(&e) =>
        {
            ("invalid_type", "must be a whole number")
        }
        e if e.starts_with('f') && e[1..].parse::<u8>().is_ok()
            || e.contains("float")
            || e.contains("number") =>
        {
            ("invalid_type", "must be a number")
        }
        e if e.contains("bool") || e.contains("`true` or `false`") => {
            ("invalid_type", "must be true or false")
        }
        e if e.contains("string") || e.contains("char") => ("invalid_type", "must be text"),
        e if e.contains("sequence") || e.contains("tuple") || e.contains("array") => {
            ("invalid_type", "must be a list")
        }
        e if e.contains("struct") || e.contains("map") => ("invalid_type", "must be an object"),
        _ => ("invalid_value", "has an invalid value"),
    };
    field_error(field, code, text)
}

fn field_error(field: String, code: &'static str, message: &'static str) -> InvalidField {
    InvalidField {
        field,
        code: code.into(),
        message: Text::en(message),
    }
}

/// chrono's parse errors (serde passes them on as the whole message).
const CHRONO_ERRORS: &[&str] = &[
    "premature end of input",
    "input contains invalid characters",
    "input is out of range",
    "trailing input",
    "input is not enough for unique date and time",
    "no possible date and time matching input",
    "bad or unsupported format string",
];

/// The standard library's integer parse errors (query strings).
const INT_ERRORS: &[&str] = &[
    "invalid digit found in string",
    "cannot parse integer from empty string",
    "number too large to fit in target type",
    "number too small to fit in target type",
];

/// Turns `validator` errors into one 422 listing every failing field (sorted, so the
/// answer is stable); the first is also `field`.
pub fn validation_error(errors: ValidationErrors) -> Error {
    let mut found = Vec::new();
    collect(&errors, String::new(), &mut found);
    Error::invalid_fields(found)
}

fn collect(errors: &ValidationErrors, prefix: String, out: &mut Vec<InvalidField>) {
    for (name, kind) in errors.errors() {
        // A whole-object rule (`#[validate(schema(...))]`) names its field in a param.
        if let ("__all__", ValidationErrorsKind::Field(errs)) = (name.as_ref(), kind) {
            for e in errs {
                let field = e.params.get("field").and_then(|f| f.as_str());
                let path = match (prefix.is_empty(), field) {
                    (true, Some(f)) => f.to_owned(),
                    (false, Some(f)) => format!("{prefix}.{f}"),
                    (_, None) => prefix.clone(),
                };
                out.push(InvalidField {
                    field: path,
                    code: e.code.clone(),
                    message: field_message(e),
                });
            }
            continue;
        }
        let path = if prefix.is_empty() {
            camel_case(name)
        } else {
            format!("{prefix}.{}", camel_case(name))
        };
        match kind {
            ValidationErrorsKind::Field(errs) => {
                if let Some(e) = errs.first() {
                    out.push(InvalidField {
                        field: path,
                        code: e.code.clone(),
                        message: field_message(e),
                    });
                }
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

/// A validator error for people: the validator's own message where the code gave one,
/// else one made from its code and bounds (`length` of a text or of a list, `range`).
fn field_message(e: &ValidationError) -> Text {
    if let Some(m) = &e.message {
        return Text::en(m.clone());
    }
    let param = |k: &str| e.params.get(k).map(|v| v.to_string());
    let is_list = e.params.get("value").is_some_and(|v| v.is_array());
    let en = match (e.code.as_ref(), param("min"), param("max"), param("equal")) {
        ("length", _, _, Some(n)) => format!("must be exactly {n} characters"),
        ("length", Some(a), Some(b), _) if is_list => format!("must have {a} to {b} items"),
        ("length", None, Some(b), _) if is_list => format!("must have at most {b} items"),
        ("length", Some(a), None, _) if is_list => format!("must have at least {a} items"),
        ("length", Some(a), Some(b), _) => format!("must be {a} to {b} characters"),
        ("length", None, Some(b), _) => format!("must be at most {b} characters"),
        ("length", Some(a), None, _) => format!("must be at least {a} characters"),
        ("range", Some(a), Some(b), _) => format!("must be between {a} and {b}"),
        ("range", Some(a), None, _) => format!("must be at least {a}"),
        ("range", None, Some(b), _) => format!("must be at most {b}"),
        ("email", ..) => "must be a valid email address".into(),
        ("url", ..) => "must be a valid URL".into(),
        _ => "has an invalid value".into(),
    };
    Text::en(en)
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

//! Optimistic concurrency for page edits. Every content edit raises `pages.version`;
//! the page is served with `ETag: "<version>"`, and a save that sends `If-Match` (or
//! `version` in the body) naming an older version is refused with 412, so two editors
//! saving at once cannot silently overwrite each other. A save with neither is applied
//! as before (last write wins), so old clients keep working.

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
};
use serde_json::json;

use crate::error::Error;

/// The strong entity tag of a page version.
pub fn etag(version: i32) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits and quotes")
}

/// `[(ETag, …)]` for a response.
pub fn etag_header(version: i32) -> [(header::HeaderName, HeaderValue); 1] {
    [(header::ETAG, etag(version))]
}

/// The request's `If-Match` header, if any.
pub struct IfMatch(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        Ok(IfMatch(if_match(&parts.headers)))
    }
}

fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .map(|v| v.to_str().unwrap_or("").to_owned())
}

/// Refuses the save unless the caller's precondition names the current version.
/// `If-Match` uses the strong comparison of RFC 9110: `*` or a list of tags, one of
/// which must be exactly `"<current>"` (a weak `W/` tag never matches).
pub fn check(current: i32, if_match: Option<&str>, body_version: Option<i32>) -> Result<(), Error> {
    let header_ok = if_match.is_none_or(|value| {
        value
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag == format!("\"{current}\""))
    });
    let body_ok = body_version.is_none_or(|v| v == current);
    if header_ok && body_ok {
        Ok(())
    } else {
        Err(Error::new(
            StatusCode::PRECONDITION_FAILED,
            "stale_version",
            format!(
                "the page was changed by someone else (now version {current}); reload it and apply your change again"
            ),
        )
        .with_details(json!({"currentVersion": current})))
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn preconditions() {
        assert!(check(3, None, None).is_ok());
        assert!(check(3, Some("\"3\""), None).is_ok());
        assert!(check(3, Some("\"1\", \"3\""), None).is_ok());
        assert!(check(3, Some("*"), None).is_ok());
        assert!(check(3, None, Some(3)).is_ok());
        assert!(check(3, Some("\"2\""), None).is_err());
        assert!(check(3, Some("W/\"3\""), None).is_err());
        assert!(check(3, Some("garbage"), None).is_err());
        assert!(check(3, None, Some(2)).is_err());
        assert!(check(3, Some("\"3\""), Some(2)).is_err());
    }
}

//! Socket.IO keeps the HTTP request that opened a socket (its `Parts`) for the
//! socket's whole life. hyper parses header values and the URI as zero-copy slices of
//! its connection read buffer, so those few hundred bytes of headers would keep the
//! whole buffer (up to 16 KiB) alive per socket — the largest single cost of an idle
//! socket in a heap profile (docs/benchmarks.md "Memory per socket"). This layer,
//! placed in front of socketioxide, gives Socket.IO requests owned copies, so the
//! buffer is freed once the WebSocket upgrade is done.
//!
//! Only the headers Engine.IO reads are kept ([`KEPT_HEADERS`]): nothing reads the
//! others once the request reached socketioxide (CORS, request ids and tracing run in
//! the layers outside), and a browser sends a dozen of them, kept per socket.

use std::task::{Context, Poll};

use axum::{
    extract::OriginalUri,
    http::{HeaderMap, HeaderName, HeaderValue, Request, Uri, header},
};
use tower::{Layer, Service};

/// Socketioxide's default request path.
const SOCKET_IO_PATH: &str = "/socket.io";

/// What Engine.IO reads from a request: the WebSocket key (upgrade answer) and the
/// polling body's content type; `accept-language` too, for answers in the socket's
/// language.
const KEPT_HEADERS: [HeaderName; 3] = [
    header::SEC_WEBSOCKET_KEY,
    header::CONTENT_TYPE,
    header::ACCEPT_LANGUAGE,
];

#[derive(Clone, Copy, Debug, Default)]
pub struct OwnedPartsLayer;

impl<S> Layer<S> for OwnedPartsLayer {
    type Service = OwnedParts<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OwnedParts(inner)
    }
}

#[derive(Clone, Debug)]
pub struct OwnedParts<S>(S);

impl<S, B> Service<Request<B>> for OwnedParts<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if req.uri().path().starts_with(SOCKET_IO_PATH) {
            own_parts(&mut req);
        }
        self.0.call(req)
    }
}

/// Replaces the headers Engine.IO reads and the URI by copies that share no memory
/// with the read buffer; drops the other headers.
fn own_parts<B>(req: &mut Request<B>) {
    let shared = std::mem::take(req.headers_mut());
    let kept = |name: &HeaderName| KEPT_HEADERS.contains(name);
    let mut owned = HeaderMap::with_capacity(shared.keys().filter(|n| kept(n)).count());
    for (name, value) in shared.iter().filter(|(name, _)| kept(name)) {
        // `from_bytes` copies; a value that was valid stays valid. Standard names
        // are static already.
        if let Ok(mut copy) = HeaderValue::from_bytes(value.as_bytes()) {
            copy.set_sensitive(value.is_sensitive());
            owned.append(name.clone(), copy);
        }
    }
    *req.headers_mut() = owned;
    if let Ok(uri) = Uri::try_from(req.uri().to_string()) {
        *req.uri_mut() = uri;
    }
    // axum's router keeps a clone of the URI (a slice of the same buffer) in the
    // extensions, which the socket keeps too.
    let original = req
        .extensions()
        .get::<OriginalUri>()
        .map(|o| o.0.to_string());
    if let Some(Ok(uri)) = original.map(Uri::try_from) {
        req.extensions_mut().insert(OriginalUri(uri));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_io_requests_keep_the_headers_engine_io_reads_and_the_uri() {
        let mut req = Request::builder()
            .uri("/socket.io/?EIO=4&transport=websocket")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("content-type", "text/plain;charset=UTF-8")
            .header("accept-language", "ko")
            .header("accept-language", "en")
            .header("user-agent", "a browser")
            .header("cookie", "a=b")
            .body(())
            .unwrap();
        own_parts(&mut req);
        assert_eq!(req.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(
            req.headers()["sec-websocket-key"],
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
        assert_eq!(req.headers()["content-type"], "text/plain;charset=UTF-8");
        let languages: Vec<_> = req.headers().get_all("accept-language").iter().collect();
        assert_eq!(languages, ["ko", "en"]);
        assert_eq!(req.headers().len(), 4, "{:?}", req.headers());
    }
}

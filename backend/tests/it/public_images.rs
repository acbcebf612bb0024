//! The pictures of a published page have stable links that every cache can keep:
//! the same URL on every read, `Cache-Control: public, max-age=31536000, immutable`,
//! `ETag` + `If-None-Match` → 304, `Range` → 206, `HEAD`; and they stop being served
//! when the page is unpublished. On both storage backends.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    files::{BOTH, jpeg, spawn, upload},
    pages::published_page,
};

#[tokio::test]
async fn published_pictures_have_stable_immutable_links() {
    for backend in BOTH {
        let app = spawn(
            backend,
            &[("FILES_PUBLIC_BASE_URL", "https://api.example.com")],
        )
        .await;
        let owner = app.register().await;
        let page = published_page(&app, &owner).await;
        let (id, slug) = (page["id"].as_str().unwrap(), page["slug"].as_str().unwrap());
        let file = upload(&app, &owner, "gallery", "a.jpg", "image/jpeg", jpeg()).await;
        let file_id = file["id"].as_str().unwrap();
        app.call(
            reqwest::Method::PUT,
            &format!("/api/pages/{id}/gallery"),
            Some(&owner.access),
            Some(json!({"fileIds": [file_id]})),
            200,
        )
        .await;

        let first = app
            .get(&format!("/api/public/pages/{slug}"), None, 200)
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let second = app
            .get(&format!("/api/public/pages/{slug}"), None, 200)
            .await;
        let url = first["gallery"][0]["url"].as_str().unwrap().to_owned();
        let thumb = first["gallery"][0]["thumbUrl"].as_str().unwrap().to_owned();
        assert_eq!(
            second["gallery"][0]["url"], url,
            "{backend:?}: the same link on every read"
        );
        assert_eq!(second["gallery"][0]["thumbUrl"], thumb);
        assert!(
            url.starts_with("https://api.example.com/api/public/images/"),
            "absolute: {url}"
        );
        assert!(!url.contains("sig=") && !url.contains("exp="), "{url}");

        // Served by this server: swap the configured origin for the test's.
        let local = |u: &str| u.replace("https://api.example.com", &app.base);
        let full = app.http.get(local(&url)).send().await.unwrap();
        assert_eq!(full.status(), 200);
        let headers = full.headers().clone();
        assert_eq!(
            headers["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(headers["accept-ranges"], "bytes");
        assert!(headers.contains_key("last-modified"));
        let etag = headers["etag"].to_str().unwrap().to_owned();
        let bytes = full.bytes().await.unwrap();
        assert_eq!(bytes.as_ref(), jpeg().as_slice());

        let cached = app
            .http
            .get(local(&url))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
        assert!(cached.bytes().await.unwrap().is_empty());

        let part = app
            .http
            .get(local(&url))
            .header("range", "bytes=10-19")
            .send()
            .await
            .unwrap();
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            part.headers()["content-range"],
            format!("bytes 10-19/{}", bytes.len())
        );
        assert_eq!(part.bytes().await.unwrap().as_ref(), &bytes[10..20]);
        let tail = app
            .http
            .get(local(&url))
            .header("range", "bytes=-5")
            .send()
            .await
            .unwrap();
        assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            tail.bytes().await.unwrap().as_ref(),
            &bytes[bytes.len() - 5..]
        );
        let beyond = app
            .http
            .get(local(&url))
            .header("range", format!("bytes={}-", bytes.len()))
            .send()
            .await
            .unwrap();
        assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(
            beyond.headers()["content-range"],
            format!("bytes */{}", bytes.len()).as_str()
        );
        let refused: serde_json::Value = beyond.json().await.unwrap();
        assert_eq!(refused["error"]["code"], "range_not_satisfiable");

        let head = app.http.head(local(&url)).send().await.unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()["content-length"], bytes.len().to_string());
        assert_eq!(head.headers()["etag"], etag.as_str());
        assert!(head.bytes().await.unwrap().is_empty());

        let small = app.http.get(local(&thumb)).send().await.unwrap();
        assert_eq!(small.status(), 200);
        assert_eq!(small.headers()["content-type"], "image/jpeg");
        assert_ne!(small.headers()["etag"].to_str().unwrap(), etag);
        assert_eq!(
            image::load_from_memory(&small.bytes().await.unwrap())
                .unwrap()
                .width(),
            480
        );

        // A wrong content tag, and the same link once the page is unpublished: 404.
        let mut forged = local(&url);
        forged.replace_range(forged.len() - 4.., "0000");
        assert_eq!(app.http.get(&forged).send().await.unwrap().status(), 404);
        app.post(
            &format!("/api/pages/{id}/unpublish"),
            Some(&owner.access),
            json!({}),
            200,
        )
        .await;
        assert_eq!(
            app.http.get(local(&url)).send().await.unwrap().status(),
            404
        );
    }
}

#[tokio::test]
async fn the_cover_is_shown_on_the_page_and_in_the_share_preview() {
    let app = spawn(
        crate::files::Backend::Local,
        &[("FILES_PUBLIC_BASE_URL", "https://api.example.com")],
    )
    .await;
    let owner = app.register().await;
    let stranger = app.register().await;
    let page = published_page(&app, &owner).await;
    let (id, slug) = (page["id"].as_str().unwrap(), page["slug"].as_str().unwrap());
    let cover = upload(&app, &owner, "cover", "c.jpg", "image/jpeg", jpeg()).await;
    let cover_id = cover["id"].as_str().unwrap();
    let theirs = upload(&app, &stranger, "cover", "x.jpg", "image/jpeg", jpeg()).await;

    let url = format!("/api/pages/{id}/cover");
    app.call(
        reqwest::Method::PUT,
        &url,
        Some(&owner.access),
        Some(json!({"fileId": theirs["id"]})),
        404,
    )
    .await;
    let set = app
        .call(
            reqwest::Method::PUT,
            &url,
            Some(&owner.access),
            Some(json!({"fileId": cover_id})),
            200,
        )
        .await;
    assert_eq!(set["coverFileId"], cover_id);
    let owner_view = app
        .get(&format!("/api/pages/{id}"), Some(&owner.access), 200)
        .await;
    assert_eq!(owner_view["coverFileId"], cover_id);

    let public = app
        .get(&format!("/api/public/pages/{slug}"), None, 200)
        .await;
    let cover_url = public["cover"]["url"].as_str().unwrap();
    assert!(cover_url.starts_with("https://api.example.com/api/public/images/"));
    let share = app
        .get(&format!("/api/public/pages/{slug}/share"), None, 200)
        .await;
    assert_eq!(share["imageUrl"], cover_url);
    let served = app
        .http
        .get(cover_url.replace("https://api.example.com", &app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);

    app.call(
        reqwest::Method::PUT,
        &url,
        Some(&owner.access),
        Some(json!({"fileId": null})),
        200,
    )
    .await;
    let public = app
        .get(&format!("/api/public/pages/{slug}"), None, 200)
        .await;
    assert!(public["cover"].is_null());
}

//! File uploads, direct uploads, links, deletion, gallery and quota, against both
//! storage backends: a local directory, and a real S3-compatible server (moto in
//! server mode, `TEST_S3_ENDPOINT`, default `http://127.0.0.1:5055`) with a bucket
//! unique to this test process.

use std::{sync::OnceLock, time::Duration};

use backend::{
    db::file::{self, FileStatus},
    files::{service::staging_key, signing::UrlSigner, sweeper::sweep_once},
};
use image::{ImageBuffer, ImageFormat, Rgb};
use reqwest::{
    Method,
    multipart::{Form, Part},
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    common::{Session, TestApp, error_code},
    pages::{create_page, published_page},
};

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Backend {
    Local,
    S3,
}

pub(crate) const BOTH: [Backend; 2] = [Backend::Local, Backend::S3];

fn s3_endpoint() -> String {
    std::env::var("TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:5055".into())
}

/// One bucket per test process, so runs never see each other's objects.
fn bucket() -> &'static str {
    static BUCKET: OnceLock<String> = OnceLock::new();
    BUCKET.get_or_init(|| {
        format!(
            "mocheong-it-{}",
            ulid::Ulid::new().to_string().to_lowercase()
        )
    })
}

pub(crate) async fn spawn(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let local_dir = std::env::temp_dir()
        .join(format!("mocheong-files-{}", ulid::Ulid::new()))
        .display()
        .to_string();
    let endpoint = s3_endpoint();
    let mut vars: Vec<(&str, &str)> = match backend {
        Backend::Local => vec![
            ("STORAGE_BACKEND", "local"),
            ("FILES_LOCAL_DIR", &local_dir),
        ],
        Backend::S3 => vec![
            ("STORAGE_BACKEND", "s3"),
            ("S3_ENDPOINT", &endpoint),
            ("S3_BUCKET", bucket()),
            ("S3_CREATE_BUCKET", "true"),
            ("S3_ACCESS_KEY_ID", "test"),
            ("S3_SECRET_ACCESS_KEY", "test-secret"),
        ],
    };
    vars.extend_from_slice(extra);
    TestApp::spawn_with(&vars).await
}

pub(crate) fn picture(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
    // A gradient, so the JPEG encoder has real content to compress.
    let img = ImageBuffer::from_fn(width, height, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

pub(crate) fn jpeg() -> Vec<u8> {
    picture(800, 600, ImageFormat::Jpeg)
}

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Posts a multipart form and asserts the status.
pub(crate) async fn send_form(app: &TestApp, token: &str, form: Form, expect: u16) -> Value {
    let res = app
        .http
        .post(format!("{}/api/files", app.base))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(status, expect, "upload answered {status}: {body}");
    body
}

pub(crate) fn form(purpose: &str, name: &str, mime: &str, bytes: Vec<u8>) -> Form {
    Form::new().text("purpose", purpose.to_owned()).part(
        "file",
        Part::bytes(bytes)
            .file_name(name.to_owned())
            .mime_str(mime)
            .unwrap(),
    )
}

pub(crate) async fn upload(
    app: &TestApp,
    who: &Session,
    purpose: &str,
    name: &str,
    mime: &str,
    bytes: Vec<u8>,
) -> Value {
    send_form(app, &who.access, form(purpose, name, mime, bytes), 201).await
}

pub(crate) async fn row(app: &TestApp, id: &str) -> Option<file::Model> {
    file::Entity::find_by_id(id.to_owned())
        .one(&app.state.db)
        .await
        .unwrap()
}

async fn rows_of(app: &TestApp, user: &Session) -> Vec<file::Model> {
    file::Entity::find()
        .filter(file::Column::OwnerId.eq(user.user_id.clone()))
        .all(&app.state.db)
        .await
        .unwrap()
}

/// Fetches a link handed out by the API (relative links are the backend's own).
async fn fetch(app: &TestApp, url: &str) -> (u16, Vec<u8>) {
    let url = if url.starts_with('/') {
        format!("{}{url}", app.base)
    } else {
        url.to_owned()
    };
    let res = app.http.get(url).send().await.unwrap();
    (res.status().as_u16(), res.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn uploads_record_metadata_and_make_thumbnails() {
    for backend in BOTH {
        let app = spawn(backend, &[]).await;
        let user = app.register().await;
        let mut events = app.state.events.subscribe();

        let photo = jpeg();
        let out = upload(
            &app,
            &user,
            "gallery",
            "wedding.jpg",
            "image/jpeg",
            photo.clone(),
        )
        .await;
        assert_eq!(out["status"], "ready", "{backend:?}");
        assert_eq!(out["contentType"], "image/jpeg");
        assert_eq!(out["size"], photo.len());
        assert_eq!(out["sha256"], sha256_hex(&photo));
        assert_eq!(
            (out["width"].as_i64(), out["height"].as_i64()),
            (Some(800), Some(600))
        );
        assert_eq!(out["hasThumbnail"], true);
        let id = out["id"].as_str().unwrap();

        // The event is raised for the owner.
        let event = loop {
            let e = events.recv().await.unwrap();
            if e.event_type == "file.uploaded" && e.data["fileId"] == id {
                break e;
            }
        };
        assert_eq!(event.user_ids, vec![user.user_id.clone()]);

        // Both objects exist under a server-made key; the thumbnail is much smaller.
        let stored = row(&app, id).await.unwrap();
        assert_eq!(
            stored.storage_key,
            format!("users/{}/{id}.jpg", user.user_id)
        );
        let thumb_key = stored.thumb_key.clone().expect("thumbnail key");
        let thumb_size = app
            .state
            .storage
            .head(&thumb_key)
            .await
            .unwrap()
            .expect("thumbnail stored");
        assert_eq!(
            app.state.storage.head(&stored.storage_key).await.unwrap(),
            Some(photo.len() as u64)
        );
        assert!(
            thumb_size < photo.len() as u64,
            "{thumb_size} vs {}",
            photo.len()
        );

        // The links serve the original and a ~480 px JPEG thumbnail.
        let links = app
            .get(&format!("/api/files/{id}/url"), Some(&user.access), 200)
            .await;
        let (status, bytes) = fetch(&app, links["url"].as_str().unwrap()).await;
        assert_eq!(
            (status, bytes == photo),
            (200, true),
            "{backend:?} original"
        );
        let (status, thumb) = fetch(&app, links["thumbUrl"].as_str().unwrap()).await;
        assert_eq!(status, 200);
        let decoded = image::load_from_memory(&thumb).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (480, 360));

        // PNG keeps its type and size; a small one needs no thumbnail.
        let png = picture(300, 200, ImageFormat::Png);
        let out = upload(&app, &user, "cover", "cover.png", "image/png", png.clone()).await;
        assert_eq!(out["contentType"], "image/png");
        assert_eq!(out["sha256"], sha256_hex(&png));
        assert_eq!(
            (out["width"].as_i64(), out["height"].as_i64()),
            (Some(300), Some(200))
        );
        assert_eq!(out["hasThumbnail"], false);
        let links = app
            .get(
                &format!("/api/files/{}/url", out["id"].as_str().unwrap()),
                Some(&user.access),
                200,
            )
            .await;
        assert_eq!(
            links["url"], links["thumbUrl"],
            "small pictures are their own thumbnail"
        );

        // A PDF attachment: no dimensions, no thumbnail.
        let out = upload(
            &app,
            &user,
            "attachment",
            "map.pdf",
            "application/pdf",
            PDF.to_vec(),
        )
        .await;
        assert_eq!(out["contentType"], "application/pdf");
        assert_eq!(out["sha256"], sha256_hex(PDF));
        assert!(out["width"].is_null() && out["hasThumbnail"] == false);
        let meta = app
            .get(
                &format!("/api/files/{}", out["id"].as_str().unwrap()),
                Some(&user.access),
                200,
            )
            .await;
        assert_eq!(meta["name"], "map.pdf");
    }
}

#[tokio::test]
async fn disguised_and_unsupported_files_are_refused() {
    let app = spawn(Backend::Local, &[]).await;
    let user = app.register().await;
    let png = picture(10, 10, ImageFormat::Png);
    // PNG bytes named .pdf.
    let out = send_form(
        &app,
        &user.access,
        form("attachment", "contract.pdf", "application/pdf", png.clone()),
        415,
    )
    .await;
    assert_eq!(error_code(&out), "type_mismatch");
    // The same with an honest name but a lying content type.
    let out = send_form(
        &app,
        &user.access,
        form("gallery", "a.png", "image/jpeg", png),
        415,
    )
    .await;
    assert_eq!(error_code(&out), "type_mismatch");
    // A Windows executable renamed .jpg.
    let exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00".repeat(8);
    let out = send_form(
        &app,
        &user.access,
        form("gallery", "cute-cat.jpg", "image/jpeg", exe),
        415,
    )
    .await;
    assert_eq!(error_code(&out), "unsupported_type");
    // A PDF is an attachment, not a gallery picture.
    let out = send_form(
        &app,
        &user.access,
        form("gallery", "a.pdf", "application/pdf", PDF.to_vec()),
        415,
    )
    .await;
    assert_eq!(error_code(&out), "unsupported_type");
    // JPEG magic followed by garbage cannot be decoded.
    let mut broken = vec![0xFF, 0xD8, 0xFF, 0xE0];
    broken.extend_from_slice(&[0u8; 100]);
    let out = send_form(
        &app,
        &user.access,
        form("gallery", "broken.jpg", "image/jpeg", broken),
        415,
    )
    .await;
    assert_eq!(error_code(&out), "invalid_image");
    assert!(
        rows_of(&app, &user).await.is_empty(),
        "nothing refused leaves a row"
    );
}

#[tokio::test]
async fn malformed_uploads_get_clear_errors_and_change_nothing() {
    let app = spawn(Backend::Local, &[("FILES_MAX_GALLERY_BYTES", "2000")]).await;
    let user = app.register().await;

    let out = send_form(
        &app,
        &user.access,
        form("gallery", "big.jpg", "image/jpeg", jpeg()),
        413,
    )
    .await;
    assert_eq!(error_code(&out), "payload_too_large");
    // The limit is per purpose: the same file is fine as an attachment.
    upload(&app, &user, "attachment", "big.jpg", "image/jpeg", jpeg()).await;

    let out = send_form(
        &app,
        &user.access,
        form("gallery", "empty.jpg", "image/jpeg", Vec::new()),
        422,
    )
    .await;
    assert_eq!(error_code(&out), "empty_file");

    let no_file = Form::new().text("purpose", "gallery");
    let out = send_form(&app, &user.access, no_file, 422).await;
    assert_eq!(out["error"]["field"], "file");

    let no_purpose = Form::new().part("file", Part::bytes(jpeg()).file_name("a.jpg"));
    let out = send_form(&app, &user.access, no_purpose, 422).await;
    assert_eq!(out["error"]["field"], "purpose");

    let bad_purpose = form("wallpaper", "a.jpg", "image/jpeg", jpeg());
    let out = send_form(&app, &user.access, bad_purpose, 422).await;
    assert_eq!(out["error"]["field"], "purpose");

    // Junk fields cannot stretch the body past the limits.
    let junk = form("attachment", "a.pdf", "application/pdf", PDF.to_vec())
        .text("notes", "x".repeat(100_000));
    let out = send_form(&app, &user.access, junk, 413).await;
    assert_eq!(error_code(&out), "payload_too_large");
    // Nor can many small ones, each under the limit, together …
    let mut many_small = form("attachment", "a.pdf", "application/pdf", PDF.to_vec());
    for i in 0..3 {
        many_small = many_small.text(format!("notes{i}"), "x".repeat(30_000));
    }
    let out = send_form(&app, &user.access, many_small, 413).await;
    assert_eq!(error_code(&out), "payload_too_large");
    // … nor endless empty ones.
    let mut many_empty = form("attachment", "a.pdf", "application/pdf", PDF.to_vec());
    for i in 0..20 {
        many_empty = many_empty.text(format!("x{i}"), "");
    }
    let out = send_form(&app, &user.access, many_empty, 413).await;
    assert_eq!(error_code(&out), "payload_too_large");
    // A few small extra fields are fine.
    let extras = form("attachment", "a.pdf", "application/pdf", PDF.to_vec())
        .text("caption", "청첩장")
        .text("source", "web");
    send_form(&app, &user.access, extras, 201).await;

    // Not multipart at all.
    let out = app
        .post("/api/files", Some(&user.access), json!({"file": "x"}), 415)
        .await;
    assert_eq!(error_code(&out), "unsupported_media_type");
    // No account.
    let res = app
        .http
        .post(format!("{}/api/files", app.base))
        .multipart(form("gallery", "a.jpg", "image/jpeg", jpeg()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    assert_eq!(
        rows_of(&app, &user).await.len(),
        2,
        "only the two accepted attachments were stored"
    );
}

#[tokio::test]
async fn path_traversal_names_are_only_sanitised_metadata() {
    let app = spawn(Backend::Local, &[]).await;
    let user = app.register().await;
    let out = upload(
        &app,
        &user,
        "gallery",
        "../../../etc/passwd.jpg",
        "image/jpeg",
        jpeg(),
    )
    .await;
    assert_eq!(out["name"], "passwd.jpg");
    let out2 = upload(
        &app,
        &user,
        "gallery",
        "..\\..\\evil.jpg",
        "image/jpeg",
        jpeg(),
    )
    .await;
    assert_eq!(out2["name"], "evil.jpg");
    for o in [&out, &out2] {
        let stored = row(&app, o["id"].as_str().unwrap()).await.unwrap();
        assert_eq!(
            stored.storage_key,
            format!("users/{}/{}.jpg", user.user_id, stored.id)
        );
        assert!(!stored.storage_key.contains(".."));
    }
}

#[tokio::test]
async fn other_peoples_files_are_not_found() {
    let app = spawn(Backend::Local, &[]).await;
    let owner = app.register().await;
    let stranger = app.register().await;
    let out = upload(&app, &owner, "gallery", "a.jpg", "image/jpeg", jpeg()).await;
    let id = out["id"].as_str().unwrap();
    for path in [format!("/api/files/{id}"), format!("/api/files/{id}/url")] {
        let err = app.get(&path, Some(&stranger.access), 404).await;
        assert_eq!(error_code(&err), "not_found");
    }
    app.call(
        Method::DELETE,
        &format!("/api/files/{id}"),
        Some(&stranger.access),
        None,
        404,
    )
    .await;
    app.post(
        &format!("/api/files/{id}/complete"),
        Some(&stranger.access),
        json!({}),
        404,
    )
    .await;
    // Uploading onto someone else's page is refused like a missing page.
    let page = create_page(&app, &owner).await;
    let page_id = page["id"].as_str().unwrap();
    let f = form("gallery", "a.jpg", "image/jpeg", jpeg()).text("pageId", page_id.to_owned());
    send_form(&app, &stranger.access, f, 404).await;
    assert!(rows_of(&app, &stranger).await.is_empty());
    assert!(
        row(&app, id).await.is_some(),
        "the stranger changed nothing"
    );
}

/// A direct upload declared as `declared` whose object holds `bytes` (written straight
/// to the staging key, as the client's PUT would, with the declared content type),
/// then `complete`, answered with `expect`. Returns the file id, the staging key and
/// the answer.
pub(crate) async fn stage_and_complete(
    app: &TestApp,
    user: &Session,
    declared: Value,
    bytes: &[u8],
    expect: u16,
) -> (String, String, Value) {
    let content_type = declared["contentType"].as_str().unwrap().to_owned();
    let pre = app
        .post("/api/files/presign", Some(&user.access), declared, 201)
        .await;
    let id = pre["fileId"].as_str().unwrap().to_owned();
    let key = staging_key(&row(app, &id).await.unwrap());
    app.state
        .storage
        .put_bytes(&key, bytes.to_vec(), &content_type)
        .await
        .unwrap();
    let path = format!("/api/files/{id}/complete");
    let answer = app.post(&path, Some(&user.access), json!({}), expect).await;
    (id, key, answer)
}

#[tokio::test]
async fn direct_upload_presign_put_complete() {
    for backend in BOTH {
        let app = spawn(backend, &[]).await;
        let user = app.register().await;
        let photo = jpeg();
        let pre = app
            .post(
                "/api/files/presign",
                Some(&user.access),
                json!({"purpose": "gallery", "fileName": "big.jpg", "contentType": "image/jpeg", "size": photo.len()}),
                201,
            )
            .await;
        let id = pre["fileId"].as_str().unwrap();
        assert_eq!(pre["method"], "PUT");
        // Not uploaded yet: it does not count.
        let err = app
            .post(
                &format!("/api/files/{id}/complete"),
                Some(&user.access),
                json!({}),
                422,
            )
            .await;
        assert_eq!(error_code(&err), "upload_missing");
        let url = pre["uploadUrl"].as_str().unwrap();
        let url = if url.starts_with('/') {
            format!("{}{url}", app.base)
        } else {
            url.to_owned()
        };
        let res = app
            .http
            .put(url.clone())
            .header(
                "Content-Type",
                pre["headers"]["Content-Type"].as_str().unwrap(),
            )
            .body(photo.clone())
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success(),
            "{backend:?} PUT answered {}",
            res.status()
        );
        let done = app
            .post(
                &format!("/api/files/{id}/complete"),
                Some(&user.access),
                json!({}),
                200,
            )
            .await;
        assert_eq!(done["status"], "ready");
        assert_eq!(done["sha256"], sha256_hex(&photo));
        assert_eq!(
            (done["width"].as_i64(), done["hasThumbnail"].as_bool()),
            (Some(800), Some(true))
        );
        // Completing twice is harmless.
        app.post(
            &format!("/api/files/{id}/complete"),
            Some(&user.access),
            json!({}),
            200,
        )
        .await;
        // The upload link is still valid: other bytes sent through it never reach
        // what is served, which stays exactly what `complete` checked.
        let final_key = row(&app, id).await.unwrap().storage_key;
        let mut forged = photo.clone();
        forged[photo.len() / 2] ^= 0xFF;
        let res = app
            .http
            .put(url.clone())
            .header(
                "Content-Type",
                pre["headers"]["Content-Type"].as_str().unwrap(),
            )
            .body(forged)
            .send()
            .await
            .unwrap();
        let _ = res.status(); // accepted by the store or refused: either way harmless
        let mut served = app.state.storage.open(&final_key).await.unwrap();
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut served.body, &mut bytes)
            .await
            .unwrap();
        assert_eq!(sha256_hex(&bytes), sha256_hex(&photo));

        // An object of another size than declared does not count.
        let declared = json!({"purpose": "attachment", "fileName": "a.pdf", "contentType": "application/pdf", "size": PDF.len() + 10});
        let (id, _, err) = stage_and_complete(&app, &user, declared, PDF, 422).await;
        let id = id.as_str();
        assert_eq!(error_code(&err), "size_mismatch");
        assert_eq!(row(&app, id).await.unwrap().status, FileStatus::Pending);

        // Withdrawing an upload before completing it: its link stays valid, so the row
        // is kept (`deleting`, still counted) until the sweeper runs after expiry.
        let res = app
            .http
            .delete(format!("{}/api/files/{id}", app.base))
            .bearer_auth(&user.access)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        assert_eq!(row(&app, id).await.unwrap().status, FileStatus::Deleting);

        // Bytes that are not of the declared type: refused, object and row removed.
        let declared = json!({"purpose": "attachment", "fileName": "scan.jpg", "contentType": "image/jpeg", "size": PDF.len()});
        let (id, key, err) = stage_and_complete(&app, &user, declared, PDF, 415).await;
        let id = id.as_str();
        assert_eq!(error_code(&err), "type_mismatch");
        // Retired, not dropped: the link may still be used, so the row keeps counting
        // against the quota until the sweeper removes row and objects together.
        let retired = row(&app, id).await.unwrap();
        assert_eq!(retired.status, FileStatus::Deleting);
        app.get(&format!("/api/files/{id}"), Some(&user.access), 404)
            .await;
        sweep_once(
            &app.state.db,
            app.state.storage.as_ref(),
            Duration::ZERO,
            Duration::ZERO,
        )
        .await
        .unwrap();
        assert!(row(&app, id).await.is_none());
        assert_eq!(app.state.storage.head(&key).await.unwrap(), None);
    }
}

#[tokio::test]
async fn presign_checks_the_declaration() {
    let app = spawn(Backend::Local, &[("FILES_MAX_ATTACHMENT_BYTES", "1000")]).await;
    let user = app.register().await;
    let presign = |body: Value, expect: u16| {
        let app = &app;
        let token = user.access.clone();
        async move {
            app.post("/api/files/presign", Some(&token), body, expect)
                .await
        }
    };
    let err = presign(json!({"purpose": "attachment", "fileName": "a.pdf", "contentType": "application/pdf", "size": 5000}), 413).await;
    assert_eq!(error_code(&err), "payload_too_large");
    let err = presign(json!({"purpose": "attachment", "fileName": "a.pdf", "contentType": "application/pdf", "size": 0}), 422).await;
    assert_eq!(error_code(&err), "empty_file");
    let err = presign(json!({"purpose": "attachment", "fileName": "a.exe", "contentType": "application/x-msdownload", "size": 10}), 415).await;
    assert_eq!(error_code(&err), "unsupported_type");
    let err = presign(json!({"purpose": "attachment", "fileName": "a.pdf", "contentType": "image/png", "size": 10}), 415).await;
    assert_eq!(error_code(&err), "type_mismatch");
    assert!(rows_of(&app, &user).await.is_empty());
}

#[tokio::test]
async fn local_links_are_signed_and_expire() {
    let app = spawn(Backend::Local, &[]).await;
    let user = app.register().await;
    let out = upload(&app, &user, "gallery", "a.jpg", "image/jpeg", jpeg()).await;
    let id = out["id"].as_str().unwrap();
    let links = app
        .get(&format!("/api/files/{id}/url"), Some(&user.access), 200)
        .await;
    let url = links["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("/api/files/{id}/content?")),
        "{url}"
    );
    assert_eq!(fetch(&app, &url).await.0, 200);

    // Any change to the link breaks it.
    let sig_at = url.find("sig=").unwrap() + 4;
    let mut tampered = url.clone();
    let flipped = if &url[sig_at..sig_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    tampered.replace_range(sig_at..sig_at + 1, flipped);
    let (status, body) = fetch(&app, &tampered).await;
    assert_eq!(status, 403);
    assert_eq!(
        error_code(&serde_json::from_slice(&body).unwrap()),
        "invalid_signature"
    );
    let longer = url.replace("exp=", "exp=9");
    assert_eq!(
        fetch(&app, &longer).await.0,
        403,
        "a later expiry is not accepted"
    );
    let thumb_with_original_sig = url.replace("variant=original", "variant=thumb");
    assert_eq!(fetch(&app, &thumb_with_original_sig).await.0, 403);

    // A correctly signed link whose time has passed.
    let exp = chrono::Utc::now().timestamp() - 1;
    let sig = UrlSigner::new(&app.state.cfg).sign("GET", id, "original", exp);
    let (status, body) = fetch(
        &app,
        &format!("/api/files/{id}/content?exp={exp}&sig={sig}"),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        error_code(&serde_json::from_slice(&body).unwrap()),
        "url_expired"
    );
}

#[tokio::test]
async fn delete_removes_object_row_and_gallery_entry() {
    for backend in BOTH {
        let app = spawn(backend, &[]).await;
        let user = app.register().await;
        let page = create_page(&app, &user).await;
        let page_id = page["id"].as_str().unwrap();
        let out = upload(&app, &user, "gallery", "a.jpg", "image/jpeg", jpeg()).await;
        let id = out["id"].as_str().unwrap();
        app.call(
            Method::PUT,
            &format!("/api/pages/{page_id}/gallery"),
            Some(&user.access),
            Some(json!({"fileIds": [id]})),
            200,
        )
        .await;
        let stored = row(&app, id).await.unwrap();

        app.call(
            Method::DELETE,
            &format!("/api/files/{id}"),
            Some(&user.access),
            None,
            204,
        )
        .await;
        assert!(row(&app, id).await.is_none(), "{backend:?}");
        assert_eq!(
            app.state.storage.head(&stored.storage_key).await.unwrap(),
            None
        );
        assert_eq!(
            app.state
                .storage
                .head(stored.thumb_key.as_deref().unwrap())
                .await
                .unwrap(),
            None
        );
        let page = app
            .get(&format!("/api/pages/{page_id}"), Some(&user.access), 200)
            .await;
        assert_eq!(page["gallery"], json!([]));
        app.get(&format!("/api/files/{id}"), Some(&user.access), 404)
            .await;
    }
}

#[tokio::test]
async fn the_sweeper_finishes_stuck_deletions() {
    let app = spawn(Backend::Local, &[]).await;
    let user = app.register().await;
    let out = upload(&app, &user, "gallery", "a.jpg", "image/jpeg", jpeg()).await;
    let id = out["id"].as_str().unwrap();
    // As if the object delete had failed after the row was marked.
    let stored = row(&app, id).await.unwrap();
    let mut active = stored.clone().into_active_model();
    active.status = Set(FileStatus::Deleting);
    active.update(&app.state.db).await.unwrap();
    app.get(&format!("/api/files/{id}"), Some(&user.access), 404)
        .await;

    let removed = sweep_once(
        &app.state.db,
        app.state.storage.as_ref(),
        Duration::from_secs(3600),
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert!(removed >= 1);
    assert!(row(&app, id).await.is_none());
    assert_eq!(
        app.state.storage.head(&stored.storage_key).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn unreachable_storage_is_503_and_leaves_no_row() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let app = TestApp::spawn_with(&[
        ("STORAGE_BACKEND", "s3"),
        ("S3_ENDPOINT", &endpoint),
        ("S3_BUCKET", "nowhere"),
        ("S3_ACCESS_KEY_ID", "test"),
        ("S3_SECRET_ACCESS_KEY", "test-secret"),
    ])
    .await;
    let user = app.register().await;
    let out = send_form(
        &app,
        &user.access,
        form("gallery", "a.jpg", "image/jpeg", jpeg()),
        503,
    )
    .await;
    assert_eq!(error_code(&out), "storage_unavailable");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unreachable")
    );
    assert!(
        rows_of(&app, &user).await.is_empty(),
        "no row is left behind"
    );
}

#[tokio::test]
async fn gallery_attach_reorder_detach_and_public_page() {
    for backend in BOTH {
        let app = spawn(backend, &[]).await;
        let owner = app.register().await;
        let stranger = app.register().await;
        let page = create_page(&app, &owner).await;
        let page_id = page["id"].as_str().unwrap();
        let slug = page["slug"].as_str().unwrap();
        let a = upload(&app, &owner, "gallery", "a.jpg", "image/jpeg", jpeg()).await;
        let b = upload(
            &app,
            &owner,
            "gallery",
            "b.png",
            "image/png",
            picture(1000, 500, ImageFormat::Png),
        )
        .await;
        let pdf = upload(
            &app,
            &owner,
            "attachment",
            "c.pdf",
            "application/pdf",
            PDF.to_vec(),
        )
        .await;
        let theirs = upload(&app, &stranger, "gallery", "d.jpg", "image/jpeg", jpeg()).await;
        let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
        let gallery = format!("/api/pages/{page_id}/gallery");
        let put = |ids: Value, token: String, expect: u16| {
            let app = &app;
            let gallery = gallery.clone();
            async move {
                app.call(
                    Method::PUT,
                    &gallery,
                    Some(&token),
                    Some(json!({"fileIds": ids})),
                    expect,
                )
                .await
            }
        };

        let out = put(json!([a, b]), owner.access.clone(), 200).await;
        assert_eq!(out["fileIds"], json!([a, b]));
        assert_eq!(out["items"][0]["id"], a);
        let out = put(json!([b, a]), owner.access.clone(), 200).await;
        assert_eq!(out["fileIds"], json!([b, a]), "{backend:?} reorder");

        // Refusals change nothing.
        let err = put(json!([a, theirs["id"]]), owner.access.clone(), 404).await;
        assert_eq!(err["error"]["field"], "fileIds[1]");
        let err = put(json!([a, pdf["id"]]), owner.access.clone(), 422).await;
        assert_eq!(err["error"]["field"], "fileIds[1]");
        put(json!([a, a]), owner.access.clone(), 422).await;
        put(json!([a]), stranger.access.clone(), 404).await;
        let current = app.get(&gallery, Some(&owner.access), 200).await;
        assert_eq!(current["fileIds"], json!([b, a]));

        // Guests see nothing of a draft; once published, thumbnail and full links.
        app.get(&format!("/api/public/pages/{slug}"), None, 404)
            .await;
        app.post(
            &format!("/api/pages/{page_id}/publish"),
            Some(&owner.access),
            json!({}),
            200,
        )
        .await;
        let public = app
            .get(&format!("/api/public/pages/{slug}"), None, 200)
            .await;
        let items = public["gallery"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["id"], b);
        assert_eq!(
            (items[0]["width"].as_i64(), items[0]["height"].as_i64()),
            (Some(1000), Some(500))
        );
        let (status, thumb) = fetch(&app, items[0]["thumbUrl"].as_str().unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(image::load_from_memory(&thumb).unwrap().width(), 480);
        let (status, full) = fetch(&app, items[0]["url"].as_str().unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(image::load_from_memory(&full).unwrap().width(), 1000);

        // Detach: the file stays, the page no longer shows it.
        put(json!([a]), owner.access.clone(), 200).await;
        let public = app
            .get(&format!("/api/public/pages/{slug}"), None, 200)
            .await;
        assert_eq!(public["gallery"].as_array().unwrap().len(), 1);
        assert_eq!(public["gallery"][0]["id"], a);
        app.get(&format!("/api/files/{b}"), Some(&owner.access), 200)
            .await;
    }
}

#[tokio::test]
async fn editors_see_the_pages_files() {
    let app = spawn(Backend::Local, &[]).await;
    let owner = app.register().await;
    let editor = app.register().await;
    let page = published_page(&app, &owner).await;
    let page_id = page["id"].as_str().unwrap();
    crate::pages::add_editor(&app, &owner, page_id, &editor).await;
    let f = form("gallery", "a.jpg", "image/jpeg", jpeg()).text("pageId", page_id.to_owned());
    let out = send_form(&app, &owner.access, f, 201).await;
    let id = out["id"].as_str().unwrap();
    assert_eq!(out["pageId"], page_id);
    app.get(&format!("/api/files/{id}"), Some(&editor.access), 200)
        .await;
    app.get(&format!("/api/files/{id}/url"), Some(&editor.access), 200)
        .await;
    // An editor may arrange the page's files but not delete the owner's.
    app.call(
        Method::PUT,
        &format!("/api/pages/{page_id}/gallery"),
        Some(&editor.access),
        Some(json!({"fileIds": [id]})),
        200,
    )
    .await;
    app.call(
        Method::DELETE,
        &format!("/api/files/{id}"),
        Some(&editor.access),
        None,
        403,
    )
    .await;
}

#[tokio::test]
async fn quota_is_enforced_by_plan() {
    let photo = jpeg();
    let quota = (photo.len() * 3 / 2).to_string();
    let app = spawn(Backend::Local, &[("FILES_QUOTA_FREE_BYTES", &quota)]).await;
    let user = app.register().await;
    upload(&app, &user, "gallery", "a.jpg", "image/jpeg", photo.clone()).await;
    let err = send_form(
        &app,
        &user.access,
        form("gallery", "b.jpg", "image/jpeg", photo.clone()),
        403,
    )
    .await;
    assert_eq!(error_code(&err), "quota_exceeded");
    assert_eq!(
        err["error"]["details"]["quotaBytes"],
        quota.parse::<u64>().unwrap()
    );
    let err = app
        .post(
            "/api/files/presign",
            Some(&user.access),
            json!({"purpose": "gallery", "fileName": "b.jpg", "contentType": "image/jpeg", "size": photo.len()}),
            403,
        )
        .await;
    assert_eq!(error_code(&err), "quota_exceeded");
    assert_eq!(rows_of(&app, &user).await.len(), 1);

    // A premium page lifts the owner to the premium quota.
    let page = create_page(&app, &user).await;
    let p = backend::db::page::Entity::find_by_id(page["id"].as_str().unwrap().to_owned())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let mut active = p.into_active_model();
    active.plan = Set(backend::db::page::Plan::Premium);
    active.update(&app.state.db).await.unwrap();
    upload(&app, &user, "gallery", "b.jpg", "image/jpeg", photo).await;
    assert_eq!(rows_of(&app, &user).await.len(), 2);
}

#[tokio::test]
async fn simultaneous_uploads_cannot_exceed_the_quota_together() {
    let size = jpeg().len();
    let quota = (size * 3 / 2).to_string();
    let app = spawn(Backend::Local, &[("FILES_QUOTA_FREE_BYTES", &quota)]).await;
    // Several rounds: each is a chance for the reservations to overlap.
    for _ in 0..5 {
        let user = app.register().await;
        let presign = |name: &str| {
            let body = json!({"purpose": "gallery", "fileName": name, "contentType": "image/jpeg", "size": size});
            app.post_status("/api/files/presign", &user.access, body)
        };
        let (a, b, c) = tokio::join!(presign("a.jpg"), presign("b.jpg"), presign("c.jpg"));
        let mut statuses = [a, b, c];
        statuses.sort();
        assert_eq!(statuses, [201, 403, 403]);
        assert_eq!(rows_of(&app, &user).await.len(), 1);
    }
}

#[tokio::test]
async fn gif_and_webp_are_accepted_and_a_fake_heic_is_refused() {
    let app = spawn(Backend::Local, &[]).await;
    let user = app.register().await;
    let gif = upload(
        &app,
        &user,
        "gallery",
        "a.gif",
        "image/gif",
        picture(40, 30, ImageFormat::Gif),
    )
    .await;
    assert_eq!(
        (gif["contentType"].as_str(), gif["width"].as_i64()),
        (Some("image/gif"), Some(40))
    );
    let webp = upload(
        &app,
        &user,
        "gallery",
        "a.webp",
        "image/webp",
        picture(600, 300, ImageFormat::WebP),
    )
    .await;
    assert_eq!(
        (webp["contentType"].as_str(), webp["width"].as_i64()),
        (Some("image/webp"), Some(600))
    );
    assert_eq!(webp["hasThumbnail"], true);
    // A HEIC header with no picture behind it: HEIC is decoded (libheif), so bytes
    // that only look like one are refused like any other broken picture. Real HEIC
    // uploads are in `renditions.rs`.
    let mut heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
    heic.extend_from_slice(&[7u8; 200]);
    let err = send_form(
        &app,
        &user.access,
        form("gallery", "IMG_0001.HEIC", "application/octet-stream", heic),
        415,
    )
    .await;
    assert_eq!(error_code(&err), "invalid_image");
}

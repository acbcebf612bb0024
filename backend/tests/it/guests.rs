//! What guests and the couple's frontend rely on: RSVP summaries with every side, an
//! open answer that only its author can change, one row and one 201 per guest however
//! often they submit, and public write limits that let one venue's guests share an
//! address.

use serde_json::json;

use crate::{
    common::{TestApp, error_code},
    pages::published_page,
};

#[tokio::test]
async fn summary_always_has_every_side() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let page = published_page(&app, &owner).await;
    let (id, slug) = (page["id"].as_str().unwrap(), page["slug"].as_str().unwrap());
    let summary_url = format!("/api/pages/{id}/rsvps/summary");

    let empty = app.get(&summary_url, Some(&owner.access), 200).await;
    for side in ["groom", "bride", "unknown"] {
        assert_eq!(
            empty["bySide"][side],
            json!({"responses": 0, "attending": 0, "headcount": 0}),
            "{side} in {empty}"
        );
    }
    app.post(&format!("/api/public/pages/{slug}/rsvp"), None,
        json!({"name": "신부친구", "phone": "010-4444-1111", "side": "bride", "attending": true, "partySize": 2}), 201)
        .await;
    let one = app.get(&summary_url, Some(&owner.access), 200).await;
    assert_eq!(one["bySide"]["bride"]["headcount"], 2);
    assert_eq!(one["bySide"]["groom"]["headcount"], 0);
    assert_eq!(one["bySide"]["unknown"]["responses"], 0);
}

#[tokio::test]
async fn an_open_answer_is_changed_only_with_its_edit_token() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let page = published_page(&app, &owner).await;
    let (id, slug) = (page["id"].as_str().unwrap(), page["slug"].as_str().unwrap());
    let url = format!("/api/public/pages/{slug}/rsvp");
    let answer = json!({"name": "신부친구", "phone": "010-4444-2222", "side": "bride",
        "attending": true, "partySize": 2, "meal": "한식"});

    let first = app.post(&url, None, answer.clone(), 201).await;
    let token = first["editToken"]
        .as_str()
        .expect("editToken on the first answer");
    assert!(token.len() >= 32);

    // Someone who knows only the phone number cannot overwrite the answer.
    let taken = app
        .post(
            &url,
            None,
            json!({"name": "장난", "phone": "010 4444 2222", "attending": false}),
            409,
        )
        .await;
    assert_eq!(error_code(&taken), "rsvp_edit_token_required");
    let wrong = app
        .post(&url, None,
            json!({"name": "장난", "phone": "01044442222", "attending": false, "editToken": "x".repeat(32)}), 403)
        .await;
    assert_eq!(error_code(&wrong), "rsvp_edit_token_invalid");
    // Sending the very same answer again (a double tap) is harmless: 200, unchanged.
    let again = app.post(&url, None, answer.clone(), 200).await;
    assert_eq!(again["id"], first["id"]);
    assert!(again.get("editToken").is_none(), "the token is shown once");

    // The author changes it with the token; leaving `side` out keeps the stored side.
    let changed = app
        .post(&url, None,
            json!({"name": "신부친구", "phone": "010-4444-2222", "attending": true, "partySize": 3, "editToken": token}), 200)
        .await;
    assert_eq!(changed["id"], first["id"]);
    assert_eq!(changed["partySize"], 3);
    assert_eq!(
        changed["side"], "bride",
        "a re-answer without side keeps it"
    );

    let list = app
        .get(&format!("/api/pages/{id}/rsvps"), Some(&owner.access), 200)
        .await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["name"], "신부친구");
    assert_eq!(list["items"][0]["partySize"], 3);
    assert!(list["items"][0].get("editToken").is_none());
}

#[tokio::test]
async fn racing_first_answers_make_one_row_and_one_201() {
    let app = TestApp::spawn_with(&[("PUBLIC_WRITE_RATE_PER_IP", "10000")]).await;
    let owner = app.register().await;
    let page = published_page(&app, &owner).await;
    let id = page["id"].as_str().unwrap();
    let inv = app
        .post(
            &format!("/api/pages/{id}/invitations"),
            Some(&owner.access),
            json!({"guestName": "박하객", "side": "groom"}),
            201,
        )
        .await;
    let url = format!(
        "{}/api/public/invitations/{}/rsvp",
        app.base,
        inv["code"].as_str().unwrap()
    );
    let send = || {
        let req = app
            .http
            .post(&url)
            .json(&json!({"attending": true, "partySize": 2}));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let statuses = futures::future::join_all((0..6).map(|_| send())).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "exactly one first answer: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 200),
        "{statuses:?}"
    );
    let list = app
        .get(&format!("/api/pages/{id}/rsvps"), Some(&owner.access), 200)
        .await;
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn a_stale_page_save_is_412_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let editor = app.register().await;
    let page = crate::pages::create_page(&app, &owner).await;
    let id = page["id"].as_str().unwrap();
    app.post(
        &format!("/api/pages/{id}/editors"),
        Some(&owner.access),
        json!({"email": editor.email}),
        201,
    )
    .await;
    let url = format!("{}/api/pages/{id}", app.base);

    // Both load version 1.
    let loaded = app
        .http
        .get(&url)
        .bearer_auth(&owner.access)
        .send()
        .await
        .unwrap();
    let etag = loaded.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, "\"1\"");
    assert_eq!(
        loaded.json::<serde_json::Value>().await.unwrap()["version"],
        1
    );

    // The editor saves first.
    let first = app
        .http
        .patch(&url)
        .bearer_auth(&editor.access)
        .header("if-match", &etag)
        .json(&json!({"greeting": "편집자의 인사"}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["etag"], "\"2\"");

    // The owner's save on version 1 is refused, by header or by body field.
    let stale = app
        .http
        .patch(&url)
        .bearer_auth(&owner.access)
        .header("if-match", &etag)
        .json(&json!({"greeting": "신랑의 인사"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    let body: serde_json::Value = stale.json().await.unwrap();
    assert_eq!(error_code(&body), "stale_version");
    assert_eq!(body["error"]["details"]["currentVersion"], 2);
    let stale_body = app
        .http
        .patch(&url)
        .bearer_auth(&owner.access)
        .json(&json!({"greeting": "신랑의 인사", "version": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale_body.status(), 412);
    let now = app
        .get(&format!("/api/pages/{id}"), Some(&owner.access), 200)
        .await;
    assert_eq!(now["greeting"], "편집자의 인사", "nothing changed");
    assert_eq!(now["version"], 2);

    // Reloaded, the owner saves on version 2; a save without a precondition still works.
    let fresh = app
        .http
        .patch(&url)
        .bearer_auth(&owner.access)
        .header("if-match", "\"2\"")
        .json(&json!({"greeting": "신랑의 인사"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200);
    let blind = app
        .http
        .patch(&url)
        .bearer_auth(&owner.access)
        .json(&json!({"theme": "modern"}))
        .send()
        .await
        .unwrap();
    assert_eq!(blind.status(), 200);
    assert_eq!(blind.headers()["etag"], "\"4\"");

    // The gallery is page content too: a stale If-Match is refused there as well.
    let gallery = app
        .http
        .put(format!("{url}/gallery"))
        .bearer_auth(&owner.access)
        .header("if-match", "\"2\"")
        .json(&json!({"fileIds": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(gallery.status(), 412);
}

#[tokio::test]
async fn guests_behind_one_address_are_not_limited_like_one_client() {
    // The defaults: eleven guests of one wedding on the venue's Wi-Fi sign the
    // guestbook within a minute (the old per-IP limit refused the 11th).
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let page = published_page(&app, &owner).await;
    let slug = page["slug"].as_str().unwrap();
    for i in 0..25 {
        app.post(
            &format!("/api/public/pages/{slug}/guestbook"),
            None,
            json!({"name": format!("하객{i}"), "message": "축하해요", "password": "1234"}),
            201,
        )
        .await;
    }
}

#[tokio::test]
async fn writes_are_limited_per_address_and_page_and_per_invitation() {
    let app = TestApp::spawn_with(&[
        ("PUBLIC_WRITE_RATE_PER_IP_PAGE", "3"),
        ("PUBLIC_WRITE_RATE_PER_INVITATION", "2"),
    ])
    .await;
    let owner = app.register().await;
    let page = published_page(&app, &owner).await;
    let other = published_page(&app, &owner).await;
    let slug = page["slug"].as_str().unwrap();
    let entry = json!({"name": "하객", "message": "축하해요", "password": "1234"});

    // Per address and page: the 4th write on this page is 429 ...
    for _ in 0..3 {
        app.post(
            &format!("/api/public/pages/{slug}/guestbook"),
            None,
            entry.clone(),
            201,
        )
        .await;
    }
    let limited = app
        .post(
            &format!("/api/public/pages/{slug}/guestbook"),
            None,
            entry.clone(),
            429,
        )
        .await;
    assert_eq!(error_code(&limited), "rate_limited");
    // ... while the same address still writes on another wedding's page.
    app.post(
        &format!(
            "/api/public/pages/{}/guestbook",
            other["slug"].as_str().unwrap()
        ),
        None,
        entry.clone(),
        201,
    )
    .await;

    // Per invitation code: one guest's link takes 2 answers a minute.
    let other_id = other["id"].as_str().unwrap();
    let inv = app
        .post(
            &format!("/api/pages/{other_id}/invitations"),
            Some(&owner.access),
            json!({"guestName": "박하객"}),
            201,
        )
        .await;
    let url = format!(
        "/api/public/invitations/{}/rsvp",
        inv["code"].as_str().unwrap()
    );
    app.post(&url, None, json!({"attending": true}), 201).await;
    app.post(&url, None, json!({"attending": false}), 200).await;
    let limited = app.post(&url, None, json!({"attending": true}), 429).await;
    assert_eq!(error_code(&limited), "rate_limited");
}

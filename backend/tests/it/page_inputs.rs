//! Bad input on page, invitation, RSVP and guestbook routes: a clear 4xx and no change.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    common::{TestApp, error_code},
    pages::{page_body, published_page},
};

/// `body` with the value at `pointer` set (added when the last key is missing).
fn with(mut body: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = body
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("{pointer}"));
    match parent {
        Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
        }
        _ => panic!("{pointer}"),
    }
    body
}

#[tokio::test]
async fn invalid_pages_are_422_naming_the_field_and_create_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let cases = [
        (
            with(page_body(), "/weddingAt", json!("2099-13-45 noon")),
            "weddingAt",
        ),
        (
            with(page_body(), "/weddingAt", json!("2099-05-15T12:30:00")),
            "weddingAt",
        ),
        (with(page_body(), "/venue/lat", json!(91.0)), "venue.lat"),
        (with(page_body(), "/venue/lng", json!(-180.5)), "venue.lng"),
        (
            with(page_body(), "/greeting", json!("가".repeat(2001))),
            "greeting",
        ),
        (with(page_body(), "/groom/name", json!("")), "groom.name"),
        (
            with(page_body(), "/groom/contact", json!("call me")),
            "groom.contact",
        ),
        (
            with(page_body(), "/giftAccounts/0/number", json!("12ab")),
            "giftAccounts[0].number",
        ),
        (
            with(page_body(), "/giftAccounts/0/side", json!("uncle")),
            "giftAccounts[0].side",
        ),
        (
            with(page_body(), "/rsvp/mealOptions", json!(["한식", "한식"])),
            "rsvp.mealOptions",
        ),
        (
            with(page_body(), "/schedule/0/time", json!("25:61")),
            "schedule[0].time",
        ),
        (
            with(page_body(), "/timeZone", json!("Mars/Base")),
            "timeZone",
        ),
        (with(page_body(), "/slug", json!("../../etc")), "slug"),
        (with(page_body(), "/slug", json!("admin")), "slug"),
    ];
    for (body, field) in cases {
        let out = app
            .post("/api/pages", Some(&owner.access), body.clone(), 422)
            .await;
        assert_eq!(out["error"]["field"], field, "{out}");
    }
    assert_eq!(
        app.get("/api/pages", Some(&owner.access), 200).await["total"],
        0,
        "nothing was created"
    );
}

#[tokio::test]
async fn taken_slug_is_409_and_publishing_needs_a_venue() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let slug = format!("our-day-{}", ulid::Ulid::new().to_string().to_lowercase());
    app.post(
        "/api/pages",
        Some(&owner.access),
        with(page_body(), "/slug", json!(slug)),
        201,
    )
    .await;
    let out = app
        .post(
            "/api/pages",
            Some(&owner.access),
            with(page_body(), "/slug", json!(slug)),
            409,
        )
        .await;
    assert_eq!(out["error"]["field"], "slug");

    let mut body = page_body();
    body.as_object_mut().unwrap().remove("venue");
    let page = app.post("/api/pages", Some(&owner.access), body, 201).await;
    let id = page["id"].as_str().unwrap();
    let out = app
        .post(
            &format!("/api/pages/{id}/publish"),
            Some(&owner.access),
            json!({}),
            422,
        )
        .await;
    assert_eq!(error_code(&out), "incomplete_page");
    assert_eq!(
        app.get(&format!("/api/pages/{id}"), Some(&owner.access), 200)
            .await["status"],
        "draft"
    );
}

#[tokio::test]
async fn rsvp_rules_are_enforced() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let page = published_page(&app, &owner).await;
    let (id, slug) = (
        page["id"].as_str().unwrap().to_owned(),
        page["slug"].as_str().unwrap().to_owned(),
    );
    let inv = app
        .post(
            &format!("/api/pages/{id}/invitations"),
            Some(&owner.access),
            json!({"guestName": "G"}),
            201,
        )
        .await;
    let code = inv["code"].as_str().unwrap().to_owned();
    let rsvp = format!("/api/public/invitations/{code}/rsvp");

    let out = app
        .post(
            &rsvp,
            None,
            json!({"attending": true, "partySize": 1, "meal": "중식"}),
            422,
        )
        .await;
    assert_eq!(out["error"]["field"], "meal");
    let out = app
        .post(&rsvp, None, json!({"attending": true, "partySize": 0}), 422)
        .await;
    assert_eq!(out["error"]["field"], "partySize");
    let out = app
        .post(
            &rsvp,
            None,
            json!({"attending": true, "partySize": 11}),
            422,
        )
        .await;
    assert_eq!(out["error"]["field"], "partySize");
    app.post(&rsvp, None, json!({"partySize": 1}), 422).await;
    app.post(
        &rsvp,
        None,
        json!({"attending": true, "message": "x".repeat(501)}),
        422,
    )
    .await;
    app.post(
        "/api/public/invitations/AAAAAAAAAAAAAAAA/rsvp",
        None,
        json!({"attending": true}),
        404,
    )
    .await;
    assert_eq!(
        app.get(&format!("/api/pages/{id}/rsvps"), Some(&owner.access), 200)
            .await["total"],
        0
    );

    // Past the deadline nothing is taken, not even a change.
    app.post(
        &rsvp,
        None,
        json!({"attending": true, "partySize": 2, "meal": "한식"}),
        201,
    )
    .await;
    app.call(Method::PATCH, &format!("/api/pages/{id}"), Some(&owner.access),
        Some(json!({"rsvp": {"open": true, "deadline": "2020-01-01T00:00:00Z", "mealOptions": ["한식"], "allowOpen": true}})), 200)
        .await;
    let out = app
        .post(&rsvp, None, json!({"attending": false}), 409)
        .await;
    assert_eq!(error_code(&out), "rsvp_closed");
    let summary = app
        .get(
            &format!("/api/pages/{id}/rsvps/summary"),
            Some(&owner.access),
            200,
        )
        .await;
    assert_eq!(
        summary["headcount"], 2,
        "the answer before the deadline stands"
    );
    assert_eq!(
        app.get(&format!("/api/public/pages/{slug}"), None, 200)
            .await["rsvp"]["accepting"],
        false
    );

    // Open RSVP refused when the page does not allow it.
    app.call(
        Method::PATCH,
        &format!("/api/pages/{id}"),
        Some(&owner.access),
        Some(json!({"rsvp": {"open": true, "mealOptions": [], "allowOpen": false}})),
        200,
    )
    .await;
    let out = app
        .post(
            &format!("/api/public/pages/{slug}/rsvp"),
            None,
            json!({"name": "X", "phone": "010-0000-1111", "attending": true}),
            403,
        )
        .await;
    assert_eq!(error_code(&out), "open_rsvp_disabled");
}

#[tokio::test]
async fn csv_with_broken_rows_imports_nothing_and_says_which() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let page = published_page(&app, &owner).await;
    let id = page["id"].as_str().unwrap();
    let send = |body: &'static str, content_type: &'static str| {
        app.http
            .post(format!("{}/api/pages/{id}/invitations/import", app.base))
            .bearer_auth(&owner.access)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let res = send(
        "name,side,phone\n좋은손님,groom,010-1234-5678\n,bride,\n나쁜측,uncle,\n전화틀림,,12\n",
        "text/csv",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "invalid_csv_rows");
    let rows: Vec<(u64, String)> = body["error"]["details"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["row"].as_u64().unwrap(),
                r["field"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (2, "guestName".into()),
            (3, "side".into()),
            (4, "phone".into())
        ]
    );

    let res = send("foo,bar\n1,2\n", "text/csv").await.unwrap();
    assert_eq!(res.status(), 422);
    let res = send("name\nA\n", "application/json").await.unwrap();
    assert_eq!(res.status(), 415);
    assert_eq!(
        app.get(
            &format!("/api/pages/{id}/invitations"),
            Some(&owner.access),
            200
        )
        .await["total"],
        0
    );
}

#[tokio::test]
async fn guestbook_rejects_bad_entries_and_drafts() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let page = published_page(&app, &owner).await;
    let slug = page["slug"].as_str().unwrap();
    let url = format!("/api/public/pages/{slug}/guestbook");
    for (body, field) in [
        (
            json!({"name": "", "message": "hi", "password": "1234"}),
            "name",
        ),
        (
            json!({"name": "a", "message": "x".repeat(1001), "password": "1234"}),
            "message",
        ),
        (
            json!({"name": "a", "message": "hi", "password": "12"}),
            "password",
        ),
        (json!({"name": "a", "message": "hi"}), "password"),
    ] {
        assert_eq!(
            app.post(&url, None, body, 422).await["error"]["field"],
            field
        );
    }
    assert_eq!(app.get(&url, None, 200).await["total"], 0);

    let draft = crate::pages::create_page(&app, &owner).await;
    let draft_slug = draft["slug"].as_str().unwrap();
    app.post(
        &format!("/api/public/pages/{draft_slug}/guestbook"),
        None,
        json!({"name": "a", "message": "hi", "password": "1234"}),
        404,
    )
    .await;
}

#[tokio::test]
async fn public_writes_are_rate_limited_per_ip() {
    let app = TestApp::spawn_with(&[("PUBLIC_WRITE_RATE_PER_IP", "3")]).await;
    let owner = app.register().await;
    let page = published_page(&app, &owner).await;
    let url = format!(
        "/api/public/pages/{}/guestbook",
        page["slug"].as_str().unwrap()
    );
    for _ in 0..3 {
        app.post(
            &url,
            None,
            json!({"name": "a", "message": "hi", "password": "1234"}),
            201,
        )
        .await;
    }
    let out = app
        .post(
            &url,
            None,
            json!({"name": "a", "message": "hi", "password": "1234"}),
            429,
        )
        .await;
    assert_eq!(error_code(&out), "rate_limited");
}

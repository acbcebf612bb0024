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
    crate::pages::add_editor(&app, &owner, id, &editor).await;
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

#[tokio::test]
async fn share_preview_og_html_and_calendar_are_served_without_auth() {
    let app = TestApp::spawn_with(&[("PUBLIC_WEB_BASE_URL", "https://mocheong.example")]).await;
    let owner = app.register().await;
    let page = published_page(&app, &owner).await;
    let slug = page["slug"].as_str().unwrap();

    let share = app
        .get(&format!("/api/public/pages/{slug}/share"), None, 200)
        .await;
    assert_eq!(share["title"], "김민수 ♥ 이지영 결혼합니다");
    assert_eq!(share["url"], format!("https://mocheong.example/p/{slug}"));
    let desc = share["description"].as_str().unwrap();
    assert!(
        desc.starts_with("2099년 5월 15일 (금) 오후 12:30"),
        "{desc}"
    );
    assert!(desc.ends_with("더채플앳청담 3층 커티지홀"), "{desc}");

    // The crawler page: plain HTML with Open Graph and Twitter tags, no token.
    let html = app
        .http
        .get(format!("{}/api/public/pages/{slug}/share.html", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), 200);
    assert!(
        html.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = html.text().await.unwrap();
    for tag in [
        "<meta property=\"og:title\" content=\"김민수 ♥ 이지영 결혼합니다\">",
        "<meta property=\"og:type\" content=\"website\">",
        "property=\"og:description\"",
        &format!("<meta property=\"og:url\" content=\"https://mocheong.example/p/{slug}\">"),
        "<meta name=\"twitter:card\"",
    ] {
        assert!(html.contains(tag), "missing {tag} in {html}");
    }
    assert!(!html.contains("<script"), "no JavaScript needed");

    // The calendar entry, read back with an RFC 5545 parser.
    let ics = app
        .http
        .get(format!("{}/api/public/pages/{slug}/calendar.ics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ics.status(), 200);
    assert!(
        ics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/calendar")
    );
    let text = ics.text().await.unwrap();
    assert!(
        text.split("\r\n").all(|l| l.len() <= 75),
        "folded at 75 octets"
    );
    let unfolded = icalendar::parser::unfold(&text);
    let parsed = icalendar::parser::read_calendar(&unfolded).expect("valid iCalendar");
    let names: Vec<String> = parsed
        .components
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    assert_eq!(names, ["VTIMEZONE", "VEVENT"], "{text}");
    let calendar: icalendar::Calendar = text.parse().expect("parses");
    use icalendar::{Component, EventLike};
    let event = calendar
        .components
        .iter()
        .find_map(|c| c.as_event())
        .expect("one event");
    assert_eq!(event.get_summary(), Some("김민수 ♥ 이지영 결혼합니다"));
    let location = event.get_location().unwrap();
    assert!(
        location.contains("더채플앳청담") && location.contains("서울 강남구 선릉로 757"),
        "{location}"
    );
    assert!(
        event
            .get_description()
            .unwrap()
            .contains("https://map.kakao.com/link/map/")
    );
    match event.get_start() {
        Some(icalendar::DatePerhapsTime::DateTime(icalendar::CalendarDateTime::WithTimezone {
            date_time,
            tzid,
        })) => {
            assert_eq!(tzid, "Asia/Seoul");
            assert_eq!(date_time.to_string(), "2099-05-15 12:30:00");
        }
        other => panic!("DTSTART in Asia/Seoul expected, got {other:?}"),
    }

    // Drafts have no preview or calendar.
    let draft = crate::pages::create_page(&app, &owner).await;
    let draft_slug = draft["slug"].as_str().unwrap();
    app.get(&format!("/api/public/pages/{draft_slug}/share"), None, 404)
        .await;
    app.get(
        &format!("/api/public/pages/{draft_slug}/calendar.ics"),
        None,
        404,
    )
    .await;
}

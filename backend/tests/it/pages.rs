use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Session, TestApp, error_code};

pub fn page_body() -> Value {
    json!({
        "groom": {"name": "김민수", "father": "김아버지", "mother": "이어머니", "contact": "010-1111-2222"},
        "bride": {"name": "이지영", "contact": "010-3333-4444"},
        "weddingAt": "2099-05-15T12:30:00+09:00",
        "venue": {"name": "더채플앳청담", "hall": "3층 커티지홀", "address": "서울 강남구 선릉로 757",
                  "lat": 37.5247, "lng": 127.0423, "transport": "7호선 청담역 13번 출구", "parking": "건물 내 2시간 무료"},
        "greeting": "서로가 마주보며 다져온 사랑을 이제 함께 한 곳을 바라보며 걸어가려 합니다.",
        "giftAccounts": [{"side": "groom", "holder": "김민수", "bank": "신한은행", "number": "110-123-456789"}],
        "rsvp": {"open": true, "mealOptions": ["한식", "양식"], "allowOpen": true},
        "dressCode": "세미 정장",
        "schedule": [{"time": "12:30", "title": "예식"}, {"time": "13:30", "title": "피로연"}]
    })
}

pub async fn create_page(app: &TestApp, owner: &Session) -> Value {
    app.post("/api/pages", Some(&owner.access), page_body(), 201)
        .await
}

/// Makes `editor` an editor of the page the way people do: the owner invites the
/// address, the editor accepts the invitation.
pub async fn add_editor(app: &TestApp, owner: &Session, page_id: &str, editor: &Session) {
    app.post(
        &format!("/api/pages/{page_id}/editors"),
        Some(&owner.access),
        json!({"email": editor.email}),
        202,
    )
    .await;
    let mine = app
        .get("/api/me/editor-invitations", Some(&editor.access), 200)
        .await;
    let invitation = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["pageId"] == page_id)
        .unwrap_or_else(|| panic!("no invitation to {page_id} in {mine}"));
    let id = invitation["id"].as_str().unwrap();
    crate::editor_invitations::accept(app, editor, id, 200).await;
}

pub async fn published_page(app: &TestApp, owner: &Session) -> Value {
    let page = create_page(app, owner).await;
    let id = page["id"].as_str().unwrap();
    app.post(
        &format!("/api/pages/{id}/publish"),
        Some(&owner.access),
        json!({}),
        200,
    )
    .await
}

#[tokio::test]
async fn couple_flow_from_draft_to_guests_and_back() {
    let app = TestApp::spawn().await;
    let mut events = app.state.events.subscribe();
    let owner = app.register().await;
    let editor = app.register().await;

    let page = create_page(&app, &owner).await;
    let id = page["id"].as_str().unwrap().to_owned();
    let slug = page["slug"].as_str().unwrap().to_owned();
    assert_eq!(page["status"], "draft");
    assert_eq!(page["plan"], "free");
    assert_eq!(page["timeZone"], "Asia/Seoul");
    assert_eq!(page["weddingAt"], "2099-05-15T03:30:00Z");
    assert_eq!(page["weddingLocal"], "2099-05-15T12:30:00+09:00");
    assert_eq!(slug.len(), 10, "generated slug");
    app.get(&format!("/api/public/pages/{slug}"), None, 404)
        .await;

    // Edit, then add a co-editor who edits too.
    let edited = app
        .call(Method::PATCH, &format!("/api/pages/{id}"), Some(&owner.access),
            Some(json!({"slug": format!("ms-jy-{}", &id[20..].to_lowercase()), "greeting": "초대합니다"})), 200)
        .await;
    assert_eq!(edited["greeting"], "초대합니다");
    let slug = edited["slug"].as_str().unwrap().to_owned();
    assert_eq!(edited["groom"]["name"], "김민수", "untouched fields stay");
    add_editor(&app, &owner, &id, &editor).await;
    let as_editor = app
        .get(&format!("/api/pages/{id}"), Some(&editor.access), 200)
        .await;
    assert_eq!(as_editor["access"], "editor");
    app.call(
        Method::PATCH,
        &format!("/api/pages/{id}"),
        Some(&editor.access),
        Some(json!({"theme": "spring"})),
        200,
    )
    .await;
    let mine = app.get("/api/pages", Some(&editor.access), 200).await;
    assert_eq!(mine["total"], 1, "editors see the pages they edit");

    // Publish: the public view appears, without private contacts.
    app.post(
        &format!("/api/pages/{id}/publish"),
        Some(&owner.access),
        json!({}),
        200,
    )
    .await;
    let public = app
        .get(&format!("/api/public/pages/{slug}"), None, 200)
        .await;
    assert_eq!(public["groom"]["name"], "김민수");
    assert!(
        public["groom"].get("contact").is_none(),
        "contacts are private unless opted in"
    );
    assert_eq!(public["venue"]["lat"], 37.5247);
    assert_eq!(public["giftAccounts"][0]["bank"], "신한은행");
    assert_eq!(public["rsvp"]["accepting"], true);
    assert!(public.get("ownerId").is_none() && public.get("viewCount").is_none());
    let published = events.recv().await.unwrap();
    assert_eq!(published.event_type, "page.published");
    assert!(
        published.user_ids.contains(&owner.user_id) && published.user_ids.contains(&editor.user_id)
    );

    // Invitations: one, bulk, CSV.
    let one = app
        .post(&format!("/api/pages/{id}/invitations"), Some(&owner.access),
            json!({"guestName": "박하객", "side": "groom", "group": "회사", "phone": "010-5555-6666"}), 201)
        .await;
    let code = one["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 16);
    let bulk = app
        .post(
            &format!("/api/pages/{id}/invitations/bulk"),
            Some(&editor.access),
            json!({"guests": [{"guestName": "최친구", "side": "bride"}, {"guestName": "정동료"}]}),
            201,
        )
        .await;
    assert_eq!(bulk["created"].as_array().unwrap().len(), 2);
    let res = app
        .http
        .post(format!("{}/api/pages/{id}/invitations/import", app.base))
        .bearer_auth(&owner.access)
        .header("content-type", "text/csv")
        .body("이름,측,그룹,전화\n한가족,신부,가족,010-7777-8888\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let invitations = app
        .get(
            &format!("/api/pages/{id}/invitations?perPage=100"),
            Some(&owner.access),
            200,
        )
        .await;
    assert_eq!(invitations["total"], 4);

    // The guest opens their invitation and answers, then changes the answer.
    let personal = app
        .get(&format!("/api/public/invitations/{code}"), None, 200)
        .await;
    assert_eq!(personal["guest"]["name"], "박하객");
    assert_eq!(personal["page"]["slug"], slug);
    assert!(personal["rsvp"].is_null());
    let first = app
        .post(
            &format!("/api/public/invitations/{code}/rsvp"),
            None,
            json!({"attending": true, "partySize": 2, "meal": "한식", "message": "축하해!"}),
            201,
        )
        .await;
    let changed = app
        .post(
            &format!("/api/public/invitations/{code}/rsvp"),
            None,
            json!({"attending": true, "partySize": 3, "meal": "양식"}),
            200,
        )
        .await;
    assert_eq!(
        first["id"], changed["id"],
        "a changed answer updates the same row"
    );
    assert_eq!(
        app.get(&format!("/api/public/invitations/{code}"), None, 200)
            .await["rsvp"]["partySize"],
        3
    );
    let rsvp_event = loop {
        let e = events.recv().await.unwrap();
        if e.event_type == "rsvp.received" {
            break e;
        }
    };
    assert_eq!(rsvp_event.data["name"], "박하객");

    // Open RSVP on the public page by name and phone.
    app.post(&format!("/api/public/pages/{slug}/rsvp"), None,
        json!({"name": "지나가던친구", "phone": "010-9999-0000", "side": "bride", "attending": true, "partySize": 1, "meal": "한식"}), 201)
        .await;
    app.post(
        &format!("/api/public/pages/{slug}/rsvp"),
        None,
        json!({"name": "못가는친구", "phone": "010-2222-3333", "attending": false}),
        201,
    )
    .await;

    let summary = app
        .get(
            &format!("/api/pages/{id}/rsvps/summary"),
            Some(&owner.access),
            200,
        )
        .await;
    assert_eq!(summary["responses"], 3);
    assert_eq!(summary["attending"], 2);
    assert_eq!(summary["declined"], 1);
    assert_eq!(summary["headcount"], 4);
    assert_eq!(summary["meals"], json!({"양식": 3, "한식": 1}));
    assert_eq!(summary["bySide"]["groom"]["headcount"], 3);
    assert_eq!(summary["bySide"]["bride"]["headcount"], 1);
    assert_eq!(summary["bySide"]["unknown"]["responses"], 1);
    let list = app
        .get(&format!("/api/pages/{id}/rsvps"), Some(&owner.access), 200)
        .await;
    assert_eq!(list["total"], 3);

    let csv = app
        .http
        .get(format!("{}/api/pages/{id}/rsvps/export", app.base))
        .bearer_auth(&owner.access)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        text.contains("박하객,groom,회사,010-5555-6666,yes,3,양식"),
        "{text}"
    );

    // Guestbook: post, list, writer deletes with the password, owner hides.
    let entry = app
        .post(
            &format!("/api/public/pages/{slug}/guestbook"),
            None,
            json!({"name": "하객1", "message": "행복하세요", "password": "1234"}),
            201,
        )
        .await;
    let second = app
        .post(
            &format!("/api/public/pages/{slug}/guestbook"),
            None,
            json!({"name": "하객2", "message": "축하합니다", "password": "abcd"}),
            201,
        )
        .await;
    assert!(entry.get("passwordHash").is_none() && entry.get("password").is_none());
    let entry_id = entry["id"].as_str().unwrap();
    let body = app
        .call(
            Method::DELETE,
            &format!("/api/public/pages/{slug}/guestbook/{entry_id}"),
            None,
            Some(json!({"password": "0000"})),
            403,
        )
        .await;
    assert_eq!(error_code(&body), "wrong_password");
    app.call(
        Method::DELETE,
        &format!("/api/public/pages/{slug}/guestbook/{entry_id}"),
        None,
        Some(json!({"password": "1234"})),
        204,
    )
    .await;
    let second_id = second["id"].as_str().unwrap();
    let hidden = app
        .call(
            Method::PATCH,
            &format!("/api/pages/{id}/guestbook/{second_id}"),
            Some(&owner.access),
            Some(json!({"hidden": true})),
            200,
        )
        .await;
    assert_eq!(hidden["hidden"], true);
    assert_eq!(
        app.get(&format!("/api/public/pages/{slug}/guestbook"), None, 200)
            .await["total"],
        0
    );
    assert_eq!(
        app.get(
            &format!("/api/pages/{id}/guestbook"),
            Some(&owner.access),
            200
        )
        .await["total"],
        1
    );

    // Unpublish: the public page and the invitation links go dark.
    app.post(
        &format!("/api/pages/{id}/unpublish"),
        Some(&owner.access),
        json!({}),
        200,
    )
    .await;
    app.get(&format!("/api/public/pages/{slug}"), None, 404)
        .await;
    app.get(&format!("/api/public/invitations/{code}"), None, 404)
        .await;
}

#[tokio::test]
async fn contacts_are_public_only_when_the_couple_opts_in() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let mut body = page_body();
    body["showContacts"] = json!(true);
    let page = app.post("/api/pages", Some(&owner.access), body, 201).await;
    let id = page["id"].as_str().unwrap();
    app.post(
        &format!("/api/pages/{id}/publish"),
        Some(&owner.access),
        json!({}),
        200,
    )
    .await;
    let public = app
        .get(
            &format!("/api/public/pages/{}", page["slug"].as_str().unwrap()),
            None,
            200,
        )
        .await;
    assert_eq!(public["groom"]["contact"], "010-1111-2222");
}

#[tokio::test]
async fn wedding_context_carries_what_the_assistant_needs() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let page = published_page(&app, &owner).await;
    let (id, slug) = (page["id"].as_str().unwrap(), page["slug"].as_str().unwrap());
    app.post(&format!("/api/public/pages/{slug}/rsvp"), None,
        json!({"name": "A", "phone": "010-1234-0000", "attending": true, "partySize": 2, "meal": "양식"}), 201)
        .await;
    let ctx = app
        .get(
            &format!("/api/pages/{id}/context"),
            Some(&owner.access),
            200,
        )
        .await;
    assert_eq!(ctx["pageId"], id);
    assert_eq!(ctx["couple"]["groom"]["name"], "김민수");
    assert_eq!(ctx["couple"]["bride"]["name"], "이지영");
    assert_eq!(ctx["wedding"]["dateTime"], "2099-05-15T12:30:00+09:00");
    assert_eq!(ctx["venue"]["address"], "서울 강남구 선릉로 757");
    assert_eq!(ctx["venue"]["lng"], 127.0423);
    assert_eq!(ctx["giftAccounts"][0]["number"], "110-123-456789");
    assert_eq!(ctx["rsvp"]["summary"]["headcount"], 2);
    assert_eq!(ctx["rsvp"]["mealOptions"], json!(["한식", "양식"]));
    assert_eq!(ctx["dressCode"], "세미 정장");
    assert_eq!(ctx["schedule"][1]["title"], "피로연");
}

#[tokio::test]
async fn public_views_are_counted_in_batches() {
    let app = TestApp::spawn_with(&[("VIEW_FLUSH_INTERVAL_MS", "60000")]).await;
    let owner = app.register().await;
    let page = published_page(&app, &owner).await;
    let (id, slug) = (page["id"].as_str().unwrap(), page["slug"].as_str().unwrap());
    for _ in 0..5 {
        app.get(&format!("/api/public/pages/{slug}"), None, 200)
            .await;
    }
    // Not yet written (the flush is a minute away), but counted.
    let row = backend::db::page::Entity::find_by_id(id.to_owned())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.view_count, 0, "no write per view");
    assert_eq!(
        app.get(&format!("/api/pages/{id}"), Some(&owner.access), 200)
            .await["viewCount"],
        5
    );
    app.state.views.flush(&app.state.db).await;
    let row = backend::db::page::Entity::find_by_id(id.to_owned())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.view_count, 5);
    assert_eq!(
        app.get(&format!("/api/pages/{id}"), Some(&owner.access), 200)
            .await["viewCount"],
        5
    );
}

use sea_orm::EntityTrait;

//! Co-editor invitations: the owner cannot tell registered addresses from unknown
//! ones (issue 16, item 9), only the invited user's acceptance grants access, and
//! invitations can be declined, expire and be withdrawn.

use backend::db::editor_invitation;
use reqwest::Method;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};
use serde_json::{Value, json};

use crate::{
    common::{PASSWORD, Session, TestApp, error_code, session_from, unique_email},
    pages::create_page,
};

async fn invite(app: &TestApp, owner: &Session, page: &str, email: &str, expect: u16) -> Value {
    app.post(
        &format!("/api/pages/{page}/editors"),
        Some(&owner.access),
        json!({"email": email}),
        expect,
    )
    .await
}

/// `POST /api/me/editor-invitations/{id}/accept` as `user`, expecting `expect`.
pub async fn accept(app: &TestApp, user: &Session, id: &str, expect: u16) -> Value {
    app.post(
        &format!("/api/me/editor-invitations/{id}/accept"),
        Some(&user.access),
        json!({}),
        expect,
    )
    .await
}

async fn owners_list(app: &TestApp, owner: &Session, page: &str) -> Vec<Value> {
    app.get(
        &format!("/api/pages/{page}/editor-invitations"),
        Some(&owner.access),
        200,
    )
    .await
    .as_array()
    .unwrap()
    .clone()
}

async fn my_invitations(app: &TestApp, user: &Session) -> Vec<Value> {
    app.get("/api/me/editor-invitations", Some(&user.access), 200)
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// An invitation as the owner sees it, without what always differs (id, address, times).
fn shape(v: &Value) -> Value {
    let mut v = v.clone();
    for k in ["id", "email", "createdAt", "expiresAt"] {
        assert!(v.get(k).is_some(), "{k} missing in {v}");
        v.as_object_mut().unwrap().remove(k);
    }
    v
}

async fn page_of(app: &TestApp, owner: &Session) -> String {
    create_page(app, owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_owner_sees_registered_and_unknown_addresses_alike() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let known = app.register().await;
    let unknown = unique_email();
    let page = page_of(&app, &owner).await;

    let a = invite(&app, &owner, &page, &known.email, 202).await;
    let b = invite(&app, &owner, &page, &unknown, 202).await;
    assert_eq!(shape(&a), shape(&b), "{a} vs {b}");
    assert_eq!(a["status"], "pending");
    let list = owners_list(&app, &owner, &page).await;
    assert_eq!(list.len(), 2);
    assert_eq!(shape(&list[0]), shape(&list[1]), "{list:?}");
    // Nobody was made an editor by it.
    let editors = app
        .get(
            &format!("/api/pages/{page}/editors"),
            Some(&owner.access),
            200,
        )
        .await;
    assert_eq!(editors, json!([]));
    app.get(&format!("/api/pages/{page}"), Some(&known.access), 404)
        .await;

    // A decline is not shown either: an unknown address could never decline.
    let id = my_invitations(&app, &known).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.call(
        Method::POST,
        &format!("/api/me/editor-invitations/{id}/decline"),
        Some(&known.access),
        Some(json!({})),
        204,
    )
    .await;
    let list = owners_list(&app, &owner, &page).await;
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|i| i["status"] == "pending"), "{list:?}");
    assert!(my_invitations(&app, &known).await.is_empty());
    app.get(&format!("/api/pages/{page}"), Some(&known.access), 404)
        .await;
    let err = accept(&app, &known, &id, 404).await;
    assert_eq!(error_code(&err), "not_found", "declined is final");
}

#[tokio::test]
async fn accepting_makes_an_editor_and_an_unknown_address_finds_it_after_registering() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let page = page_of(&app, &owner).await;
    let email = unique_email();
    // Sent before the address has an account; the case of the address does not matter.
    invite(&app, &owner, &page, &email.to_uppercase(), 202).await;
    let out = app
        .post(
            "/api/auth/register",
            None,
            json!({"email": email, "password": PASSWORD, "displayName": "새 편집자"}),
            201,
        )
        .await;
    let newcomer = session_from(&out);
    let mine = my_invitations(&app, &newcomer).await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["pageId"], page.as_str());
    assert_eq!(mine[0]["groomName"], "김민수");
    assert_eq!(mine[0]["invitedByName"], "Test User");

    // Somebody else cannot take it.
    let other = app.register().await;
    let id = mine[0]["id"].as_str().unwrap();
    accept(&app, &other, id, 404).await;
    app.get(&format!("/api/pages/{page}"), Some(&newcomer.access), 404)
        .await;

    let accepted = accept(&app, &newcomer, id, 200).await;
    assert_eq!(accepted, json!({"pageId": page, "access": "editor"}));
    // An editor now: reads and edits the page, and is in the editor list.
    let got = app
        .get(&format!("/api/pages/{page}"), Some(&newcomer.access), 200)
        .await;
    assert_eq!(got["access"], "editor");
    app.call(
        Method::PATCH,
        &format!("/api/pages/{page}"),
        Some(&newcomer.access),
        Some(json!({"greeting": "함께 준비해요"})),
        200,
    )
    .await;
    let editors = app
        .get(
            &format!("/api/pages/{page}/editors"),
            Some(&owner.access),
            200,
        )
        .await;
    assert_eq!(editors[0]["userId"], newcomer.user_id.as_str());
    // It left the owner's invitation list and the invitee's; accepting again is 404.
    assert!(owners_list(&app, &owner, &page).await.is_empty());
    assert!(my_invitations(&app, &newcomer).await.is_empty());
    accept(&app, &newcomer, id, 404).await;
    // Inviting an editor again is a clear conflict (the editor list shows them anyway).
    let err = invite(&app, &owner, &page, &email, 409).await;
    assert_eq!(error_code(&err), "already_editor");
    let err = invite(&app, &owner, &page, &owner.email, 409).await;
    assert_eq!(error_code(&err), "already_owner");
}

#[tokio::test]
async fn an_expired_invitation_cannot_be_accepted_and_a_new_one_renews_it() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let invitee = app.register().await;
    let page = page_of(&app, &owner).await;
    let sent = invite(&app, &owner, &page, &invitee.email, 202).await;
    let id = sent["id"].as_str().unwrap().to_owned();

    // Fourteen days later.
    let row = editor_invitation::Entity::find_by_id(id.clone())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let mut m = row.into_active_model();
    m.expires_at = Set(chrono::Utc::now() - chrono::Duration::minutes(1));
    m.update(&app.state.db).await.unwrap();

    assert!(my_invitations(&app, &invitee).await.is_empty());
    let list = owners_list(&app, &owner, &page).await;
    assert_eq!(list[0]["status"], "expired");
    let err = accept(&app, &invitee, &id, 410).await;
    assert_eq!(error_code(&err), "invitation_expired");
    app.get(&format!("/api/pages/{page}"), Some(&invitee.access), 404)
        .await;

    // Inviting again renews the same invitation.
    let again = invite(&app, &owner, &page, &invitee.email, 202).await;
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["status"], "pending");
    accept(&app, &invitee, &id, 200).await;
    app.get(&format!("/api/pages/{page}"), Some(&invitee.access), 200)
        .await;
}

#[tokio::test]
async fn the_owner_withdraws_an_invitation() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let invitee = app.register().await;
    let page = page_of(&app, &owner).await;
    let id = invite(&app, &owner, &page, &invitee.email, 202).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/pages/{page}/editor-invitations/{id}");
    // Only the owner of that page.
    app.call(Method::DELETE, &path, Some(&invitee.access), None, 404)
        .await;
    app.call(Method::DELETE, &path, Some(&owner.access), None, 204)
        .await;
    app.call(Method::DELETE, &path, Some(&owner.access), None, 404)
        .await;
    assert!(owners_list(&app, &owner, &page).await.is_empty());
    assert!(my_invitations(&app, &invitee).await.is_empty());
    accept(&app, &invitee, &id, 404).await;
    app.get(&format!("/api/pages/{page}"), Some(&invitee.access), 404)
        .await;
}

#[tokio::test]
async fn invitations_are_rate_limited_per_owner() {
    let app = TestApp::spawn_with(&[("EDITOR_INVITES_PER_HOUR", "3")]).await;
    let owner = app.register().await;
    let known = app.register().await;
    let page = page_of(&app, &owner).await;
    invite(&app, &owner, &page, &known.email, 202).await;
    invite(&app, &owner, &page, &unique_email(), 202).await;
    invite(&app, &owner, &page, &known.email, 202).await;
    let err = invite(&app, &owner, &page, &unique_email(), 429).await;
    assert_eq!(error_code(&err), "rate_limited");
}

use reqwest::Method;
use serde_json::{Value, json};
use tokio::time::timeout;

use crate::{
    common::{PASSWORD, Session, TestApp, error_code, redis_url, session_from},
    events::{Cred, WAIT, open, try_open},
    fake_portone::FakePortOne,
    pages::published_page,
    payments::{PRICE, paid_page, spawn as payments_app},
};

#[tokio::test]
async fn admin_routes_refuse_anonymous_and_ordinary_users() {
    let app = TestApp::spawn().await;
    let user = app.register().await;
    assert_eq!(
        error_code(&app.get("/api/admin/users", None, 401).await),
        "missing_token"
    );
    assert_eq!(
        error_code(&app.get("/api/admin/users", Some(&user.access), 403).await),
        "forbidden"
    );

    let admin = app.admin().await;
    let page = app
        .get(
            &format!("/api/admin/users?q={}&perPage=5", user.email),
            Some(&admin.access),
            200,
        )
        .await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["id"], user.user_id);
    assert_eq!(page["perPage"], 5);
}

#[tokio::test]
async fn admin_list_validates_its_paging() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let body = app
        .get("/api/admin/users?perPage=1000", Some(&admin.access), 422)
        .await;
    assert_eq!(body["error"]["field"], json!("perPage"));
    app.get("/api/admin/users?page=abc", Some(&admin.access), 422)
        .await;
}

/// Every admin route with a body that would be valid: anonymous → 401, user → 403.
#[tokio::test]
async fn every_admin_route_refuses_anonymous_and_ordinary_users() {
    let app = TestApp::spawn().await;
    let user = app.register().await;
    let id = "01JZZZZZZZZZZZZZZZZZZZZZZZ";
    let reason = json!({"reason": "spam"});
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/admin/users".into(), None),
        (Method::GET, "/api/admin/audit".into(), None),
        (
            Method::POST,
            format!("/api/admin/users/{id}/suspend"),
            Some(reason.clone()),
        ),
        (
            Method::POST,
            format!("/api/admin/users/{id}/reinstate"),
            Some(json!({})),
        ),
        (
            Method::PATCH,
            format!("/api/admin/users/{id}/role"),
            Some(json!({"role": "admin"})),
        ),
    ];
    for (method, path, body) in routes {
        let anon = app
            .call(method.clone(), &path, None, body.clone(), 401)
            .await;
        assert_eq!(error_code(&anon), "missing_token", "{method} {path}");
        let ordinary = app
            .call(method.clone(), &path, Some(&user.access), body, 403)
            .await;
        assert_eq!(error_code(&ordinary), "forbidden", "{method} {path}");
    }
}

async fn audit_of(app: &TestApp, admin: &Session, target: &str) -> Vec<Value> {
    let page = app
        .get(
            &format!("/api/admin/audit?targetId={target}"),
            Some(&admin.access),
            200,
        )
        .await;
    page["items"].as_array().unwrap().clone()
}

async fn login(app: &TestApp, email: &str, expect: u16) -> Value {
    app.post(
        "/api/auth/login",
        None,
        json!({"email": email, "password": PASSWORD}),
        expect,
    )
    .await
}

#[tokio::test]
async fn suspension_stops_access_refresh_and_login_until_reinstated() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.register().await;
    let second_login = session_from(&login(&app, &user.email, 200).await);

    let out = app
        .post(
            &format!("/api/admin/users/{}/suspend", user.user_id),
            Some(&admin.access),
            json!({"reason": "fraud"}),
            200,
        )
        .await;
    assert_eq!(out["status"], "suspended");

    // The access token the user already holds stops working at once.
    let denied = app.get("/api/auth/me", Some(&user.access), 403).await;
    assert_eq!(error_code(&denied), "account_suspended");
    // Every refresh token, of every login, is dead.
    for refresh in [&user.refresh, &second_login.refresh] {
        let body = app
            .post(
                "/api/auth/refresh",
                None,
                json!({"refreshToken": refresh}),
                403,
            )
            .await;
        assert_eq!(error_code(&body), "account_suspended");
    }
    assert_eq!(
        error_code(&login(&app, &user.email, 403).await),
        "account_suspended"
    );

    let out = app
        .post(
            &format!("/api/admin/users/{}/reinstate", user.user_id),
            Some(&admin.access),
            json!({"reason": "appeal accepted"}),
            200,
        )
        .await;
    assert_eq!(out["status"], "active");
    let again = session_from(&login(&app, &user.email, 200).await);
    app.get("/api/auth/me", Some(&again.access), 200).await;
    // The refresh tokens revoked by the suspension stay revoked.
    let stale = app
        .post(
            "/api/auth/refresh",
            None,
            json!({"refreshToken": user.refresh}),
            401,
        )
        .await;
    assert_eq!(error_code(&stale), "invalid_refresh_token");

    // Newest first, with before/after and the reason.
    let audit = audit_of(&app, &admin, &user.user_id).await;
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0]["action"], "user.reinstate");
    assert_eq!(audit[0]["before"]["status"], "suspended");
    assert_eq!(audit[0]["after"]["status"], "active");
    assert_eq!(audit[1]["action"], "user.suspend");
    assert_eq!(audit[1]["adminId"], admin.user_id);
    assert_eq!(audit[1]["targetType"], "user");
    assert_eq!(audit[1]["reason"], "fraud");
    assert_eq!(audit[1]["before"]["status"], "active");
    assert_eq!(audit[1]["after"]["status"], "suspended");
    let by_action = app
        .get(
            &format!(
                "/api/admin/audit?action=user.suspend&targetId={}",
                user.user_id
            ),
            Some(&admin.access),
            200,
        )
        .await;
    assert_eq!(by_action["total"], 1);
}

#[tokio::test]
async fn suspension_closes_the_users_sse_streams_on_every_instance() {
    let url = redis_url();
    let vars = [("REDIS_URL", url.as_str())];
    let one = TestApp::spawn_with(&vars).await;
    let two = TestApp::spawn_with(&vars).await;
    let admin = two.admin().await;
    let user = one.register().await;
    let bystander = one.register().await;

    let mut stream = open(&one, Cred::Bearer(&user.access), None).await;
    let _other = open(&one, Cred::Bearer(&bystander.access), None).await;
    two.post(
        &format!("/api/admin/users/{}/suspend", user.user_id),
        Some(&admin.access),
        json!({"reason": "abuse"}),
        200,
    )
    .await;

    // The last thing the stream carries is the suspension, then it ends.
    let seen = timeout(WAIT, async {
        let mut seen = Vec::new();
        while let Some(frame) = stream.next_frame().await {
            seen.extend(frame.event);
        }
        seen
    })
    .await
    .expect("the suspended user's stream is closed");
    assert_eq!(seen.last().map(String::as_str), Some("account.suspended"));
    // Reopening is refused.
    let res = try_open(&one, Cred::Bearer(&user.access), None).await;
    assert_eq!(res.status(), 403);
    // Someone else's stream stays open.
    assert_eq!(one.state.notifications.hub.counts(), (1, 1));
}

#[tokio::test]
async fn an_admin_cannot_suspend_or_demote_themself_and_roles_change_with_audit() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let me = &admin.user_id;
    let body = app
        .post(
            &format!("/api/admin/users/{me}/suspend"),
            Some(&admin.access),
            json!({"reason": "oops"}),
            409,
        )
        .await;
    assert_eq!(error_code(&body), "cannot_modify_self");
    let body = app
        .call(
            Method::PATCH,
            &format!("/api/admin/users/{me}/role"),
            Some(&admin.access),
            Some(json!({"role": "user"})),
            409,
        )
        .await;
    assert_eq!(error_code(&body), "cannot_modify_self");
    app.get("/api/auth/me", Some(&admin.access), 200).await;
    assert!(audit_of(&app, &admin, me).await.is_empty());

    // Bad input changes nothing.
    let user = app.register().await;
    let path = format!("/api/admin/users/{}/role", user.user_id);
    app.call(
        Method::PATCH,
        &path,
        Some(&admin.access),
        Some(json!({"role": "root"})),
        422,
    )
    .await;
    app.post(
        &format!("/api/admin/users/{}/suspend", user.user_id),
        Some(&admin.access),
        json!({"reason": ""}),
        422,
    )
    .await;
    app.post(
        "/api/admin/users/01JZZZZZZZZZZZZZZZZZZZZZZZ/suspend",
        Some(&admin.access),
        json!({"reason": "x"}),
        404,
    )
    .await;
    assert!(audit_of(&app, &admin, &user.user_id).await.is_empty());

    let out = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin.access),
            Some(json!({"role": "admin"})),
            200,
        )
        .await;
    assert_eq!(out["role"], "admin");
    // The promoted user's existing token now passes the admin check.
    app.get("/api/admin/users", Some(&user.access), 200).await;
    let audit = audit_of(&app, &admin, &user.user_id).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["action"], "user.role");
    assert_eq!(audit[0]["before"]["role"], "user");
    assert_eq!(audit[0]["after"]["role"], "admin");
}

#[tokio::test]
async fn pages_are_listed_unpublished_with_a_notice_and_deleted_with_audit() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let owner = app.register().await;
    let page = published_page(&app, &owner).await;
    let id = page["id"].as_str().unwrap();
    let slug = page["slug"].as_str().unwrap();

    let found = app
        .get(
            &format!("/api/admin/pages?q={slug}&status=published"),
            Some(&admin.access),
            200,
        )
        .await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["items"][0]["id"], id);
    assert_eq!(found["items"][0]["ownerId"], owner.user_id);
    let drafts = app
        .get(
            &format!("/api/admin/pages?q={slug}&status=draft"),
            Some(&admin.access),
            200,
        )
        .await;
    assert_eq!(drafts["total"], 0);
    app.get("/api/admin/pages?status=gone", Some(&admin.access), 422)
        .await;

    let mut owner_stream = open(&app, Cred::Bearer(&owner.access), None).await;
    app.post(
        &format!("/api/admin/pages/{id}/unpublish"),
        Some(&admin.access),
        json!({}),
        422,
    )
    .await;
    let out = app
        .post(
            &format!("/api/admin/pages/{id}/unpublish"),
            Some(&admin.access),
            json!({"reason": "copyrighted photos"}),
            200,
        )
        .await;
    assert_eq!(out["status"], "draft");
    app.get(&format!("/api/public/pages/{slug}"), None, 404)
        .await;
    let notice = timeout(WAIT, async {
        loop {
            let frame = owner_stream.next_frame().await.expect("stream stays open");
            if frame.event.as_deref() == Some("page.unpublished") {
                return frame.json();
            }
        }
    })
    .await
    .expect("the owner is notified");
    assert_eq!(notice["pageId"], id);
    assert_eq!(notice["reason"], "copyrighted photos");
    // A second unpublish is refused and not recorded.
    let again = app
        .post(
            &format!("/api/admin/pages/{id}/unpublish"),
            Some(&admin.access),
            json!({"reason": "again"}),
            409,
        )
        .await;
    assert_eq!(error_code(&again), "page_not_published");

    app.call(
        Method::DELETE,
        &format!("/api/admin/pages/{id}"),
        Some(&admin.access),
        None,
        204,
    )
    .await;
    app.get(&format!("/api/pages/{id}"), Some(&owner.access), 404)
        .await;
    app.call(
        Method::DELETE,
        &format!("/api/admin/pages/{id}"),
        Some(&admin.access),
        None,
        404,
    )
    .await;

    let audit = audit_of(&app, &admin, id).await;
    let actions: Vec<_> = audit
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["page.delete", "page.unpublish"]);
    assert_eq!(audit[0]["before"]["status"], "draft");
    assert_eq!(audit[0]["after"], Value::Null);
    assert_eq!(audit[1]["before"]["status"], "published");
    assert_eq!(audit[1]["after"]["status"], "draft");
    assert_eq!(audit[1]["reason"], "copyrighted photos");
}

#[tokio::test]
async fn payments_are_filtered_inspected_and_refunded_through_portone_with_audit() {
    let fake = FakePortOne::start().await;
    let app = payments_app(&fake.base_url, &[]).await;
    let admin = app.admin().await;
    let owner = app.register().await;
    let (_page, pay) = paid_page(&app, &fake, &owner).await;

    let since = (chrono::Utc::now() - chrono::Duration::minutes(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let listed = app
        .get(
            &format!("/api/admin/payments?status=paid&suspicious=false&from={since}&perPage=100"),
            Some(&admin.access),
            200,
        )
        .await;
    let ids: Vec<_> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert!(ids.contains(&json!(pay)), "{listed}");
    let before_it = app
        .get(
            &format!("/api/admin/payments?status=paid&to={since}&perPage=100"),
            Some(&admin.access),
            200,
        )
        .await;
    assert!(
        !before_it["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == pay.as_str())
    );
    let suspicious = app
        .get(
            "/api/admin/payments?suspicious=true&perPage=100",
            Some(&admin.access),
            200,
        )
        .await;
    assert!(
        suspicious["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] == "suspicious")
    );
    app.get("/api/admin/payments?status=lost", Some(&admin.access), 422)
        .await;

    let path = format!("/api/admin/payments/{pay}/refund");
    app.post(
        &path,
        Some(&admin.access),
        json!({"reason": "x", "amount": PRICE + 1}),
        422,
    )
    .await;
    assert!(fake.cancel_requests().is_empty());
    let partial = app
        .post(
            &path,
            Some(&admin.access),
            json!({"reason": "late delivery", "amount": 5_000}),
            200,
        )
        .await;
    assert_eq!(partial["status"], "partially_cancelled");
    assert_eq!(partial["cancelledAmount"], 5_000);
    assert_eq!(fake.cancel_requests()[0]["requester"], "ADMIN");
    assert_eq!(fake.cancel_requests()[0]["amount"], 5_000);

    let detail = app
        .get(
            &format!("/api/admin/payments/{pay}"),
            Some(&admin.access),
            200,
        )
        .await;
    assert_eq!(detail["payment"]["cancelledAmount"], 5_000);
    assert_eq!(detail["provider"]["cancelled"], 5_000);
    assert_eq!(detail["provider"]["status"], "PARTIAL_CANCELLED");

    let rest = app
        .post(
            &path,
            Some(&admin.access),
            json!({"reason": "refund the rest"}),
            200,
        )
        .await;
    assert_eq!(rest["status"], "cancelled");
    assert_eq!(rest["cancelledAmount"], PRICE);
    let done = app
        .post(&path, Some(&admin.access), json!({"reason": "again"}), 409)
        .await;
    assert_eq!(error_code(&done), "payment_not_refundable");

    let audit = audit_of(&app, &admin, &pay).await;
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|a| a["action"] == "payment.refund"));
    assert_eq!(audit[1]["before"]["cancelledAmount"], 0);
    assert_eq!(audit[1]["after"]["cancelledAmount"], 5_000);
    assert_eq!(audit[1]["reason"], "late delivery");
    assert_eq!(audit[0]["after"]["status"], "cancelled");
    app.get("/api/admin/payments/pay_nope", Some(&admin.access), 404)
        .await;
}

/// Other tests share the database, so figures are checked as lower bounds; the exact
/// revenue arithmetic is a unit test in `admin::stats`.
#[tokio::test]
async fn stats_count_users_pages_rsvps_chat_and_daily_revenue() {
    let fake = FakePortOne::start().await;
    let app = payments_app(&fake.base_url, &[]).await;
    let admin = app.admin().await;
    let owner = app.register().await;
    published_page(&app, &owner).await;
    paid_page(&app, &fake, &owner).await;
    app.post(
        &format!("/api/admin/users/{}/suspend", owner.user_id),
        Some(&admin.access),
        json!({"reason": "test"}),
        200,
    )
    .await;

    let stats = app.get("/api/admin/stats", Some(&admin.access), 200).await;
    assert!(stats["users"]["total"].as_u64().unwrap() >= 2);
    assert!(stats["users"]["suspended"].as_u64().unwrap() >= 1);
    assert!(stats["pages"]["published"].as_u64().unwrap() >= 1);
    assert!(stats["pages"]["total"].as_u64().unwrap() >= 2);
    assert!(stats["rsvps"].is_u64());
    assert!(stats["chat"]["sessions"].is_u64());
    assert!(stats["chat"]["activeLast24h"].is_u64());
    let days = stats["revenueByDay"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Seoul)
        .date_naive()
        .to_string();
    assert_eq!(days[29]["date"], today.as_str());
    let sum: i64 = days.iter().map(|d| d["netKrw"].as_i64().unwrap()).sum();
    assert_eq!(stats["revenueTotalKrw"], sum);
    // No socket or stream is open in this test; the live figures are this instance's.
    let live = &stats["live"];
    assert!(live["instance"]["serverId"].is_string());
    assert_eq!(live["instance"]["chatSockets"], 0);
    assert_eq!(live["instance"]["openStreams"], 0);
    assert_eq!(live["cluster"]["chatSockets"], 0);
}

#[tokio::test]
async fn guestbook_entries_are_hidden_and_shown_across_pages_with_audit() {
    let app = TestApp::spawn_with(&[("PUBLIC_WRITE_RATE_PER_IP", "10000")]).await;
    let admin = app.admin().await;
    let owner = app.register().await;
    let page = published_page(&app, &owner).await;
    let (page_id, slug) = (page["id"].as_str().unwrap(), page["slug"].as_str().unwrap());
    let entry = app
        .post(
            &format!("/api/public/pages/{slug}/guestbook"),
            None,
            json!({"name": "하객", "message": "광고 스팸", "password": "1234"}),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let public_count = || async {
        app.get(&format!("/api/public/pages/{slug}/guestbook"), None, 200)
            .await["total"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(public_count().await, 1);

    let listed = app
        .get(
            &format!("/api/admin/guestbook?pageId={page_id}&hidden=false"),
            Some(&admin.access),
            200,
        )
        .await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["id"], entry.as_str());
    assert!(listed["items"][0].get("passwordHash").is_none());

    let out = app
        .post(
            &format!("/api/admin/guestbook/{entry}/hide"),
            Some(&admin.access),
            json!({"reason": "spam"}),
            200,
        )
        .await;
    assert_eq!(out["hidden"], true);
    assert_eq!(public_count().await, 0);
    let hidden = app
        .get(
            &format!("/api/admin/guestbook?pageId={page_id}&hidden=true"),
            Some(&admin.access),
            200,
        )
        .await;
    assert_eq!(hidden["total"], 1);

    app.post(
        &format!("/api/admin/guestbook/{entry}/unhide"),
        Some(&admin.access),
        json!({}),
        200,
    )
    .await;
    assert_eq!(public_count().await, 1);
    app.post(
        "/api/admin/guestbook/01JZZZZZZZZZZZZZZZZZZZZZZZ/hide",
        Some(&admin.access),
        json!({}),
        404,
    )
    .await;

    let audit = audit_of(&app, &admin, &entry).await;
    let actions: Vec<_> = audit
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["guestbook.unhide", "guestbook.hide"]);
    assert_eq!(audit[1]["before"]["hidden"], false);
    assert_eq!(audit[1]["after"]["hidden"], true);
    assert_eq!(audit[1]["reason"], "spam");
}

//! Owner / editor / other user / admin / anonymous × every owner route.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{common::TestApp, pages::published_page};

struct Route {
    method: Method,
    path: String,
    body: Option<Value>,
    /// Expected status for [owner, editor, stranger, anonymous].
    expect: [u16; 4],
}

#[tokio::test]
async fn every_page_route_is_scoped_to_its_members() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let editor = app.register().await;
    let stranger = app.register().await;
    // Whom the add/remove-editor rows act on, so the stranger stays a stranger.
    let newcomer = app.register().await;
    let page = published_page(&app, &owner).await;
    let id = page["id"].as_str().unwrap().to_owned();
    crate::pages::add_editor(&app, &owner, &id, &editor).await;
    crate::pages::add_editor(&app, &owner, &id, &newcomer).await;
    let inv = app
        .post(
            &format!("/api/pages/{id}/invitations"),
            Some(&owner.access),
            json!({"guestName": "손님"}),
            201,
        )
        .await;
    let inv_id = inv["id"].as_str().unwrap().to_owned();
    let slug = page["slug"].as_str().unwrap().to_owned();
    let entry = app
        .post(
            &format!("/api/public/pages/{slug}/guestbook"),
            None,
            json!({"name": "손님", "message": "축하", "password": "1234"}),
            201,
        )
        .await;
    let entry_id = entry["id"].as_str().unwrap().to_owned();

    let r = |method: Method, path: String, body: Option<Value>, expect: [u16; 4]| Route {
        method,
        path,
        body,
        expect,
    };
    // Strangers get 404, exactly as for a page that does not exist.
    let routes = vec![
        r(
            Method::GET,
            format!("/api/pages/{id}"),
            None,
            [200, 200, 404, 401],
        ),
        r(
            Method::PATCH,
            format!("/api/pages/{id}"),
            Some(json!({"greeting": "안녕"})),
            [200, 200, 404, 401],
        ),
        r(
            Method::POST,
            format!("/api/pages/{id}/publish"),
            Some(json!({})),
            [200, 200, 404, 401],
        ),
        r(
            Method::GET,
            format!("/api/pages/{id}/context"),
            None,
            [200, 200, 404, 401],
        ),
        r(
            Method::GET,
            format!("/api/pages/{id}/editors"),
            None,
            [200, 200, 404, 401],
        ),
        r(
            Method::POST,
            format!("/api/pages/{id}/editors"),
            Some(json!({"email": crate::common::unique_email()})),
            [202, 403, 404, 401],
        ),
        r(
            Method::GET,
            format!("/api/pages/{id}/editor-invitations"),
            None,
            [200, 403, 404, 401],
        ),
        r(
            Method::DELETE,
            format!("/api/pages/{id}/editors/{}", newcomer.user_id),
            None,
            [204, 403, 404, 401],
        ),
        r(
            Method::GET,
            format!("/api/pages/{id}/invitations"),
            None,
            [200, 200, 404, 401],
        ),
        r(
            Method::POST,
            format!("/api/pages/{id}/invitations"),
            Some(json!({"guestName": "새손님"})),
            [201, 201, 404, 401],
        ),
        r(
            Method::POST,
            format!("/api/pages/{id}/invitations/bulk"),
            Some(json!({"guests": [{"guestName": "b"}]})),
            [201, 201, 404, 401],
        ),
        r(
            Method::GET,
            format!("/api/pages/{id}/rsvps"),
            None,
            [200, 200, 404, 401],
        ),
        r(
            Method::GET,
            format!("/api/pages/{id}/rsvps/summary"),
            None,
            [200, 200, 404, 401],
        ),
        r(
            Method::GET,
            format!("/api/pages/{id}/rsvps/export"),
            None,
            [200, 200, 404, 401],
        ),
        r(
            Method::GET,
            format!("/api/pages/{id}/guestbook"),
            None,
            [200, 200, 404, 401],
        ),
        r(
            Method::PATCH,
            format!("/api/pages/{id}/guestbook/{entry_id}"),
            Some(json!({"hidden": false})),
            [200, 200, 404, 401],
        ),
    ];
    let roles = [
        Some(&owner.access),
        Some(&editor.access),
        Some(&stranger.access),
        None,
    ];
    for route in &routes {
        for (who, token) in roles.iter().enumerate() {
            let res = {
                let mut req = app
                    .http
                    .request(route.method.clone(), format!("{}{}", app.base, route.path));
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                if let Some(b) = &route.body {
                    req = req.json(b);
                }
                req.send().await.unwrap()
            };
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            assert_eq!(
                status,
                route.expect[who],
                "{} {} as {}: {body}",
                route.method,
                route.path,
                ["owner", "editor", "stranger", "anonymous"][who]
            );
            if status == 404 {
                assert!(
                    !body.contains(&owner.user_id),
                    "a 404 must not reveal the page"
                );
            }
        }
    }

    // Destructive routes last: strangers and editors cannot, the owner can.
    let invitation = format!("/api/pages/{id}/invitations/{inv_id}");
    app.call(
        Method::DELETE,
        &invitation,
        Some(&stranger.access),
        None,
        404,
    )
    .await;
    app.call(Method::DELETE, &invitation, Some(&editor.access), None, 204)
        .await;
    app.call(
        Method::DELETE,
        &format!("/api/pages/{id}/guestbook/{entry_id}"),
        Some(&stranger.access),
        None,
        404,
    )
    .await;
    app.call(
        Method::DELETE,
        &format!("/api/pages/{id}/guestbook/{entry_id}"),
        Some(&editor.access),
        None,
        204,
    )
    .await;
    app.call(
        Method::DELETE,
        &format!("/api/pages/{id}"),
        Some(&stranger.access),
        None,
        404,
    )
    .await;
    app.call(
        Method::DELETE,
        &format!("/api/pages/{id}"),
        Some(&editor.access),
        None,
        403,
    )
    .await;
    app.call(Method::DELETE, &format!("/api/pages/{id}"), None, None, 401)
        .await;
    app.call(
        Method::DELETE,
        &format!("/api/pages/{id}"),
        Some(&owner.access),
        None,
        204,
    )
    .await;
    app.get(&format!("/api/pages/{id}"), Some(&owner.access), 404)
        .await;
    app.get(&format!("/api/public/pages/{slug}"), None, 404)
        .await;
}

#[tokio::test]
async fn lists_show_only_the_callers_pages() {
    let app = TestApp::spawn().await;
    let a = app.register().await;
    let b = app.register().await;
    published_page(&app, &a).await;
    assert_eq!(
        app.get("/api/pages", Some(&a.access), 200).await["total"],
        1
    );
    assert_eq!(
        app.get("/api/pages", Some(&b.access), 200).await["total"],
        0
    );
}

#[tokio::test]
async fn admins_can_read_any_page_but_not_delete_it_here() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let admin = app.admin().await;
    let page = published_page(&app, &owner).await;
    let id = page["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/pages/{id}"), Some(&admin.access), 200)
            .await["access"],
        "admin"
    );
    app.call(
        Method::DELETE,
        &format!("/api/pages/{id}"),
        Some(&admin.access),
        None,
        403,
    )
    .await;
}

//! Chat storage rules that need no socket (the gateway itself is tested end to end in
//! `e2e/`, with real Socket.IO clients).

use backend::{chat::store::active_session, db::chat_session};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::{common::TestApp, pages::create_page};

#[tokio::test]
async fn simultaneous_first_joins_of_a_page_share_one_session() {
    let app = TestApp::spawn_with(&[]).await;
    let owner = app.register().await;
    let page = create_page(&app, &owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let joins = (0..8).map(|_| active_session(&app.state.db, &page, &owner.user_id, false));
    let sessions = futures::future::join_all(joins).await;
    let ids: Vec<String> = sessions.into_iter().map(|s| s.unwrap().id).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let stored = chat_session::Entity::find()
        .filter(chat_session::Column::PageId.eq(page.as_str()))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(stored, 1);

    // Asking for a new conversation does start one, and it becomes the active one.
    let fresh = active_session(&app.state.db, &page, &owner.user_id, true)
        .await
        .unwrap();
    assert_ne!(fresh.id, ids[0]);
    let again = active_session(&app.state.db, &page, &owner.user_id, false)
        .await
        .unwrap();
    assert_eq!(again.id, fresh.id);
}

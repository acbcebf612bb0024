//! The wedding context: everything the AI assistant may know about one page, as one
//! JSON document. Its shape is documented in docs/wedding-context.md and consumed by
//! agent-manager; change both together.

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use super::dto::local_time;
use crate::{db::page, error::Result, invitations::rsvp::summarize};

pub async fn build_wedding_context<C: ConnectionTrait>(
    db: &C,
    page: &page::Model,
) -> Result<Value> {
    let summary = summarize(db, &page.id).await?;
    let person = |p: &page::Person| json!({"name": p.name, "father": p.father, "mother": p.mother, "contact": p.contact});
    Ok(json!({
        "pageId": page.id,
        "slug": page.slug,
        "status": page.status,
        "couple": {"groom": person(&page.groom), "bride": person(&page.bride)},
        "wedding": {
            "dateTime": local_time(&page.wedding_at, &page.time_zone),
            "timeZone": page.time_zone,
        },
        "venue": page.venue,
        "greeting": page.greeting,
        "giftAccounts": page.gift_accounts.0,
        "rsvp": {
            "open": page.rsvp.open,
            "deadline": page.rsvp.deadline,
            "mealOptions": page.rsvp.meal_options,
            "allowOpen": page.rsvp.allow_open,
            "summary": summary,
        },
        "dressCode": page.dress_code,
        "schedule": page.schedule.0,
    }))
}

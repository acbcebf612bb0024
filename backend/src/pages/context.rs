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
    // A parent's phone reaches the assistant only when guests may see it too: a
    // number the couple hid is never repeated by the assistant to anyone.
    let parent = |d: &Option<page::Parent>| {
        d.as_ref().map(|d| {
            json!({
                "deceased": d.deceased,
                "phone": d.phone.clone().filter(|_| d.show_phone && !d.deceased),
            })
        })
    };
    let person = |p: &page::Person| {
        json!({
            "name": p.name, "father": p.father, "mother": p.mother, "contact": p.contact,
            "fatherDetails": parent(&p.father_details), "motherDetails": parent(&p.mother_details),
        })
    };
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

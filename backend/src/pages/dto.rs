//! What clients send and receive for pages.

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::access::Access;
use crate::db::page::{
    self, GiftAccount, PageStatus, Parent, Person, Plan, RsvpSettings, ScheduleItem, Venue,
};
use crate::files::GalleryItem;

pub const DEFAULT_TIME_ZONE: &str = "Asia/Seoul";
pub const DEFAULT_THEME: &str = "classic";

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "groom": {"name": "김민수", "contact": "010-1111-2222", "father": "김아버지", "mother": "이어머니",
              "fatherDetails": {"phone": "010-5555-6666", "showPhone": true},
              "motherDetails": {"deceased": true}},
    "bride": {"name": "이지영"},
    "weddingAt": "2027-05-15T12:30:00+09:00",
    "timeZone": "Asia/Seoul",
    "venue": {"name": "더채플앳청담", "hall": "3층 커티지홀", "address": "서울 강남구 선릉로 757",
              "lat": 37.5247, "lng": 127.0423},
    "greeting": "저희 두 사람의 시작을 함께해 주세요.",
    "giftAccounts": [{"side": "groom", "holder": "김민수", "bank": "신한은행", "number": "110-123-456789",
                      "kakaopayUrl": "https://qr.kakaopay.com/FZx2bq1Tq", "tossUrl": "https://toss.me/minsu"}],
    "rsvp": {"open": true, "mealOptions": ["한식", "양식"], "allowOpen": true},
    "schedule": [{"time": "12:30", "title": "예식"}]
}))]
pub struct PageIn {
    /// The page's address (`/p/<slug>`); generated when absent.
    #[validate(custom(function = "super::validate::slug"))]
    #[schema(
        min_length = 3,
        max_length = 40,
        pattern = "^[a-z0-9][a-z0-9-]*[a-z0-9]$"
    )]
    pub slug: Option<String>,
    #[validate(nested)]
    pub groom: Person,
    #[validate(nested)]
    pub bride: Person,
    /// Show the couple's phone numbers on the public page.
    #[serde(default)]
    pub show_contacts: bool,
    /// Date and time with its UTC offset, e.g. `2027-05-15T12:30:00+09:00`.
    pub wedding_at: DateTime<FixedOffset>,
    /// IANA time zone of the wedding; `Asia/Seoul` by default.
    #[validate(custom(function = "super::validate::time_zone"))]
    #[schema(example = "Asia/Seoul")]
    pub time_zone: Option<String>,
    #[validate(nested)]
    pub venue: Option<Venue>,
    #[validate(length(max = 2000))]
    #[schema(max_length = 2000)]
    pub greeting: Option<String>,
    #[validate(custom(function = "super::validate::theme"))]
    #[schema(min_length = 1, max_length = 32, pattern = "^[A-Za-z0-9_-]+$")]
    pub theme: Option<String>,
    #[validate(length(max = 6), nested)]
    #[schema(max_items = 6)]
    pub gift_accounts: Option<Vec<GiftAccount>>,
    #[validate(nested)]
    pub rsvp: Option<RsvpSettings>,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub dress_code: Option<String>,
    #[validate(length(max = 20), nested)]
    #[schema(max_items = 20)]
    pub schedule: Option<Vec<ScheduleItem>>,
}

/// Partial update: fields left out are unchanged; nested objects are replaced whole.
/// An empty `dressCode` clears it.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PagePatch {
    #[validate(custom(function = "super::validate::slug"))]
    #[schema(
        min_length = 3,
        max_length = 40,
        pattern = "^[a-z0-9][a-z0-9-]*[a-z0-9]$"
    )]
    pub slug: Option<String>,
    #[validate(nested)]
    pub groom: Option<Person>,
    #[validate(nested)]
    pub bride: Option<Person>,
    pub show_contacts: Option<bool>,
    pub wedding_at: Option<DateTime<FixedOffset>>,
    #[validate(custom(function = "super::validate::time_zone"))]
    #[schema(example = "Asia/Seoul")]
    pub time_zone: Option<String>,
    #[validate(nested)]
    pub venue: Option<Venue>,
    #[validate(length(max = 2000))]
    #[schema(max_length = 2000)]
    pub greeting: Option<String>,
    #[validate(custom(function = "super::validate::theme"))]
    #[schema(min_length = 1, max_length = 32, pattern = "^[A-Za-z0-9_-]+$")]
    pub theme: Option<String>,
    #[validate(length(max = 6), nested)]
    #[schema(max_items = 6)]
    pub gift_accounts: Option<Vec<GiftAccount>>,
    #[validate(nested)]
    pub rsvp: Option<RsvpSettings>,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub dress_code: Option<String>,
    #[validate(length(max = 20), nested)]
    #[schema(max_items = 20)]
    pub schedule: Option<Vec<ScheduleItem>>,
    /// The `version` this edit was made on (like `If-Match`): an older one is 412
    /// `stale_version` and nothing changes. Left out: the edit is applied anyway.
    pub version: Option<i32>,
}

/// The page as its owner and editors see it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageOut {
    pub id: String,
    pub owner_id: String,
    /// The caller's relation to the page.
    pub access: Access,
    pub slug: String,
    pub status: PageStatus,
    pub plan: Plan,
    pub groom: Person,
    pub bride: Person,
    pub show_contacts: bool,
    pub wedding_at: DateTime<Utc>,
    pub time_zone: String,
    /// `weddingAt` in the wedding's time zone.
    pub wedding_local: String,
    pub venue: Venue,
    pub greeting: String,
    pub theme: String,
    pub gallery: Vec<String>,
    /// Set with `PUT /api/pages/{id}/cover`.
    pub cover_file_id: Option<String>,
    pub gift_accounts: Vec<GiftAccount>,
    pub rsvp: RsvpSettings,
    pub dress_code: Option<String>,
    pub schedule: Vec<ScheduleItem>,
    pub view_count: i64,
    pub published_at: Option<DateTime<Utc>>,
    /// Raised by every edit of the content; also the `ETag` of `GET`/`PATCH`. Send it
    /// back as `If-Match: "<version>"` (or `version`) to save without overwriting a
    /// concurrent edit.
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PageOut {
    pub fn new(p: page::Model, access: Access, pending_views: i64) -> Self {
        PageOut {
            wedding_local: local_time(&p.wedding_at, &p.time_zone),
            id: p.id,
            owner_id: p.owner_id,
            access,
            slug: p.slug,
            status: p.status,
            plan: p.plan,
            groom: p.groom,
            bride: p.bride,
            show_contacts: p.show_contacts,
            wedding_at: p.wedding_at,
            time_zone: p.time_zone,
            venue: p.venue,
            greeting: p.greeting,
            theme: p.theme,
            gallery: p.gallery.0,
            cover_file_id: p.cover_file_id,
            gift_accounts: p.gift_accounts.0,
            rsvp: p.rsvp,
            dress_code: p.dress_code,
            schedule: p.schedule.0,
            view_count: p.view_count + pending_views,
            published_at: p.published_at,
            version: p.version,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A person as guests see them: no phone number unless the couple opted in; a
/// parent's name and phone only as the couple chose (`fatherDetails.showName`, ...).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicPerson {
    pub name: String,
    /// `null` when not given or hidden.
    pub father: Option<String>,
    pub mother: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// What guests may see of the father; absent when nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub father_details: Option<PublicParent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mother_details: Option<PublicParent>,
}

/// A parent as guests see them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicParent {
    /// The name as it is shown, `故 ` first for a deceased parent (`故 김아버지`);
    /// `null` when the name is hidden.
    pub display_name: Option<String>,
    /// Deceased (故): the frontend shows the marker before the name.
    pub deceased: bool,
    /// Only when the couple shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

impl PublicParent {
    fn new(name: Option<&str>, details: Option<&Parent>) -> Option<Self> {
        let display_name = Person::parent_display_name(name, details);
        let phone = details
            .filter(|d| d.show_phone && !d.deceased)
            .and_then(|d| d.phone.clone());
        if display_name.is_none() && phone.is_none() {
            return None;
        }
        Some(PublicParent {
            deceased: display_name.is_some() && details.is_some_and(|d| d.deceased),
            display_name,
            phone,
        })
    }
}

impl PublicPerson {
    fn new(p: Person, show_contact: bool) -> Self {
        let shown = |name: &Option<String>, details: &Option<Parent>| {
            name.clone()
                .filter(|_| details.as_ref().is_none_or(|d| d.show_name))
        };
        PublicPerson {
            father_details: PublicParent::new(p.father.as_deref(), p.father_details.as_ref()),
            mother_details: PublicParent::new(p.mother.as_deref(), p.mother_details.as_ref()),
            father: shown(&p.father, &p.father_details),
            mother: shown(&p.mother, &p.mother_details),
            name: p.name,
            contact: if show_contact { p.contact } else { None },
        }
    }
}

/// What guests see of a published page.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicPageOut {
    pub slug: String,
    pub groom: PublicPerson,
    pub bride: PublicPerson,
    pub wedding_at: DateTime<Utc>,
    pub time_zone: String,
    pub wedding_local: String,
    pub venue: Venue,
    pub greeting: String,
    pub theme: String,
    /// The gallery's pictures in order, with stable thumbnail and full-size links.
    pub gallery: Vec<GalleryItem>,
    /// The cover picture, when the couple set one (stable links like the gallery's).
    pub cover: Option<GalleryItem>,
    pub gift_accounts: Vec<GiftAccount>,
    pub rsvp: PublicRsvpSettings,
    pub dress_code: Option<String>,
    pub schedule: Vec<ScheduleItem>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicRsvpSettings {
    /// Open and before the deadline.
    pub accepting: bool,
    pub deadline: Option<DateTime<Utc>>,
    pub meal_options: Vec<String>,
    pub allow_open: bool,
}

impl PublicPageOut {
    /// `gallery` comes from [`crate::files::gallery_items`] (it needs storage links).
    pub fn new(p: page::Model, gallery: Vec<GalleryItem>) -> Self {
        let accepting = super::rsvp_accepting(&p.rsvp);
        PublicPageOut {
            wedding_local: local_time(&p.wedding_at, &p.time_zone),
            slug: p.slug,
            groom: PublicPerson::new(p.groom, p.show_contacts),
            bride: PublicPerson::new(p.bride, p.show_contacts),
            wedding_at: p.wedding_at,
            time_zone: p.time_zone,
            venue: p.venue,
            greeting: p.greeting,
            theme: p.theme,
            gallery,
            cover: None,
            gift_accounts: p.gift_accounts.0,
            rsvp: PublicRsvpSettings {
                accepting,
                deadline: p.rsvp.deadline,
                meal_options: p.rsvp.meal_options,
                allow_open: p.rsvp.allow_open,
            },
            dress_code: p.dress_code,
            schedule: p.schedule.0,
        }
    }
}

/// RFC 3339 in the wedding's own zone (falls back to UTC for an unknown zone).
pub fn local_time(at: &DateTime<Utc>, zone: &str) -> String {
    match zone.parse::<Tz>() {
        Ok(tz) => at.with_timezone(&tz).to_rfc3339(),
        Err(_) => at.to_rfc3339(),
    }
}

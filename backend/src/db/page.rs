//! The wedding invitation page. Nested parts (the couple, venue, gift accounts, RSVP
//! settings, gallery, schedule) are typed JSON documents.

use chrono::{DateTime, Utc};
use sea_orm::{FromJsonQueryResult, entity::prelude::*};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "pages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub owner_id: String,
    #[sea_orm(unique)]
    pub slug: String,
    pub status: PageStatus,
    pub plan: Plan,
    pub groom: Person,
    pub bride: Person,
    pub show_contacts: bool,
    pub wedding_at: DateTimeUtc,
    pub time_zone: String,
    pub venue: Venue,
    pub greeting: String,
    pub theme: String,
    pub gallery: FileIds,
    pub gift_accounts: GiftAccounts,
    pub rsvp: RsvpSettings,
    pub dress_code: Option<String>,
    pub schedule: Schedule,
    pub view_count: i64,
    pub published_at: Option<DateTimeUtc>,
    /// Raised by every content edit (the page's `ETag`); a save that names an older
    /// version is refused with 412.
    pub version: i32,
    /// A picture of the page's owner shown in share previews; `None` uses the first
    /// gallery picture.
    pub cover_file_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize, ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum PageStatus {
    #[sea_orm(string_value = "draft")]
    Draft,
    #[sea_orm(string_value = "published")]
    Published,
    #[sea_orm(string_value = "archived")]
    Archived,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize, ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    #[sea_orm(string_value = "free")]
    Free,
    #[sea_orm(string_value = "premium")]
    Premium,
}

/// Which family a guest, an account or an answer belongs to.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(8))")]
#[serde(rename_all = "snake_case")]
pub enum Side {
    #[sea_orm(string_value = "groom")]
    Groom,
    #[sea_orm(string_value = "bride")]
    Bride,
}

#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    FromJsonQueryResult,
    ToSchema,
    Validate,
)]
#[serde(rename_all = "camelCase")]
#[validate(schema(function = "crate::pages::validate::parents"))]
pub struct Person {
    #[validate(length(min = 1, max = 30))]
    #[schema(min_length = 1, max_length = 30)]
    pub name: String,
    /// The father's name (without 故: that is `fatherDetails.deceased`).
    #[validate(length(max = 30))]
    #[schema(max_length = 30)]
    pub father: Option<String>,
    #[validate(length(max = 30))]
    #[schema(max_length = 30)]
    pub mother: Option<String>,
    /// Phone number; public only when the page opts in with `showContacts`.
    #[validate(custom(function = "crate::pages::validate::phone"))]
    #[schema(max_length = 20, pattern = "^[0-9+ -]+$", example = "010-1234-5678")]
    pub contact: Option<String>,
    /// The father's phone, the 故 marker and what guests see of him (needs `father`).
    #[serde(default)]
    #[validate(nested)]
    pub father_details: Option<Parent>,
    /// The mother's, like `fatherDetails` (needs `mother`).
    #[serde(default)]
    #[validate(nested)]
    pub mother_details: Option<Parent>,
}

/// A parent's (혼주) contact, the deceased marker and per-field visibility. The name
/// is the person's `father` / `mother`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct Parent {
    #[validate(custom(function = "crate::pages::validate::phone"))]
    #[schema(max_length = 20, pattern = "^[0-9+ -]+$", example = "010-1234-5678")]
    pub phone: Option<String>,
    /// Deceased: the page shows 故 before the name (and never a phone).
    #[serde(default)]
    pub deceased: bool,
    /// Whether guests see the name (public page, share preview, calendar).
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub show_name: bool,
    /// Whether guests see the phone number.
    #[serde(default)]
    pub show_phone: bool,
}

impl Person {
    /// The parent's name as guests may see it (`故 ` before a deceased parent's),
    /// or `None` when there is no name or it is hidden.
    pub fn parent_display_name(name: Option<&str>, details: Option<&Parent>) -> Option<String> {
        let name = name.map(str::trim).filter(|n| !n.is_empty())?;
        match details {
            Some(d) if !d.show_name => None,
            Some(d) if d.deceased => Some(format!("故 {name}")),
            _ => Some(name.to_owned()),
        }
    }

    /// The parents' names guests may see: `김아버지 · 故 이어머니`.
    pub fn public_parents(&self) -> Option<String> {
        let names: Vec<String> = [
            Self::parent_display_name(self.father.as_deref(), self.father_details.as_ref()),
            Self::parent_display_name(self.mother.as_deref(), self.mother_details.as_ref()),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!names.is_empty()).then(|| names.join(" · "))
    }
}

#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Serialize,
    Deserialize,
    FromJsonQueryResult,
    ToSchema,
    Validate,
)]
#[serde(rename_all = "camelCase")]
pub struct Venue {
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub name: Option<String>,
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub hall: Option<String>,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub address: Option<String>,
    #[validate(range(min = -90.0, max = 90.0))]
    #[schema(minimum = -90.0, maximum = 90.0)]
    pub lat: Option<f64>,
    #[validate(range(min = -180.0, max = 180.0))]
    #[schema(minimum = -180.0, maximum = 180.0)]
    pub lng: Option<f64>,
    #[validate(length(max = 1000))]
    #[schema(max_length = 1000)]
    pub transport: Option<String>,
    #[validate(length(max = 1000))]
    #[schema(max_length = 1000)]
    pub parking: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase")]
#[validate(schema(function = "crate::pages::validate::toss_names_the_account"))]
pub struct GiftAccount {
    pub side: Side,
    #[validate(length(min = 1, max = 30))]
    #[schema(min_length = 1, max_length = 30)]
    pub holder: String,
    #[validate(length(min = 1, max = 30))]
    #[schema(min_length = 1, max_length = 30)]
    pub bank: String,
    #[validate(custom(function = "crate::pages::validate::account_number"))]
    #[schema(max_length = 40, pattern = "^[0-9-]+$")]
    pub number: String,
    /// KakaoPay transfer link — the 송금코드 (money code) link the KakaoPay app
    /// shares or shows as a QR code: `https://qr.kakaopay.com/<code>`.
    #[serde(default)]
    #[validate(custom(function = "crate::pages::validate::kakaopay_url"))]
    #[schema(
        max_length = 200,
        pattern = "^https://qr\\.kakaopay\\.com/[A-Za-z0-9]+$",
        example = "https://qr.kakaopay.com/FZx2bq1Tq"
    )]
    pub kakaopay_url: Option<String>,
    /// Toss transfer link: a 토스아이디 link `https://toss.me/<id>` (optionally
    /// `/<amount>`), or the app's transfer link
    /// `supertoss://send?bank=<bank>&accountNo=<this account's number>` (optional
    /// `amount`, `origin`) — which must name this very account.
    #[serde(default)]
    #[validate(custom(function = "crate::pages::validate::toss_url"))]
    #[schema(max_length = 200, example = "https://toss.me/minsu")]
    pub toss_url: Option<String>,
}

#[derive(
    Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult, ToSchema,
)]
pub struct GiftAccounts(pub Vec<GiftAccount>);

#[derive(
    Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult, ToSchema,
)]
pub struct FileIds(pub Vec<String>);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleItem {
    /// Local time, `HH:MM`.
    #[validate(custom(function = "crate::pages::validate::hh_mm"))]
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "12:30")]
    pub time: String,
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub title: String,
}

#[derive(
    Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult, ToSchema,
)]
pub struct Schedule(pub Vec<ScheduleItem>);

#[derive(
    Clone, Debug, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult, ToSchema, Validate,
)]
#[serde(rename_all = "camelCase")]
pub struct RsvpSettings {
    /// Whether guests may answer at all.
    #[serde(default = "yes")]
    pub open: bool,
    /// No answers (new or changed) after this instant.
    pub deadline: Option<DateTime<Utc>>,
    /// Choices offered to guests; empty means no meal question.
    #[serde(default)]
    #[validate(
        length(max = 10),
        custom(function = "crate::pages::validate::meal_options")
    )]
    #[schema(max_items = 10)]
    pub meal_options: Vec<String>,
    /// Whether the public page takes answers from anyone (name + phone), not only
    /// from guests with an invitation code.
    #[serde(default)]
    pub allow_open: bool,
}

fn yes() -> bool {
    true
}

impl Default for RsvpSettings {
    fn default() -> Self {
        RsvpSettings {
            open: true,
            deadline: None,
            meal_options: Vec::new(),
            allow_open: false,
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

crate::db::timestamped_active_model!();

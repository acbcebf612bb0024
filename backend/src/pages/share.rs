//! Share previews and "add to calendar" for a published page, for guests and for
//! crawlers that fetch without JavaScript (KakaoTalk, iMessage, Slack, ...):
//! `GET /api/public/pages/{slug}/share` (JSON), `.../share.html` (Open Graph and
//! Twitter tags) and `.../calendar.ics` (RFC 5545).

use std::fmt::Write as _;

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use sea_orm::EntityTrait;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::public::find_published;
use crate::{
    db::{file, page},
    error::{ErrorBody, Result},
    extract::{ClientIp, Path},
    files::{inspect::Kind, public_images::image_url, signing::Variant},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_share))
        .routes(routes!(get_share_html))
        .routes(routes!(get_calendar))
}

/// What a share preview shows.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShareOut {
    /// e.g. `김민수 ♥ 이지영 결혼합니다`.
    pub title: String,
    /// Date, time and venue in the wedding's zone, e.g. `2099년 5월 15일 (금) 오후 12:30 · 더채플앳청담 3층 커티지홀`.
    pub description: String,
    /// The cover picture, else the first gallery picture (stable link), else `null`.
    pub image_url: Option<String>,
    pub image_width: Option<i32>,
    pub image_height: Option<i32>,
    /// The parents' names guests may see (hidden ones left out), e.g.
    /// `신랑측 혼주 김아버지 · 故 이어머니 / 신부측 혼주 이아버지`; `null` when none.
    pub hosts: Option<String>,
    /// The guests' page: `PUBLIC_WEB_BASE_URL` + `/p/<slug>`.
    pub url: String,
    pub calendar_url: String,
}

async fn share_of(state: &AppState, page: &page::Model) -> Result<ShareOut> {
    let picture_id = page
        .cover_file_id
        .clone()
        .or_else(|| page.gallery.0.first().cloned());
    let picture = match picture_id {
        Some(id) => file::Entity::find_by_id(id)
            .one(&state.db)
            .await?
            .filter(|f| f.status == file::FileStatus::Ready),
        None => None,
    };
    // Link-preview crawlers show JPEG, PNG, GIF and WebP: a HEIC cover is shared as
    // its largest JPEG rendition.
    let shared = picture.as_ref().and_then(|f| {
        if f.content_type != Kind::Heic.mime() {
            return Some((Variant::Original, f.width, f.height));
        }
        let r = f.renditions.as_ref()?.0.last()?;
        Some((r.variant, Some(r.width as i32), Some(r.height as i32)))
    });
    let (image_url, image_width, image_height) = match (&picture, shared) {
        (Some(f), Some((variant, w, h))) => (image_url(&state.cfg, f, variant), w, h),
        _ => (None, None, None),
    };
    Ok(ShareOut {
        title: format!("{} ♥ {} 결혼합니다", page.groom.name, page.bride.name),
        description: description(page),
        image_url,
        image_width,
        image_height,
        hosts: hosts(page),
        url: format!("{}/p/{}", state.cfg.public_web_base_url, page.slug),
        calendar_url: format!(
            "{}/api/public/pages/{}/calendar.ics",
            state.cfg.files.public_base_url, page.slug
        ),
    })
}

/// The parents of each side whose names guests may see.
fn hosts(page: &page::Model) -> Option<String> {
    let sides: Vec<String> = [("신랑측", &page.groom), ("신부측", &page.bride)]
        .into_iter()
        .filter_map(|(side, p)| Some(format!("{side} 혼주 {}", p.public_parents()?)))
        .collect();
    (!sides.is_empty()).then(|| sides.join(" / "))
}

fn venue_line(page: &page::Model) -> String {
    [page.venue.name.as_deref(), page.venue.hall.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `2099년 5월 15일 (금) 오후 12:30 · 더채플앳청담 3층 커티지홀`.
fn description(page: &page::Model) -> String {
    let tz: Tz = page.time_zone.parse().unwrap_or(chrono_tz::Asia::Seoul);
    let local = page.wedding_at.with_timezone(&tz);
    let weekday = ["월", "화", "수", "목", "금", "토", "일"]
        [chrono::Datelike::weekday(&local).num_days_from_monday() as usize];
    let (pm, hour) = chrono::Timelike::hour12(&local);
    let when = format!(
        "{} ({weekday}) {} {hour}:{:02}",
        local.format("%Y년 %-m월 %-d일"),
        if pm { "오후" } else { "오전" },
        chrono::Timelike::minute(&local)
    );
    match venue_line(page) {
        v if v.is_empty() => when,
        v => format!("{when} · {v}"),
    }
}

/// Share preview data for a published page (no account; counts no view).
#[utoipa::path(get, path = "/pages/{slug}/share", tag = "public",
    responses((status = 200, body = ShareOut), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn get_share(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(slug): Path<String>,
) -> Result<Json<ShareOut>> {
    state.limiters.public_read.check(&ip)?;
    let page = find_published(&state.db, &slug).await?;
    Ok(Json(share_of(&state, &page).await?))
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A tiny HTML page with Open Graph and Twitter tags for crawlers that run no
/// JavaScript; people who open it are sent on to the page.
#[utoipa::path(get, path = "/pages/{slug}/share.html", tag = "public",
    responses((status = 200, content_type = "text/html", body = String), (status = 404, body = ErrorBody)))]
async fn get_share_html(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(slug): Path<String>,
) -> Result<Response> {
    state.limiters.public_read.check(&ip)?;
    let page = find_published(&state.db, &slug).await?;
    let share = share_of(&state, &page).await?;
    let (title, desc, url) = (
        html_escape(&share.title),
        html_escape(&share.description),
        html_escape(&share.url),
    );
    let hosts = share
        .hosts
        .as_deref()
        .map(|h| format!("<p>{}</p>", html_escape(h)))
        .unwrap_or_default();
    let mut meta = format!(
        "<meta property=\"og:type\" content=\"website\">\n\
         <meta property=\"og:site_name\" content=\"모청\">\n\
         <meta property=\"og:title\" content=\"{title}\">\n\
         <meta property=\"og:description\" content=\"{desc}\">\n\
         <meta property=\"og:url\" content=\"{url}\">\n\
         <meta name=\"twitter:title\" content=\"{title}\">\n\
         <meta name=\"twitter:description\" content=\"{desc}\">\n"
    );
    match &share.image_url {
        Some(img) => {
            let img = html_escape(img);
            let _ = write!(
                meta,
                "<meta property=\"og:image\" content=\"{img}\">\n\
                 <meta name=\"twitter:card\" content=\"summary_large_image\">\n\
                 <meta name=\"twitter:image\" content=\"{img}\">\n"
            );
            if let (Some(w), Some(h)) = (share.image_width, share.image_height) {
                let _ = write!(
                    meta,
                    "<meta property=\"og:image:width\" content=\"{w}\">\n\
                     <meta property=\"og:image:height\" content=\"{h}\">\n"
                );
            }
        }
        None => meta.push_str("<meta name=\"twitter:card\" content=\"summary\">\n"),
    }
    let body = format!(
        "<!doctype html>\n<html lang=\"ko\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<meta name=\"description\" content=\"{desc}\">\n{meta}\
         <meta http-equiv=\"refresh\" content=\"0; url={url}\">\n</head>\n\
         <body><p><a href=\"{url}\">{title}</a></p><p>{desc}</p>{hosts}</body>\n</html>\n"
    );
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Crawlers cache previews themselves; a few minutes keeps edits visible soon.
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(res)
}

/// iCalendar TEXT escaping (RFC 5545 §3.3.11).
fn ics_text(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace("\r\n", "\\n")
        .replace('\n', "\\n")
}

/// Folds a content line at 75 octets without splitting a UTF-8 character (§3.1).
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
}

/// A map link for the venue: Kakao Map at the coordinates, or a search by address.
fn map_link(page: &page::Model) -> Option<String> {
    let name = page.venue.name.clone().unwrap_or_default();
    match (page.venue.lat, page.venue.lng) {
        (Some(lat), Some(lng)) => Some(format!(
            "https://map.kakao.com/link/map/{},{lat},{lng}",
            url_component(&name)
        )),
        _ => page
            .venue
            .address
            .as_deref()
            .map(|a| format!("https://map.kakao.com/link/search/{}", url_component(a))),
    }
}

fn url_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// How long the calendar entry lasts: a ceremony and its reception.
const EVENT_HOURS: i64 = 2;

fn ics_time(at: DateTime<Utc>, tz: Option<Tz>) -> String {
    match tz {
        Some(tz) => format!(
            ";TZID={}:{}",
            tz.name(),
            at.with_timezone(&tz).format("%Y%m%dT%H%M%S")
        ),
        None => format!(":{}", at.format("%Y%m%dT%H%M%SZ")),
    }
}

/// The wedding as an iCalendar event.
pub fn calendar(page: &page::Model, share: &ShareOut, now: DateTime<Utc>) -> String {
    // Korea has had one offset and no daylight saving since 1988: its VTIMEZONE is one
    // fixed STANDARD block. Other zones are written in UTC, which every client reads.
    let seoul = (page.time_zone == "Asia/Seoul").then_some(chrono_tz::Asia::Seoul);
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//Mocheong//Wedding invitation//KO".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
        "METHOD:PUBLISH".to_owned(),
    ];
    if seoul.is_some() {
        lines.extend(
            [
                "BEGIN:VTIMEZONE",
                "TZID:Asia/Seoul",
                "BEGIN:STANDARD",
                "DTSTART:19700101T000000",
                "TZOFFSETFROM:+0900",
                "TZOFFSETTO:+0900",
                "TZNAME:KST",
                "END:STANDARD",
                "END:VTIMEZONE",
            ]
            .map(str::to_owned),
        );
    }
    let map = map_link(page);
    let mut description = share.description.clone();
    if !page.greeting.trim().is_empty() {
        description = format!("{}\n\n{description}", page.greeting.trim());
    }
    if let Some(h) = &share.hosts {
        description.push_str(&format!("\n{h}"));
    }
    if let Some(m) = &map {
        description.push_str(&format!("\n지도: {m}"));
    }
    let location = [
        venue_line(page),
        page.venue.address.clone().unwrap_or_default(),
    ]
    .into_iter()
    .filter(|s| !s.trim().is_empty())
    .collect::<Vec<_>>()
    .join(", ");
    lines.extend([
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}@mocheong", page.id),
        format!("DTSTAMP:{}", now.format("%Y%m%dT%H%M%SZ")),
        format!("DTSTART{}", ics_time(page.wedding_at, seoul)),
        format!(
            "DTEND{}",
            ics_time(page.wedding_at + Duration::hours(EVENT_HOURS), seoul)
        ),
        format!("SUMMARY:{}", ics_text(&share.title)),
        format!("DESCRIPTION:{}", ics_text(&description)),
        format!("URL:{}", share.url),
    ]);
    if !location.is_empty() {
        lines.push(format!("LOCATION:{}", ics_text(&location)));
    }
    if let (Some(lat), Some(lng)) = (page.venue.lat, page.venue.lng) {
        lines.push(format!("GEO:{lat};{lng}"));
    }
    lines.extend(["END:VEVENT".to_owned(), "END:VCALENDAR".to_owned()]);
    let mut out = String::new();
    for line in lines {
        fold(&line, &mut out);
    }
    out
}

/// "Add to calendar": the wedding as an RFC 5545 file.
#[utoipa::path(get, path = "/pages/{slug}/calendar.ics", tag = "public",
    responses((status = 200, content_type = "text/calendar", body = String), (status = 404, body = ErrorBody)))]
async fn get_calendar(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(slug): Path<String>,
) -> Result<Response> {
    state.limiters.public_read.check(&ip)?;
    let page = find_published(&state.db, &slug).await?;
    let share = share_of(&state, &page).await?;
    let mut res = calendar(&page, &share, Utc::now()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/calendar; charset=utf-8"),
    );
    res.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"wedding.ics\""),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn folding_keeps_utf8_whole() {
        let mut out = String::new();
        fold(&format!("SUMMARY:{}", "가".repeat(40)), &mut out);
        for line in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{} octets", line.len());
        }
        assert_eq!(
            out.replace("\r\n ", ""),
            format!("SUMMARY:{}\r\n", "가".repeat(40))
        );
    }
}

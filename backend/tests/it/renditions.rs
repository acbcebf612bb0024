//! Pictures in several sizes for `srcset`, and HEIC photos every browser can show:
//! uploads get JPEG renditions of at most 480 and 1080 px on the longest side (never
//! upscaled; a HEIC gets JPEGs even when small), listed as `thumbnails`/`srcset` and
//! served on stable links; a truncated or pixel-flooding HEIC is refused; files stored
//! before get their sizes from the backfill. On both storage backends.

use backend::{
    db::file::{self, Variant},
    files::{renditions::backfill_once, service::rendition_key},
};
use image::ImageFormat;
use reqwest::Method;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, IntoActiveModel};
use serde_json::{Value, json};

use crate::{
    common::{Session, TestApp, error_code},
    files::{BOTH, form, picture, row, send_form, spawn, stage_and_complete, upload},
    pages::published_page,
};

/// A HEIC of the given size, encoded with libheif's HEVC encoder (x265).
pub(crate) fn heic(width: u32, height: u32) -> Vec<u8> {
    use libheif_rs::{
        Channel, ColorSpace, CompressionFormat, EncoderParameterValue, EncoderQuality, HeifContext,
        Image, LibHeif, RgbChroma,
    };
    let mut image = Image::new(width, height, ColorSpace::Rgb(RgbChroma::C444)).unwrap();
    for channel in [Channel::R, Channel::G, Channel::B] {
        image.create_plane(channel, width, height, 8).unwrap();
    }
    let planes = image.planes_mut();
    for (i, plane) in [planes.r, planes.g, planes.b].into_iter().enumerate() {
        let plane = plane.unwrap();
        for y in 0..height as usize {
            for x in 0..width as usize {
                plane.data[y * plane.stride + x] = ((x * (i + 1) + y * 3) % 256) as u8;
            }
        }
    }
    let lib = LibHeif::new();
    let mut ctx = HeifContext::new().unwrap();
    let mut encoder = lib
        .encoder_for_format(CompressionFormat::Hevc)
        .expect("libheif has an HEVC encoder (Debian's libheif1 has x265 built in)");
    encoder.set_quality(EncoderQuality::Lossy(50)).unwrap();
    // Test pictures need not be small, only quick to make.
    encoder
        .set_parameter_value("preset", EncoderParameterValue::String("ultrafast".into()))
        .unwrap();
    ctx.encode_image(&image, &mut encoder, None).unwrap();
    ctx.write_to_bytes().unwrap()
}

const BASE: &str = "https://api.example.com";

/// Attaches the files to the page's gallery and returns the public page.
async fn show(app: &TestApp, owner: &Session, page: &Value, ids: &[&str]) -> Value {
    let id = page["id"].as_str().unwrap();
    app.call(
        Method::PUT,
        &format!("/api/pages/{id}/gallery"),
        Some(&owner.access),
        Some(json!({"fileIds": ids})),
        200,
    )
    .await;
    public(app, page).await
}

async fn public(app: &TestApp, page: &Value) -> Value {
    let slug = page["slug"].as_str().unwrap();
    app.get(&format!("/api/public/pages/{slug}"), None, 200)
        .await
}

/// Fetches a public link from this server; returns its content type and bytes.
async fn fetch(app: &TestApp, url: &str) -> (String, Vec<u8>) {
    let res = app
        .http
        .get(url.replace(BASE, &app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{url}");
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    (ct, res.bytes().await.unwrap().to_vec())
}

fn sizes(item: &Value) -> Vec<(u64, u64)> {
    item["thumbnails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["width"].as_u64().unwrap(), t["height"].as_u64().unwrap()))
        .collect()
}

/// Every listed thumbnail is a JPEG of exactly the size the list gives.
async fn assert_thumbnails_decode(app: &TestApp, item: &Value) {
    for t in item["thumbnails"].as_array().unwrap() {
        let (ct, bytes) = fetch(app, t["url"].as_str().unwrap()).await;
        assert_eq!(ct, "image/jpeg");
        let img = image::load_from_memory_with_format(&bytes, ImageFormat::Jpeg).unwrap();
        assert_eq!(
            (u64::from(img.width()), u64::from(img.height())),
            (t["width"].as_u64().unwrap(), t["height"].as_u64().unwrap())
        );
    }
}

#[tokio::test]
async fn heic_photos_get_jpeg_sizes_every_browser_shows() {
    let photo = heic(1600, 1200);
    for backend in BOTH {
        let app = spawn(backend, &[("FILES_PUBLIC_BASE_URL", BASE)]).await;
        let owner = app.register().await;
        let page = published_page(&app, &owner).await;
        // Phones send HEIC as octet-stream or image/heif as often as image/heic.
        let file = send_form(
            &app,
            &owner.access,
            form(
                "gallery",
                "IMG_0001.HEIC",
                "application/octet-stream",
                photo.clone(),
            ),
            201,
        )
        .await;
        assert_eq!(file["contentType"], "image/heic");
        assert_eq!(
            (file["width"].as_u64(), file["height"].as_u64()),
            (Some(1600), Some(1200))
        );
        assert_eq!(file["hasThumbnail"], true);
        assert_eq!(file["renditions"].as_array().unwrap().len(), 2);
        let id = file["id"].as_str().unwrap();

        let shown = show(&app, &owner, &page, &[id]).await;
        let item = &shown["gallery"][0];
        assert_eq!(
            sizes(item),
            [(480, 360), (1080, 810)],
            "{backend:?}: {item}"
        );
        assert_thumbnails_decode(&app, item).await;
        let thumb = item["thumbUrl"].as_str().unwrap();
        assert_eq!(
            thumb, item["thumbnails"][0]["url"],
            "thumbUrl is the 480 px JPEG"
        );
        assert!(thumb.contains("/thumb/"), "{thumb}");
        // The original stays HEIC (for downloads) and is left out of the srcset.
        let (ct, bytes) = fetch(&app, item["url"].as_str().unwrap()).await;
        assert_eq!((ct.as_str(), bytes), ("image/heic", photo.clone()));
        let srcset = item["srcset"].as_str().unwrap();
        assert_eq!(srcset.matches(", ").count(), 1, "two candidates: {srcset}");
        assert!(srcset.ends_with(" 1080w") && !srcset.contains(item["url"].as_str().unwrap()));

        // The owner's view lists the same sizes on signed links.
        let gallery = app
            .get(
                &format!("/api/pages/{}/gallery", page["id"].as_str().unwrap()),
                Some(&owner.access),
                200,
            )
            .await;
        let own = &gallery["items"][0];
        assert_eq!(sizes(own), [(480, 360), (1080, 810)]);
        for t in own["thumbnails"].as_array().unwrap() {
            let res = app
                .http
                .get(t["url"].as_str().unwrap().replace(BASE, &app.base))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(res.headers()["content-type"], "image/jpeg");
        }

        // A HEIC cover is shared as a JPEG: crawlers do not read HEIC.
        app.call(
            Method::PUT,
            &format!("/api/pages/{}/cover", page["id"].as_str().unwrap()),
            Some(&owner.access),
            Some(json!({"fileId": id})),
            200,
        )
        .await;
        let share = app
            .get(
                &format!("/api/public/pages/{}/share", page["slug"].as_str().unwrap()),
                None,
                200,
            )
            .await;
        let og = share["imageUrl"].as_str().unwrap();
        assert!(og.contains("/large/"), "{og}");
        assert_eq!(
            (share["imageWidth"].as_u64(), share["imageHeight"].as_u64()),
            (Some(1080), Some(810))
        );
        assert_eq!(fetch(&app, og).await.0, "image/jpeg");
    }
}

#[tokio::test]
async fn broken_and_flooding_heic_is_refused() {
    let app = spawn(BOTH[0], &[]).await;
    let owner = app.register().await;
    let photo = heic(320, 240);
    for cut in [photo.len() / 2, photo.len() * 9 / 10] {
        let err = send_form(
            &app,
            &owner.access,
            form("gallery", "cut.heic", "image/heic", photo[..cut].to_vec()),
            415,
        )
        .await;
        assert_eq!(error_code(&err), "invalid_image", "cut at {cut}: {err}");
    }
    // The container announces 11000×11000: refused before a pixel is decoded.
    let mut flood = photo.clone();
    let at = flood.windows(4).position(|w| w == b"ispe").unwrap();
    flood[at + 8..at + 12].copy_from_slice(&11_000u32.to_be_bytes());
    flood[at + 12..at + 16].copy_from_slice(&11_000u32.to_be_bytes());
    let err = send_form(
        &app,
        &owner.access,
        form("gallery", "big.heic", "image/heic", flood),
        422,
    )
    .await;
    assert_eq!(error_code(&err), "image_too_large");
    // The direct upload checks the same way when it is completed.
    let declared = json!({"purpose": "gallery", "fileName": "cut.heic", "contentType": "image/heic", "size": photo.len() / 2});
    let (_, _, err) =
        stage_and_complete(&app, &owner, declared, &photo[..photo.len() / 2], 415).await;
    assert_eq!(error_code(&err), "invalid_image");
    let declared = json!({"purpose": "gallery", "fileName": "ok.heic", "contentType": "image/heic", "size": photo.len()});
    let (_, _, done) = stage_and_complete(&app, &owner, declared, &photo, 200).await;
    assert_eq!(done["renditions"][0]["variant"], "thumb");
    assert_eq!(
        (done["width"].as_u64(), done["height"].as_u64()),
        (Some(320), Some(240))
    );
}

#[tokio::test]
async fn web_pictures_get_the_sizes_they_are_larger_than() {
    for backend in BOTH {
        let app = spawn(backend, &[("FILES_PUBLIC_BASE_URL", BASE)]).await;
        let owner = app.register().await;
        let page = published_page(&app, &owner).await;
        let big = upload(
            &app,
            &owner,
            "gallery",
            "big.png",
            "image/png",
            picture(1500, 2000, ImageFormat::Png),
        )
        .await;
        let small = upload(
            &app,
            &owner,
            "gallery",
            "small.jpg",
            "image/jpeg",
            picture(400, 300, ImageFormat::Jpeg),
        )
        .await;
        let shown = show(
            &app,
            &owner,
            &page,
            &[big["id"].as_str().unwrap(), small["id"].as_str().unwrap()],
        )
        .await;
        let (big, small) = (&shown["gallery"][0], &shown["gallery"][1]);
        // Portrait: the longest side is the height.
        assert_eq!(sizes(big), [(360, 480), (810, 1080)], "{backend:?}");
        assert_thumbnails_decode(&app, big).await;
        let srcset = big["srcset"].as_str().unwrap();
        assert!(
            srcset.ends_with(&format!("{} 1500w", big["url"].as_str().unwrap())),
            "{srcset}"
        );
        // Never upscaled: a small picture has no renditions and is its own thumbnail.
        assert_eq!(sizes(small), []);
        assert_eq!(small["thumbUrl"], small["url"]);
        assert_eq!(
            small["srcset"],
            format!("{} 400w", small["url"].as_str().unwrap())
        );
    }
}

/// Puts a file back as it was stored before renditions: no record, no large size
/// (and for a HEIC no thumbnail and no dimensions either).
async fn as_stored_before(app: &TestApp, id: &str, heic: bool) -> file::Model {
    let row = row(app, id).await.unwrap();
    app.state
        .storage
        .delete(&rendition_key(&row, Variant::Large))
        .await
        .unwrap();
    let mut active = row.clone().into_active_model();
    active.renditions = Set(None);
    if heic {
        app.state
            .storage
            .delete(&rendition_key(&row, Variant::Thumb))
            .await
            .unwrap();
        active.thumb_key = Set(None);
        active.width = Set(None);
        active.height = Set(None);
    }
    active.update(&app.state.db).await.unwrap()
}

#[tokio::test]
async fn files_stored_before_get_their_sizes_from_the_backfill() {
    for backend in BOTH {
        // The background round is kept out of the way; this test runs it itself.
        let app = spawn(
            backend,
            &[
                ("FILES_PUBLIC_BASE_URL", BASE),
                ("FILES_SWEEP_INTERVAL_SECS", "3600"),
            ],
        )
        .await;
        let owner = app.register().await;
        let page = published_page(&app, &owner).await;
        let jpeg = upload(
            &app,
            &owner,
            "gallery",
            "old.jpg",
            "image/jpeg",
            picture(2000, 1500, ImageFormat::Jpeg),
        )
        .await;
        let photo = upload(
            &app,
            &owner,
            "gallery",
            "old.heic",
            "image/heic",
            heic(1200, 900),
        )
        .await;
        let (jpeg_id, heic_id) = (jpeg["id"].as_str().unwrap(), photo["id"].as_str().unwrap());
        let old_jpeg = as_stored_before(&app, jpeg_id, false).await;
        as_stored_before(&app, heic_id, true).await;
        let thumb_before = {
            let mut o = app
                .state
                .storage
                .open(old_jpeg.thumb_key.as_deref().unwrap())
                .await
                .unwrap();
            let mut b = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut o.body, &mut b)
                .await
                .unwrap();
            b
        };

        // Before the backfill: the old thumbnail is still there; the HEIC has none.
        let shown = show(&app, &owner, &page, &[jpeg_id, heic_id]).await;
        assert_eq!(sizes(&shown["gallery"][0]), []);
        assert!(
            shown["gallery"][0]["thumbUrl"]
                .as_str()
                .unwrap()
                .contains("/thumb/")
        );
        assert_eq!(shown["gallery"][1]["thumbUrl"], shown["gallery"][1]["url"]);

        assert!(backfill_once(&app.state).await.unwrap() >= 2);
        let shown = public(&app, &page).await;
        let (j, h) = (&shown["gallery"][0], &shown["gallery"][1]);
        assert_eq!(sizes(j), [(480, 360), (1080, 810)], "{backend:?}: {j}");
        assert_eq!(sizes(h), [(480, 360), (1080, 810)], "{backend:?}: {h}");
        assert_eq!(
            (h["width"].as_u64(), h["height"].as_u64()),
            (Some(1200), Some(900))
        );
        assert_thumbnails_decode(&app, j).await;
        assert_thumbnails_decode(&app, h).await;
        // The old thumbnail is kept byte for byte: caches holding its link stay right.
        let (_, thumb_after) = fetch(&app, j["thumbUrl"].as_str().unwrap()).await;
        assert_eq!(thumb_after, thumb_before);
        // Recorded: a later round does not pick them again.
        for id in [jpeg_id, heic_id] {
            assert!(row(&app, id).await.unwrap().renditions.is_some());
        }
    }
}

//! What a file really is: its type from the magic bytes (never from the name or the
//! claimed type alone), a safe display name, and for images their size and thumbnail.

use std::{io::BufReader, path::Path};

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::file::Purpose;

/// How many leading bytes [`Kind::detect`] needs.
pub const MAGIC_LEN: usize = 16;

/// The only file types accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Jpeg,
    Png,
    Webp,
    Gif,
    Heic,
    Pdf,
}

impl Kind {
    pub fn detect(head: &[u8]) -> Option<Kind> {
        let at =
            |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
        if at(0, &[0xFF, 0xD8, 0xFF]) {
            Some(Kind::Jpeg)
        } else if at(0, b"\x89PNG\r\n\x1a\n") {
            Some(Kind::Png)
        } else if at(0, b"GIF87a") || at(0, b"GIF89a") {
            Some(Kind::Gif)
        } else if at(0, b"RIFF") && at(8, b"WEBP") {
            Some(Kind::Webp)
        } else if [b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc"]
            .iter()
            .any(|brand| at(4, *brand))
        {
            Some(Kind::Heic)
        } else if at(0, b"%PDF-") {
            Some(Kind::Pdf)
        } else {
            None
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Webp => "image/webp",
            Kind::Gif => "image/gif",
            Kind::Heic => "image/heic",
            Kind::Pdf => "application/pdf",
        }
    }

    /// The kind a client's declared content type names, aliases included.
    pub fn from_mime(mime: &str) -> Option<Kind> {
        let mime = mime.split(';').next().unwrap_or_default().trim();
        match mime.to_ascii_lowercase().as_str() {
            "image/jpeg" | "image/jpg" | "image/pjpeg" => Some(Kind::Jpeg),
            "image/png" => Some(Kind::Png),
            "image/webp" => Some(Kind::Webp),
            "image/gif" => Some(Kind::Gif),
            "image/heic" | "image/heif" => Some(Kind::Heic),
            "application/pdf" => Some(Kind::Pdf),
            _ => None,
        }
    }

    /// The extension of stored keys.
    pub fn ext(self) -> &'static str {
        match self {
            Kind::Jpeg => "jpg",
            Kind::Png => "png",
            Kind::Webp => "webp",
            Kind::Gif => "gif",
            Kind::Heic => "heic",
            Kind::Pdf => "pdf",
        }
    }

    fn accepts_ext(self, ext: &str) -> bool {
        let ext = ext.to_ascii_lowercase();
        match self {
            Kind::Jpeg => matches!(ext.as_str(), "jpg" | "jpeg" | "jpe" | "jfif"),
            Kind::Heic => matches!(ext.as_str(), "heic" | "heif"),
            other => ext == other.ext(),
        }
    }

    pub fn is_image(self) -> bool {
        self != Kind::Pdf
    }

    /// Gallery and cover files must be pictures; attachments may also be PDFs.
    pub fn allowed_for(self, purpose: Purpose) -> bool {
        match purpose {
            Purpose::Gallery | Purpose::Cover => self.is_image(),
            Purpose::Attachment => true,
        }
    }

    /// Formats the pure-Rust decoders read (HEIC has none: stored without thumbnail).
    fn image_format(self) -> Option<ImageFormat> {
        match self {
            Kind::Jpeg => Some(ImageFormat::Jpeg),
            Kind::Png => Some(ImageFormat::Png),
            Kind::Webp => Some(ImageFormat::WebP),
            Kind::Gif => Some(ImageFormat::Gif),
            Kind::Heic | Kind::Pdf => None,
        }
    }
}

/// Why the bytes were refused (all 415).
#[derive(Debug, PartialEq, Eq)]
pub enum TypeProblem {
    /// Not one of the accepted types at all (an executable, a ZIP, ...).
    Unsupported,
    /// An accepted type, but not for this purpose (a PDF in the gallery).
    NotForPurpose(Kind),
    /// The bytes disagree with the declared content type or the name's extension.
    Mismatch { detected: Kind, claimed: String },
}

/// Checks the bytes against what the client said about them.
pub fn check_type(
    head: &[u8],
    purpose: Purpose,
    claimed_mime: Option<&str>,
    name: &str,
) -> Result<Kind, TypeProblem> {
    let kind = Kind::detect(head).ok_or(TypeProblem::Unsupported)?;
    if !kind.allowed_for(purpose) {
        return Err(TypeProblem::NotForPurpose(kind));
    }
    // Browsers send octet-stream for types they do not know (HEIC on most desktops).
    if let Some(mime) = claimed_mime.filter(|m| !m.starts_with("application/octet-stream"))
        && Kind::from_mime(mime) != Some(kind)
    {
        return Err(TypeProblem::Mismatch {
            detected: kind,
            claimed: mime.to_owned(),
        });
    }
    if let Some(ext) = extension(name)
        && !kind.accepts_ext(ext)
    {
        return Err(TypeProblem::Mismatch {
            detected: kind,
            claimed: format!(".{ext}"),
        });
    }
    Ok(kind)
}

fn extension(name: &str) -> Option<&str> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then_some(ext)
}

/// A display name that is safe to show and to put in a `Content-Disposition`: the
/// last path component only, no control or quoting characters, at most 200 chars.
/// It is metadata only; storage keys never contain it.
pub fn sanitize_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*'))
        .take(200)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        "file".into()
    } else {
        cleaned.to_owned()
    }
}

/// Pixel size (as displayed, EXIF orientation applied) and an optional thumbnail.
#[derive(Debug, Default)]
pub struct ImageInfo {
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// JPEG bytes, only when the picture is wider than the thumbnail width.
    pub thumbnail: Option<Vec<u8>>,
}

/// Why a picture was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImageProblem {
    /// The bytes claim an image type but are not a whole, readable image (415).
    #[error("the file is not a readable {kind:?} image: {reason}")]
    Undecodable { kind: Kind, reason: String },
    /// More pixels than allowed, seen in the header before any decoding (422).
    #[error(
        "the picture is {width}×{height} pixels; at most {max_megapixels} megapixels are accepted"
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        max_megapixels: u64,
    },
}

/// Reads an image's size and makes its thumbnail. Blocking: run it off the runtime.
///
/// The pixel count is checked from the header before anything is decoded (a small
/// PNG can announce 11000×11000 = 480 MB of pixels), and the decoded size bounds the
/// decoder's allocations. A JPEG must be whole (its end marker after the scan): the
/// decoder would otherwise fill a truncated one with grey and call it fine.
pub fn inspect_image(
    path: &Path,
    kind: Kind,
    thumb_width: u32,
    max_pixels: u64,
) -> Result<ImageInfo, ImageProblem> {
    let Some(format) = kind.image_format() else {
        return Ok(ImageInfo::default());
    };
    let fail = |e: &dyn std::fmt::Display| ImageProblem::Undecodable {
        kind,
        reason: e.to_string(),
    };
    if kind == Kind::Jpeg && !jpeg_is_whole(path).map_err(|e| fail(&e))? {
        return Err(fail(
            &"the file is truncated (no end of image after the scan)",
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| fail(&e))?;
    let mut reader = ImageReader::with_format(BufReader::new(file), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(20_000);
    limits.max_image_height = Some(20_000);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| fail(&e))?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ImageProblem::TooManyPixels {
            width,
            height,
            max_megapixels: max_pixels.div_ceil(1_000_000),
        });
    }
    // Room for the decoded picture (up to 16-bit RGBA) and the decoder's own buffers.
    let mut limits = Limits::default();
    limits.max_alloc = Some(u64::from(width) * u64::from(height) * 8 + 64 * 1024 * 1024);
    decoder.set_limits(limits).map_err(|e| fail(&e))?;
    let orientation = decoder.orientation().map_err(|e| fail(&e))?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| fail(&e))?;
    img.apply_orientation(orientation);
    let (width, height) = (img.width(), img.height());
    let thumbnail = if width > thumb_width {
        let thumb_height = ((u64::from(height) * u64::from(thumb_width)) / u64::from(width)).max(1);
        let small = img.thumbnail(thumb_width, thumb_height as u32).into_rgb8();
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
            .encode_image(&small)
            .map_err(|e| fail(&e))?;
        Some(out)
    } else {
        None
    };
    Ok(ImageInfo {
        width: Some(width),
        height: Some(height),
        thumbnail,
    })
}

/// Whether a JPEG has an end-of-image marker after its first scan. The header
/// segments are skipped by their lengths (an EXIF thumbnail has an end marker of its
/// own); inside scan data 0xFF is always stuffed, so FF D9 there is the real end.
fn jpeg_is_whole(path: &Path) -> std::io::Result<bool> {
    let bytes = std::fs::read(path)?;
    let mut at = 2; // after SOI
    loop {
        let Some(&[0xFF, marker]) = bytes.get(at..at + 2) else {
            return Ok(false);
        };
        match marker {
            0xFF => at += 1, // fill byte
            0xD8 | 0x01 | 0xD0..=0xD7 => at += 2,
            _ => {
                let Some(len) = bytes.get(at + 2..at + 4) else {
                    return Ok(false);
                };
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                if marker == 0xDA {
                    let scan = bytes.get(at + 2 + len..).unwrap_or_default();
                    return Ok(scan.windows(2).any(|w| w == [0xFF, 0xD9]));
                }
                at += 2 + len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_types_by_magic() {
        assert_eq!(Kind::detect(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Kind::Jpeg));
        assert_eq!(Kind::detect(b"\x89PNG\r\n\x1a\n...."), Some(Kind::Png));
        assert_eq!(Kind::detect(b"RIFF\0\0\0\0WEBPVP8 "), Some(Kind::Webp));
        assert_eq!(Kind::detect(b"GIF89a"), Some(Kind::Gif));
        assert_eq!(Kind::detect(b"\0\0\0\x18ftypheic\0\0"), Some(Kind::Heic));
        assert_eq!(Kind::detect(b"\0\0\0\x18ftypmif1\0\0"), Some(Kind::Heic));
        assert_eq!(Kind::detect(b"%PDF-1.7"), Some(Kind::Pdf));
        assert_eq!(Kind::detect(b"MZ\x90\0"), None);
        assert_eq!(Kind::detect(b""), None);
    }

    #[test]
    fn claimed_type_and_extension_must_agree_with_the_bytes() {
        let png = b"\x89PNG\r\n\x1a\n";
        assert_eq!(
            check_type(png, Purpose::Gallery, Some("image/png"), "a.png"),
            Ok(Kind::Png)
        );
        assert!(matches!(
            check_type(png, Purpose::Attachment, None, "report.pdf"),
            Err(TypeProblem::Mismatch { .. })
        ));
        assert!(matches!(
            check_type(png, Purpose::Gallery, Some("image/jpeg"), "a"),
            Err(TypeProblem::Mismatch { .. })
        ));
        assert_eq!(
            check_type(b"%PDF-1.4", Purpose::Gallery, None, "a.pdf"),
            Err(TypeProblem::NotForPurpose(Kind::Pdf))
        );
        assert_eq!(
            check_type(b"MZ\x90\0", Purpose::Attachment, None, "cat.jpg"),
            Err(TypeProblem::Unsupported)
        );
    }

    fn encoded(format: ImageFormat) -> Vec<u8> {
        let img = image::RgbImage::from_fn(120, 90, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (y * 13 % 256) as u8,
                ((x ^ y) % 256) as u8,
            ])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn inspect_bytes(bytes: &[u8], kind: Kind) -> Result<ImageInfo, ImageProblem> {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), bytes).unwrap();
        inspect_image(tmp.path(), kind, 64, 50_000_000)
    }

    #[test]
    fn whole_pictures_pass_and_truncated_ones_are_undecodable() {
        for (format, kind) in [
            (ImageFormat::Jpeg, Kind::Jpeg),
            (ImageFormat::Png, Kind::Png),
            (ImageFormat::Gif, Kind::Gif),
            (ImageFormat::WebP, Kind::Webp),
        ] {
            let bytes = encoded(format);
            let info = inspect_bytes(&bytes, kind).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert_eq!((info.width, info.height), (Some(120), Some(90)));
            let cut = &bytes[..bytes.len() * 4 / 10];
            assert!(
                matches!(
                    inspect_bytes(cut, kind),
                    Err(ImageProblem::Undecodable { .. })
                ),
                "a truncated {kind:?} passed"
            );
        }
    }

    /// A PNG that announces 11000×11000 pixels and holds none: refused from its header.
    #[test]
    fn pixel_floods_are_refused_before_decoding() {
        fn crc32(bytes: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &b in bytes {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 == 1 {
                        (crc >> 1) ^ 0xEDB8_8320
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let crc = crc32(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&11_000u32.to_be_bytes());
        ihdr.extend_from_slice(&11_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
        chunk(&mut png, b"IHDR", &ihdr);
        // The start of the pixel data: an empty zlib stream, far too short to decode.
        chunk(
            &mut png,
            b"IDAT",
            &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        );
        chunk(&mut png, b"IEND", &[]);
        match inspect_bytes(&png, Kind::Png) {
            Err(ImageProblem::TooManyPixels { width, height, .. }) => {
                assert_eq!((width, height), (11_000, 11_000))
            }
            other => panic!("expected TooManyPixels, got {other:?}"),
        }
    }

    #[test]
    fn names_lose_their_paths_and_control_characters() {
        assert_eq!(sanitize_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_name("C:\\Users\\x\\photo.jpg"), "photo.jpg");
        assert_eq!(sanitize_name("..\\..\\"), "file");
        assert_eq!(sanitize_name("a\u{0}b\n\"c\".png"), "abc.png");
        assert_eq!(sanitize_name(".hidden.png"), "hidden.png");
        assert_eq!(sanitize_name(""), "file");
    }
}

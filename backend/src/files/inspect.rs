//! What a file really is: its type from the magic bytes (never from the name or the
//! claimed type alone), a safe display name, and for images their size and thumbnail.

use std::{io::BufReader, path::Path, sync::OnceLock};

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::file::{Purpose, Variant};

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

    /// Formats the pure-Rust decoders read (HEIC goes through libheif).
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
        .filter(|c| {
            !c.is_control()
                && !is_invisible_format(*c)
                && !matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*')
        })
        .take(200)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        "file".into()
    } else {
        cleaned.to_owned()
    }
}

/// Bidi controls (U+202E shows `photo\u{202E}gpj.exe` as `photoexe.jpg`), zero-width
/// and other invisible format characters: they let a name look like another.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// The longest sides of the JPEG renditions (never upscaled).
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub thumb: u32,
    pub large: u32,
}

/// Longest side of the `large` rendition: a full-width picture on a phone (3× DPR of
/// a 360 px viewport) without sending the 12-megapixel original.
pub const LARGE_SIZE: u32 = 1080;

/// One JPEG rendition of a picture.
#[derive(Debug)]
pub struct Encoded {
    pub variant: Variant,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

/// Pixel size (as displayed, orientation applied) and the JPEG renditions.
#[derive(Debug, Default)]
pub struct ImageInfo {
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Smallest first; empty for a PDF or a web picture no larger than the thumbnail.
    pub renditions: Vec<Encoded>,
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

fn too_many(width: u32, height: u32, max_pixels: u64) -> Result<(), ImageProblem> {
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ImageProblem::TooManyPixels {
            width,
            height,
            max_megapixels: max_pixels.div_ceil(1_000_000),
        });
    }
    Ok(())
}

/// Reads an image's size and makes its renditions. Blocking: run it off the runtime.
///
/// The pixel count is checked from the header before anything is decoded (a small
/// PNG can announce 11000×11000 = 480 MB of pixels), and the decoded size bounds the
/// decoder's allocations. A JPEG must be whole (its end marker after the scan): the
/// decoder would otherwise fill a truncated one with grey and call it fine.
pub fn inspect_image(
    path: &Path,
    kind: Kind,
    sizes: Sizes,
    max_pixels: u64,
) -> Result<ImageInfo, ImageProblem> {
    let fail = |e: &dyn std::fmt::Display| ImageProblem::Undecodable {
        kind,
        reason: e.to_string(),
    };
    let img = match kind {
        Kind::Pdf => return Ok(ImageInfo::default()),
        Kind::Heic => decode_heif(path, max_pixels).map_err(|e| match e {
            HeifProblem::Pixels(p) => p,
            HeifProblem::Unreadable(reason) => ImageProblem::Undecodable { kind, reason },
        })?,
        _ => decode_web(path, kind, max_pixels)?,
    };
    let (width, height) = (img.width(), img.height());
    // Browsers cannot show HEIC (Android, desktop Chrome): it gets JPEGs even at its
    // own size, so every page can show it.
    let renditions = render(&img, sizes, kind != Kind::Heic).map_err(|e| fail(&e))?;
    Ok(ImageInfo {
        width: Some(width),
        height: Some(height),
        renditions,
    })
}

/// JPEG, PNG, WebP and GIF through the pure-Rust decoders of the `image` crate.
fn decode_web(path: &Path, kind: Kind, max_pixels: u64) -> Result<DynamicImage, ImageProblem> {
    let fail = |e: &dyn std::fmt::Display| ImageProblem::Undecodable {
        kind,
        reason: e.to_string(),
    };
    let format = kind
        .image_format()
        .ok_or_else(|| fail(&"no decoder for this type"))?;
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
    too_many(width, height, max_pixels)?;
    // Room for the decoded picture (up to 16-bit RGBA) and the decoder's own buffers.
    let mut limits = Limits::default();
    limits.max_alloc = Some(u64::from(width) * u64::from(height) * 8 + 64 * 1024 * 1024);
    decoder.set_limits(limits).map_err(|e| fail(&e))?;
    let orientation = decoder.orientation().map_err(|e| fail(&e))?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| fail(&e))?;
    img.apply_orientation(orientation);
    Ok(img)
}

enum HeifProblem {
    Pixels(ImageProblem),
    Unreadable(String),
}

/// HEIC/HEIF through libheif. Only the container's boxes are parsed first; the size
/// it announces (after rotation, `ispe`) passes the pixel limit before any pixel is
/// decoded. Rotation and mirroring (`irot`/`imir`) are applied by libheif.
fn decode_heif(path: &Path, max_pixels: u64) -> Result<DynamicImage, HeifProblem> {
    use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};
    // Initialised once for the process (libheif counts its users; never dropped).
    static LIBHEIF: OnceLock<LibHeif> = OnceLock::new();
    let fail = |e: &dyn std::fmt::Display| HeifProblem::Unreadable(e.to_string());
    let name = path
        .to_str()
        .ok_or_else(|| fail(&"the path is not UTF-8"))?;
    let mut ctx = HeifContext::read_from_file(name).map_err(|e| fail(&e))?;
    // One thread per decode: the decode gate bounds how many run, and each may use
    // only its own.
    ctx.set_max_decoding_threads(1);
    let handle = ctx.primary_image_handle().map_err(|e| fail(&e))?;
    too_many(handle.width(), handle.height(), max_pixels).map_err(HeifProblem::Pixels)?;
    let lib = LIBHEIF.get_or_init(LibHeif::new);
    let image = lib
        .decode(&handle, ColorSpace::Rgb(RgbChroma::Rgb), None)
        .map_err(|e| fail(&e))?;
    let planes = image.planes();
    let plane = planes
        .interleaved
        .ok_or_else(|| fail(&"no interleaved RGB plane"))?;
    let (width, height) = (plane.width, plane.height);
    let row = width as usize * 3;
    let mut pixels = Vec::with_capacity(row * height as usize);
    for y in 0..height as usize {
        let start = y * plane.stride;
        let line = plane
            .data
            .get(start..start + row)
            .ok_or_else(|| fail(&"the decoded plane is shorter than its size"))?;
        pixels.extend_from_slice(line);
    }
    let rgb = image::RgbImage::from_raw(width, height, pixels)
        .ok_or_else(|| fail(&"the decoded plane does not match its size"))?;
    Ok(DynamicImage::ImageRgb8(rgb))
}

/// The renditions of a decoded picture, smallest first: `thumb` and `large` when the
/// picture is larger than their size (never upscaled). A picture browsers cannot show
/// as it is also gets a JPEG at its own size, as `thumb` (and `large` when it is
/// larger than the thumbnail).
fn render(
    img: &DynamicImage,
    sizes: Sizes,
    shown_as_is: bool,
) -> Result<Vec<Encoded>, image::ImageError> {
    let longest = img.width().max(img.height());
    let target = |size: u32, floor: u32| {
        if longest > size {
            Some(size)
        } else if !shown_as_is && longest > floor {
            Some(longest)
        } else {
            None
        }
    };
    let large = target(sizes.large, sizes.thumb).map(|t| fit(img, t));
    // From the large one when there is one: the same look for a fraction of the work.
    let thumb = target(sizes.thumb, 0).map(|t| fit(large.as_ref().unwrap_or(img), t));
    let mut out = Vec::new();
    for (variant, picture) in [(Variant::Thumb, thumb), (Variant::Large, large)] {
        let Some(picture) = picture else { continue };
        let rgb = picture.into_rgb8();
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY)
            .encode_image(&rgb)?;
        out.push(Encoded {
            variant,
            width: rgb.width(),
            height: rgb.height(),
            bytes,
        });
    }
    Ok(out)
}

/// JPEG quality of the renditions (see docs/files.md for why JPEG and not WebP).
const JPEG_QUALITY: u8 = 80;

/// The picture scaled to fit `target` px on its longest side (a copy when it fits).
fn fit(img: &DynamicImage, target: u32) -> DynamicImage {
    if img.width().max(img.height()) <= target {
        img.clone()
    } else {
        img.thumbnail(target, target)
    }
}

/// The size of a stored JPEG rendition, from its header alone.
pub fn jpeg_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    ImageReader::with_format(std::io::Cursor::new(bytes), ImageFormat::Jpeg)
        .into_dimensions()
        .ok()
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
        inspect_image(
            tmp.path(),
            kind,
            Sizes {
                thumb: 64,
                large: 100,
            },
            50_000_000,
        )
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

    /// A HEIC of the given size, encoded with libheif's HEVC encoder (x265).
    pub(crate) fn heic(width: u32, height: u32) -> Vec<u8> {
        use libheif_rs::{
            Channel, ColorSpace, CompressionFormat, EncoderParameterValue, EncoderQuality,
            HeifContext, Image, LibHeif, RgbChroma,
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
        let mut encoder = lib.encoder_for_format(CompressionFormat::Hevc).unwrap();
        encoder.set_quality(EncoderQuality::Lossy(50)).unwrap();
        // Test pictures need not be small, only quick to make.
        encoder
            .set_parameter_value("preset", EncoderParameterValue::String("ultrafast".into()))
            .unwrap();
        ctx.encode_image(&image, &mut encoder, None).unwrap();
        ctx.write_to_bytes().unwrap()
    }

    #[test]
    fn heic_is_decoded_and_gets_jpegs_even_when_small() {
        let bytes = heic(240, 160);
        assert_eq!(Kind::detect(&bytes[..MAGIC_LEN]), Some(Kind::Heic));
        let info = inspect_bytes(&bytes, Kind::Heic).unwrap();
        assert_eq!((info.width, info.height), (Some(240), Some(160)));
        // Thumb 64 px and large 100 px (the test sizes), both JPEG.
        let got: Vec<_> = info
            .renditions
            .iter()
            .map(|r| (r.variant, r.width, r.height))
            .collect();
        assert_eq!(
            got,
            [(Variant::Thumb, 64, 43), (Variant::Large, 100, 67)],
            "{got:?}"
        );
        for r in &info.renditions {
            let decoded = image::load_from_memory_with_format(&r.bytes, ImageFormat::Jpeg).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (r.width, r.height));
        }
        // Smaller than the thumbnail: still a JPEG, at its own size, never larger.
        let tiny = inspect_bytes(&heic(40, 30), Kind::Heic).unwrap();
        let got: Vec<_> = tiny
            .renditions
            .iter()
            .map(|r| (r.variant, r.width, r.height))
            .collect();
        assert_eq!(got, [(Variant::Thumb, 40, 30)]);
    }

    #[test]
    fn truncated_heic_is_undecodable() {
        let bytes = heic(240, 160);
        for cut in [bytes.len() * 9 / 10, bytes.len() / 2, 40] {
            assert!(
                matches!(
                    inspect_bytes(&bytes[..cut], Kind::Heic),
                    Err(ImageProblem::Undecodable { .. })
                ),
                "a HEIC cut at {cut} of {} bytes passed",
                bytes.len()
            );
        }
    }

    /// A HEIC whose image-size box announces 11000×11000: refused before decoding.
    #[test]
    fn heic_pixel_floods_are_refused_from_the_container() {
        let mut bytes = heic(64, 64);
        let at = bytes
            .windows(4)
            .position(|w| w == b"ispe")
            .expect("an ispe box");
        // fourcc, version and flags, then width and height.
        bytes[at + 8..at + 12].copy_from_slice(&11_000u32.to_be_bytes());
        bytes[at + 12..at + 16].copy_from_slice(&11_000u32.to_be_bytes());
        match inspect_bytes(&bytes, Kind::Heic) {
            Err(ImageProblem::TooManyPixels { width, height, .. }) => {
                assert_eq!((width, height), (11_000, 11_000))
            }
            other => panic!("expected TooManyPixels, got {other:?}"),
        }
    }

    #[test]
    fn web_pictures_get_sizes_only_when_larger_and_never_upscaled() {
        let sizes = |w: u32, h: u32| -> Vec<(Variant, u32, u32)> {
            let img = DynamicImage::ImageRgb8(image::RgbImage::new(w, h));
            render(
                &img,
                Sizes {
                    thumb: 480,
                    large: 1080,
                },
                true,
            )
            .unwrap()
            .into_iter()
            .map(|e| (e.variant, e.width, e.height))
            .collect()
        };
        assert_eq!(sizes(400, 300), []);
        assert_eq!(sizes(800, 600), [(Variant::Thumb, 480, 360)]);
        // Portrait: the longest side is the height.
        assert_eq!(
            sizes(1500, 2000),
            [(Variant::Thumb, 360, 480), (Variant::Large, 810, 1080)]
        );
    }

    #[test]
    fn names_lose_their_paths_and_control_characters() {
        assert_eq!(sanitize_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_name("C:\\Users\\x\\photo.jpg"), "photo.jpg");
        assert_eq!(sanitize_name("..\\..\\"), "file");
        assert_eq!(sanitize_name("a\u{0}b\n\"c\".png"), "abc.png");
        assert_eq!(sanitize_name(".hidden.png"), "hidden.png");
        assert_eq!(sanitize_name(""), "file");
        assert_eq!(sanitize_name("photo\u{202E}gpj.exe"), "photogpj.exe");
        assert_eq!(
            sanitize_name("a\u{200B}\u{2066}b\u{2069}\u{FEFF}.png"),
            "ab.png"
        );
        assert_eq!(sanitize_name("청첩장 사진.jpg"), "청첩장 사진.jpg");
    }
}

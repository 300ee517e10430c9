//! Evidence photos before they are stored: a phone's camera gives 3–8 MB
//! at 4000 px, sideways with an EXIF orientation tag; the council needs a
//! readable upright picture that uploads over a weak signal.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, codecs::jpeg::JpegEncoder};

use crate::error::{Error, Result};

/// The long edge of a stored photo, in pixels.
pub const MAX_EDGE: u32 = 1600;
/// JPEG quality of a stored photo.
pub const QUALITY: u8 = 80;
/// Pictures larger than this (in pixels, either side) are refused before decoding.
const MAX_INPUT_EDGE: u32 = 20_000;

/// Decodes a JPEG or PNG, applies its EXIF orientation, shrinks it to
/// [`MAX_EDGE`] and encodes it as JPEG.
pub fn prepare(original: &[u8]) -> Result<Vec<u8>> {
    let bad = |e: &dyn std::fmt::Display| {
        Error::Invalid(format!(
            "the file is not a photo this app can read (JPEG or PNG): {e}"
        ))
    };
    let reader = ImageReader::new(Cursor::new(original))
        .with_guessed_format()
        .map_err(|e| bad(&e))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_INPUT_EDGE);
    limits.max_image_height = Some(MAX_INPUT_EDGE);
    limits.max_alloc = Some(1 << 30);
    let mut reader = reader;
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| bad(&e))?;
    let orientation = decoder.orientation().map_err(|e| bad(&e))?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| bad(&e))?;
    img.apply_orientation(orientation);
    if img.width().max(img.height()) > MAX_EDGE {
        img = img.resize(MAX_EDGE, MAX_EDGE, image::imageops::FilterType::Triangle);
    }
    let rgb = img.to_rgb8();
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, QUALITY)
        .encode_image(&rgb)
        .map_err(|e| Error::Io(format!("the photo could not be encoded: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, RgbImage};

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, _| image::Rgb([(x % 256) as u8, 0, 0]));
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    fn dims(jpeg: &[u8]) -> (u32, u32) {
        let img = image::load_from_memory(jpeg).unwrap();
        (img.width(), img.height())
    }

    #[test]
    fn a_large_photo_is_shrunk_to_the_long_edge_keeping_its_shape() {
        let out = prepare(&png(4000, 3000)).unwrap();
        assert_eq!(&out[..2], &[0xFF, 0xD8], "stored as JPEG");
        assert_eq!(dims(&out), (1600, 1200));
    }

    #[test]
    fn a_small_photo_keeps_its_size() {
        assert_eq!(dims(&prepare(&png(640, 480)).unwrap()), (640, 480));
    }

    #[test]
    fn a_file_that_is_not_a_photo_is_refused_with_what_to_do() {
        let e = prepare(b"%PDF-1.7 not a photo").unwrap_err();
        assert_eq!(e.code(), "invalid");
        assert!(e.to_string().contains("JPEG or PNG"), "{e}");
    }

    /// A JPEG whose EXIF says "rotate 90° clockwise" (orientation 6) comes
    /// out upright: a 200×100 landscape becomes 100×200 portrait.
    #[test]
    fn exif_orientation_is_applied() {
        let img = RgbImage::from_pixel(200, 100, image::Rgb([10, 200, 10]));
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&img)
            .unwrap();
        let tagged = with_orientation(&jpeg, 6);
        assert_eq!(dims(&prepare(&tagged).unwrap()), (100, 200));
    }

    /// Inserts an APP1 Exif segment with one Orientation entry after SOI.
    fn with_orientation(jpeg: &[u8], o: u16) -> Vec<u8> {
        let mut tiff = Vec::new();
        tiff.extend_from_slice(b"MM\0\x2a\0\0\0\x08"); // big-endian, IFD at 8
        tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
        tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
        tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
        tiff.extend_from_slice(&1u32.to_be_bytes()); // count
        tiff.extend_from_slice(&o.to_be_bytes());
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }
}

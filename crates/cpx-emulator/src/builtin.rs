//! The card images of `test-vectors/cards/`, compiled in: `cpx emulate --card cps3-doctor` works
//! from any directory and from an installed binary, with no test-vectors checkout.

use crate::image::{CardImage, ImageError};

/// One compiled-in image: its `card.toml` and the files it names.
struct Builtin {
    stem: &'static str,
    toml: &'static str,
    files: &'static [(&'static str, &'static [u8])],
}

macro_rules! image {
    ($stem:literal, [$($file:literal),* $(,)?]) => {
        Builtin {
            stem: $stem,
            toml: include_str!(concat!("../../../test-vectors/cards/", $stem, "/card.toml")),
            files: &[$(($file, include_bytes!(concat!("../../../test-vectors/cards/", $stem, "/", $file)))),*],
        }
    };
}

macro_rules! person_card {
    ($stem:literal) => {
        image!(
            $stem,
            [
                "auth.der",
                "auth.TEST-ONLY.key.der",
                "sign.der",
                "sign.TEST-ONLY.key.der"
            ]
        )
    };
}

static BUILTIN: &[Builtin] = &[
    person_card!("cps3-doctor"),
    person_card!("cps3-pharmacist"),
    person_card!("cpe"),
    person_card!("cpa"),
    person_card!("cpf"),
    person_card!("cps3-expired"),
    person_card!("cps3-pin-blocked"),
    person_card!("cps3-puk-blocked"),
    image!("cps3-contactless", ["tech.der", "tech.TEST-ONLY.key.der"]),
    person_card!("cps4-doctor"),
];

/// The stems of the compiled-in images, e.g. `cps3-doctor`.
///
/// ```
/// assert!(cpx_emulator::builtin_stems().any(|s| s == "cps3-doctor"));
/// ```
pub fn builtin_stems() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|b| b.stem)
}

/// The compiled-in image `stem`, or `None` when there is no such image.
///
/// ```
/// let image = cpx_emulator::builtin_image("cps3-doctor").expect("known stem")?;
/// assert_eq!(image.token_label, "CPS3v3-9900000001");
/// # Ok::<(), cpx_emulator::ImageError>(())
/// ```
pub fn builtin_image(stem: &str) -> Option<Result<CardImage, ImageError>> {
    let b = BUILTIN.iter().find(|b| b.stem == stem)?;
    Some(CardImage::from_toml(b.toml, &mut |name| {
        b.files
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, bytes)| bytes.to_vec())
            .ok_or_else(|| ImageError::Io {
                path: format!("<builtin {}>/{name}", b.stem).into(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not compiled in"),
            })
    }))
}

/// Find an image by stem (compiled in) or by path (a `card.toml`, a `cpx report` file replayed by
/// [`crate::replay`], or a directory holding a `card.toml`).
pub fn find_image(stem_or_path: &str) -> Result<CardImage, ImageError> {
    let path = std::path::Path::new(stem_or_path);
    if path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|source| ImageError::Io {
            path: path.to_owned(),
            source,
        })?;
        if crate::replay::is_report(&text) {
            return crate::replay::image_from_report(&text);
        }
        return CardImage::load(path);
    }
    if path.join("card.toml").is_file() {
        return CardImage::load(path.join("card.toml"));
    }
    builtin_image(stem_or_path).unwrap_or_else(|| {
        Err(ImageError::Io {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "no such image file, and no built-in image of that name (built-in: {})",
                    builtin_stems().collect::<Vec<_>>().join(", ")
                ),
            ),
        })
    })
}

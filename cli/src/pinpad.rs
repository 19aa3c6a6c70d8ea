//! What `cpx readers`, `cpx status` and `cpx doctor` say about a reader's PIN pad (PC/SC v2 part
//! 10 secure PIN entry, docs/reader-features.md): whether the reader announces
//! `FEATURE_VERIFY_PIN_DIRECT` / `FEATURE_MODIFY_PIN_DIRECT`, its display and PIN lengths
//! (`FEATURE_GET_TLV_PROPERTIES`, else `FEATURE_IFD_PIN_PROPERTIES`), and whether the user turned
//! pad use off (`CPX_PINPAD=off`, `CPX_PINPAD_IGNORE`; docs/pinpad-readers.md).
//!
//! A reader holding a card is asked through the card (shared connection, the card's turn); an
//! empty one through a direct connection (`SCARD_SHARE_DIRECT`). One that cannot be asked (a
//! mute card, a reader unavailable or gone) is "not known" (`pin_pad: null` in the JSON), never
//! "no pad".
//! Nothing here reaches the card: control commands go to the reader only, and only their sizes
//! are traced.

use cpx_card::PinPadSetting;
use cpx_transport::{
    CardChannel, ControlCode, DirectReader, Feature, Pcsc, PcscChannel, ReaderFeatures, ReaderProperties,
    TransportError,
};
use serde::Serialize;

/// The reader's PIN pad as the JSON shows it (docs/cli-json.md, **pin pad**).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct PadInfo {
    /// The reader collects a PIN on its keypad and sends the VERIFY itself
    /// (`FEATURE_VERIFY_PIN_DIRECT`); false: no PIN pad, every other field false or null.
    pub(crate) available: bool,
    /// `FEATURE_VERIFY_PIN_DIRECT`.
    pub(crate) verify: bool,
    /// `FEATURE_MODIFY_PIN_DIRECT` (PIN change and unblock on the pad).
    pub(crate) modify: bool,
    /// The reader's display (`wLcdLayout`); null without one, or when the reader does not say.
    pub(crate) display: Option<Display>,
    /// `bMinPINSize`, `bMaxPINSize` (GET_TLV_PROPERTIES); null when the reader does not say.
    pub(crate) min_digits: Option<u8>,
    pub(crate) max_digits: Option<u8>,
    /// `sFirmwareID`, as text made safe (docs/cli-json.md "Text from the card").
    pub(crate) firmware: Option<String>,
    /// cpx uses the pad for the PIN (available and not turned off).
    pub(crate) used: bool,
    /// Why cpx does not use an available pad: `CPX_PINPAD=off`, `CPX_PINPAD_IGNORE=…`.
    pub(crate) turned_off: Option<String>,
    /// Every feature the reader announced, `FEATURE_VERIFY_PIN_DIRECT (0x42330006)`: for
    /// `cpx doctor`'s details, not in the JSON of `readers` / `status`.
    #[serde(skip)]
    pub(crate) features: Vec<String>,
}

/// `wLcdLayout`: lines × characters per line.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub(crate) struct Display {
    pub(crate) lines: u8,
    pub(crate) characters: u8,
}

impl PadInfo {
    /// A reader that answered and has no PIN pad.
    fn none() -> PadInfo {
        PadInfo {
            available: false,
            verify: false,
            modify: false,
            display: None,
            min_digits: None,
            max_digits: None,
            firmware: None,
            used: false,
            turned_off: None,
            features: Vec::new(),
        }
    }

    /// The description from what the reader answered: its features and, when it gave them,
    /// its properties (`props`) and PIN properties display layout (`pin_lcd_layout`).
    pub(crate) fn from_answers(
        reader: &str,
        features: &ReaderFeatures,
        props: Option<&ReaderProperties>,
        pin_lcd_layout: Option<u16>,
    ) -> PadInfo {
        let listed = features.iter().map(|(f, code)| format!("{f} ({code})")).collect();
        if !features.has_pin_pad() {
            return PadInfo {
                features: listed,
                ..PadInfo::none()
            };
        }
        let layout = props.and_then(|p| p.lcd_layout).or(pin_lcd_layout);
        let turned_off = turned_off(reader);
        PadInfo {
            available: true,
            verify: true,
            modify: features.has(Feature::MODIFY_PIN_DIRECT),
            display: layout.and_then(display),
            min_digits: props.and_then(|p| p.min_pin_size),
            max_digits: props.and_then(|p| p.max_pin_size),
            firmware: props.and_then(|p| p.firmware_id.as_deref()).map(|f| {
                // A C string's terminating NUL is not part of the name.
                let f = f.strip_suffix(&[0]).unwrap_or(f);
                cpx_card::text::display_safe_bytes(f).into_owned()
            }),
            used: turned_off.is_none(),
            turned_off,
            features: listed,
        }
    }

    /// The same description listing `features` (for `cpx doctor`'s details).
    fn listing(mut self, features: &ReaderFeatures) -> PadInfo {
        self.features = features.iter().map(|(f, code)| format!("{f} ({code})")).collect();
        self
    }

    /// One phrase for the text outputs: `PIN pad`, `PIN pad (display 2×16)`,
    /// `PIN pad (…), turned off by CPX_PINPAD=off: …`, `no PIN pad`.
    pub(crate) fn text(&self) -> String {
        if self.available {
            format!("PIN pad{}", self.summary())
        } else {
            "no PIN pad".into()
        }
    }

    /// What follows "PIN pad": ` (display 2×16, PIN 4 to 8 digits)`, and the turned-off note.
    pub(crate) fn summary(&self) -> String {
        let mut facts = Vec::new();
        if let Some(d) = self.display {
            facts.push(format!("display {}×{}", d.lines, d.characters));
        }
        match (self.min_digits, self.max_digits) {
            (Some(min), Some(max)) => facts.push(format!("PIN {min} to {max} digits")),
            (Some(min), None) => facts.push(format!("PIN from {min} digits")),
            (None, Some(max)) => facts.push(format!("PIN up to {max} digits")),
            (None, None) => {}
        }
        if !self.modify {
            facts.push("no PIN change on the pad".into());
        }
        let mut text = String::new();
        if !facts.is_empty() {
            text.push_str(&format!(" ({})", facts.join(", ")));
        }
        if let Some(why) = &self.turned_off {
            text.push_str(&format!(
                ", turned off by {why}: the PIN is typed on the keyboard"
            ));
        }
        text
    }
}

/// `wLcdLayout` 0 is no display; else lines in the high byte, characters in the low one.
fn display(layout: u16) -> Option<Display> {
    let [lines, characters] = layout.to_be_bytes();
    (layout != 0).then_some(Display { lines, characters })
}

/// Ask the reader of an open channel for its PIN pad. A reader that cannot answer (vpcd) has
/// no pad; only what the caller must act on anyway (card gone, pcscd lost) is an error.
fn ask(channel: &mut dyn Askable) -> Result<PadInfo, TransportError> {
    let features = channel.features()?;
    let reader = channel.name().to_owned();
    if !features.has_pin_pad() {
        return Ok(PadInfo::from_answers(&reader, &features, None, None));
    }
    // As the card layer (cpx_card::Card::pin_pad): a reader that announces its properties and
    // then cannot give them, or gives them malformed, is not trusted with a PIN (no pad).
    let untrusted = |what: &str, e: &dyn std::fmt::Display| {
        log::debug!("{reader}: PIN pad not used, {what}: {e}");
        Ok(PadInfo::from_answers(&reader, &ReaderFeatures::none(), None, None).listing(&features))
    };
    let props = match features.get(Feature::GET_TLV_PROPERTIES) {
        None => None,
        Some(code) => match channel.control(code, &[]) {
            Ok(a) => match ReaderProperties::parse(&a) {
                Ok(p) => Some(p),
                Err(e) => return untrusted("GET_TLV_PROPERTIES", &e),
            },
            Err(e) if must_surface(&e) => return Err(e),
            Err(e) => return untrusted("GET_TLV_PROPERTIES", &e),
        },
    };
    let pin_layout = match (
        props.as_ref().and_then(|p| p.lcd_layout),
        features.get(Feature::IFD_PIN_PROPERTIES),
    ) {
        (None, Some(code)) => match channel.control(code, &[]) {
            // PIN_PROPERTIES_STRUCTURE (reader.h): wLcdLayout (little-endian),
            // bEntryValidationCondition, bTimeOut2.
            Ok(a) => match a.as_slice() {
                [lo, hi, ..] => Some(u16::from_le_bytes([*lo, *hi])),
                _ => None,
            },
            Err(e) if must_surface(&e) => return Err(e),
            Err(e) => return untrusted("IFD_PIN_PROPERTIES", &e),
        },
        _ => None,
    };
    if let Some(p) = &props
        && let (Some(min), Some(max)) = (p.min_pin_size, p.max_pin_size)
        && (min > max || max == 0)
    {
        return untrusted("PIN sizes", &format!("{min} to {max} is inconsistent"));
    }
    Ok(PadInfo::from_answers(
        &reader,
        &features,
        props.as_ref(),
        pin_layout,
    ))
}

/// Errors a caller must act on whatever it was doing (as `cpx_transport`'s feature discovery).
fn must_surface(e: &TransportError) -> bool {
    e.is_card_gone() || e.is_service_lost() || matches!(e, TransportError::CardReset(_))
}

/// A reader that can be asked for its features: through the card in it, or directly.
trait Askable {
    fn name(&self) -> &str;
    fn features(&mut self) -> Result<ReaderFeatures, TransportError>;
    fn control(&mut self, code: ControlCode, input: &[u8]) -> Result<Vec<u8>, TransportError>;
}

impl Askable for PcscChannel {
    fn name(&self) -> &str {
        CardChannel::reader(self)
    }
    fn features(&mut self) -> Result<ReaderFeatures, TransportError> {
        self.reader_features()
    }
    fn control(&mut self, code: ControlCode, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        CardChannel::control(self, code, input)
    }
}

impl Askable for DirectReader {
    fn name(&self) -> &str {
        self.reader()
    }
    fn features(&mut self) -> Result<ReaderFeatures, TransportError> {
        self.reader_features()
    }
    fn control(&mut self, code: ControlCode, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        DirectReader::control(self, code, input)
    }
}

/// Ask `reader` through a connection of its own, left as it found the reader: shared through the
/// card when `has_card` (the control commands then take the card's turn, as the card layer's
/// do), else direct (`SCARD_SHARE_DIRECT`, pcsc-lite's way to reach an empty reader's driver).
/// `None`: the reader could not be asked (card held exclusively, reader gone, a driver that
/// refuses direct connections): not known, not "no pad".
pub(crate) fn probe(pcsc: &Pcsc, reader: &str, has_card: bool) -> Option<PadInfo> {
    let asked = if has_card {
        pcsc.connect(reader).and_then(|mut c| ask(&mut c))
    } else {
        pcsc.connect_direct(reader).and_then(|mut r| ask(&mut r))
    };
    asked
        .map_err(|e| log::debug!("{reader}: PIN pad not known: {e}"))
        .ok()
}

/// Why pad use is turned off for `reader`, if it is: `CPX_PINPAD=off` for every reader, or
/// `CPX_PINPAD_IGNORE` holding a `;`-separated part of its name (docs/pinpad-readers.md). The
/// rule is the card layer's ([`PinPadSetting`], what `Card::pin_pad` applies to the PIN
/// operations); this only names the variable that decided.
pub(crate) fn turned_off(reader: &str) -> Option<String> {
    turned_off_by(
        reader,
        std::env::var(PinPadSetting::ENV_PINPAD).ok().as_deref(),
        std::env::var(PinPadSetting::ENV_IGNORE).ok().as_deref(),
    )
}

fn turned_off_by(reader: &str, pinpad: Option<&str>, ignore: Option<&str>) -> Option<String> {
    if PinPadSetting::parse(pinpad, ignore).allows(reader) {
        return None;
    }
    if !PinPadSetting::parse(pinpad, None).allows(reader) {
        return Some(format!("CPX_PINPAD={}", pinpad.unwrap_or_default().trim()));
    }
    let part = ignore
        .unwrap_or_default()
        .split(';')
        .map(str::trim)
        .find(|part| !part.is_empty() && !PinPadSetting::parse(None, Some(part)).allows(reader));
    Some(match part {
        Some(part) => format!("CPX_PINPAD_IGNORE ({part:?})"),
        None => "CPX_PINPAD_IGNORE".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pad() -> ReaderFeatures {
        ReaderFeatures::parse(&[
            0x06, 4, 0x42, 0x33, 0, 6, // VERIFY
            0x07, 4, 0x42, 0x33, 0, 7, // MODIFY
        ])
        .unwrap_or_default()
    }

    #[test]
    fn no_verify_feature_is_no_pad() {
        let only_modify = ReaderFeatures::parse(&[0x07, 4, 0x42, 0x33, 0, 7]).unwrap_or_default();
        let info = PadInfo::from_answers("r", &only_modify, None, None);
        assert!(!info.available && !info.used);
        assert_eq!(info.text(), "no PIN pad");
    }

    #[test]
    fn display_and_lengths_from_the_properties() {
        let props = ReaderProperties {
            lcd_layout: Some(0x0210),
            min_pin_size: Some(4),
            max_pin_size: Some(8),
            firmware_id: Some(b"fw 1.0\0".to_vec()),
            ..ReaderProperties::default()
        };
        let info = PadInfo::from_answers("r", &pad(), Some(&props), None);
        assert_eq!(
            info.display,
            Some(Display {
                lines: 2,
                characters: 16
            })
        );
        assert_eq!(info.firmware.as_deref(), Some("fw 1.0"));
        assert_eq!(info.text(), "PIN pad (display 2×16, PIN 4 to 8 digits)");
        let none = PadInfo::from_answers("r", &pad(), None, Some(0));
        assert_eq!(none.display, None);
        assert_eq!(none.text(), "PIN pad");
    }

    #[test]
    fn a_hostile_firmware_id_is_made_safe() {
        let props = ReaderProperties {
            firmware_id: Some(b"\x1b[2Jfw\xff\x9b1\0".to_vec()),
            ..ReaderProperties::default()
        };
        let info = PadInfo::from_answers("r", &pad(), Some(&props), None);
        // Controls and invalid UTF-8 become U+FFFD (docs/cli-json.md); a trailing NUL goes.
        assert_eq!(info.firmware.as_deref(), Some("\u{FFFD}[2Jfw\u{FFFD}\u{FFFD}1"));
    }

    #[test]
    fn turned_off_by_either_variable() {
        assert_eq!(turned_off_by("r", None, None), None);
        assert_eq!(turned_off_by("r", Some("on"), None), None);
        assert_eq!(
            turned_off_by("r", Some("OFF"), None).as_deref(),
            Some("CPX_PINPAD=OFF")
        );
        assert_eq!(
            turned_off_by("r", Some("0"), None).as_deref(),
            Some("CPX_PINPAD=0")
        );
        assert_eq!(
            turned_off_by("r", Some("maybe"), None),
            None,
            "unknown values leave pads on"
        );
        let ignore = Some("Cherry; SPR332");
        assert_eq!(
            turned_off_by("SCM Microsystems Inc. SPR332 00 00", None, ignore).as_deref(),
            Some("CPX_PINPAD_IGNORE (\"SPR332\")")
        );
        assert_eq!(turned_off_by("Gemalto PC Pinpad 00 00", None, ignore), None);
        assert_eq!(
            turned_off_by("Cherry GmbH SmartTerminal ST-2xxx 00 00", None, Some("cherry")).as_deref(),
            Some("CPX_PINPAD_IGNORE (\"cherry\")"),
            "the card layer's rule: any case"
        );
        assert_eq!(
            turned_off_by("any", None, Some(";;")),
            None,
            "empty parts match nothing"
        );
    }
}

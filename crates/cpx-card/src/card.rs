//! The one API over both generations.

use cpx_transport::{CardChannel, ExchangePolicy};
use zeroize::Zeroizing;

use crate::atr::{Generation, Interface, identify_atr};
use crate::commands::{AID_P15_CL, AID_P15_CONTACT};
use crate::crypto::{KeyRole, Mechanism};
use crate::data::{self, DataObject, EfActua};
use crate::error::CardError;
use crate::io::Io;
use crate::pin::{Pin, PinKind, PinStatus};
use crate::pkcs15::{dir, tokeninfo};
use crate::session;
use crate::state::State;
use crate::{cps3, cps4};

/// A certificate read from the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// CDF label, e.g. "Certificat de Signature CPS".
    pub label: String,
    /// CKA_ID (the private key's iD).
    pub id: Vec<u8>,
    /// CA certificate.
    pub authority: bool,
    /// X.509 DER.
    pub der: Vec<u8>,
}

/// An open CPS3 or CPS4.
///
/// Every operation runs in one PC/SC transaction. A reset (another program, or the same card
/// reinserted) is recovered: the application is re-selected and the serial checked; if a PIN had
/// been verified the call fails with [`CardError::PinStateLost`], otherwise it is done again once.
/// VERIFY, CHANGE and unblock are never resent. Another card in the reader gives
/// [`CardError::DifferentCard`] from then on.
pub struct Card {
    channel: Box<dyn CardChannel>,
    st: State,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Card")
            .field("reader", &self.channel.reader())
            .field("generation", &self.st.generation)
            .field("interface", &self.st.interface)
            .field("serial", &self.st.serial)
            .finish()
    }
}

/// The application path: 3F00/0001 on a CPS3 contact card (real trace, spec §1.4 point 4); from
/// EF.DIR otherwise (the CPS3 contactless and CPS4 paths are not public; spec §10.3).
fn app_path(io: &mut Io<'_>, generation: Generation, interface: Interface) -> Result<Vec<u8>, CardError> {
    if (generation, interface) == (Generation::Cps3, Interface::Contact) {
        return Ok(vec![0x3F, 0x00, 0x00, 0x01]);
    }
    let aid = match interface {
        Interface::Contact => &AID_P15_CONTACT[..],
        Interface::Contactless => &AID_P15_CL[..],
    };
    let ef_dir = io
        .read_file(&[0x3F, 0x00, 0x2F, 0x00], "EF.DIR")?
        .ok_or_else(|| CardError::ObjectNotFound("EF.DIR".into()))?;
    dir::app_path(&ef_dir, aid)?
        .ok_or_else(|| CardError::ObjectNotFound("PKCS#15 application in EF.DIR".into()))
}

impl Card {
    /// Identify the card (ATR, then EF.SN.ICC with the issuer check) and read TokenInfo.
    ///
    /// # Errors
    /// [`CardError::NotCpxCard`] for an unknown ATR, [`CardError::WrongIssuer`], transport
    /// errors, malformed data.
    pub fn open(mut channel: Box<dyn CardChannel>) -> Result<Card, CardError> {
        let (generation, interface) = identify_atr(channel.atr())?;
        channel.set_policy(match generation {
            Generation::Cps3 => ExchangePolicy::CPS3,
            Generation::Cps4 => ExchangePolicy::CPS4,
        });
        let st = {
            let mut tx = channel.transaction()?;
            let mut io = Io::new(&mut *tx, generation);
            if generation == Generation::Cps4 {
                // spec §1.3: ChipDoc on channel 1, no MANAGE CHANNEL.
                io.select_cps_aid()?;
            }
            let serial = session::read_serial(&mut io)?;
            let app = app_path(&mut io, generation, interface)?;
            let mut ti_path = app.clone();
            ti_path.extend_from_slice(&[0x50, 0x32]);
            let ti = io
                .read_file(&ti_path, "TokenInfo")?
                .ok_or_else(|| CardError::ObjectNotFound("TokenInfo".into()))?;
            State::new(generation, interface, serial, app, tokeninfo::parse(&ti)?)
        };
        log::debug!(target: "cpx::card", "{}: {:?} {:?} serial {}", channel.reader(), generation, interface, st.serial);
        Ok(Card { channel, st })
    }

    /// CPS3 or CPS4.
    pub fn generation(&self) -> Generation {
        self.st.generation
    }

    /// Contact or contactless.
    pub fn interface(&self) -> Interface {
        self.st.interface
    }

    /// The serial number as the official module shows it (spec §1.3), e.g. "99213845".
    pub fn serial(&self) -> &str {
        &self.st.serial
    }

    /// "IAS ECC" or "ChipDoc" (spec §5.2).
    pub fn model(&self) -> &'static str {
        self.st.generation.model()
    }

    /// TokenInfo label, or "(unknown)" (spec §1.4 point 5).
    pub fn token_label(&self) -> &str {
        self.st.token.label.as_deref().unwrap_or("(unknown)")
    }

    /// TokenInfo manufacturerID, or "(unknown)".
    pub fn manufacturer(&self) -> &str {
        self.st.token.manufacturer.as_deref().unwrap_or("(unknown)")
    }

    /// Whether this session verified the PIN (and no reset has happened since).
    pub fn pin_verified(&self) -> bool {
        self.st.pin_verified
    }

    /// The reader name.
    pub fn reader(&self) -> &str {
        self.channel.reader()
    }

    fn attempt<T>(
        &mut self,
        f: &mut impl FnMut(&mut Io<'_>, &mut State) -> Result<T, CardError>,
    ) -> Result<T, CardError> {
        let mut tx = self.channel.transaction()?;
        let mut io = Io::new(&mut *tx, self.st.generation);
        f(&mut io, &mut self.st)
    }

    /// Re-select and check the serial after a reset or reinsertion.
    fn reattach(&mut self) -> Result<(), CardError> {
        self.st.pin_verified = false;
        let (generation, _) = identify_atr(self.channel.atr())?;
        let result = if generation == self.st.generation {
            let serial = self.st.serial.clone();
            self.attempt(&mut |io, _| session::reattach(io, &serial))
        } else {
            Err(CardError::DifferentCard {
                expected: self.st.serial.clone(),
                found: format!("a {generation:?} card"),
            })
        };
        if let Err(CardError::DifferentCard { found, .. }) = &result {
            self.st.replaced_by = Some(found.clone());
        }
        result
    }

    fn run<T>(
        &mut self,
        retry: bool,
        mut f: impl FnMut(&mut Io<'_>, &mut State) -> Result<T, CardError>,
    ) -> Result<T, CardError> {
        if let Some(found) = &self.st.replaced_by {
            return Err(CardError::DifferentCard {
                expected: self.st.serial.clone(),
                found: found.clone(),
            });
        }
        let first = self.attempt(&mut f);
        let lost = match &first {
            Err(e) if e.is_reset() => true,
            Err(CardError::CardRemoved { .. }) => {
                // The card may be back (or another one): reconnect and check.
                if self.channel.reconnect(false).is_err() {
                    return first;
                }
                true
            }
            _ => false,
        };
        if !lost {
            return first;
        }
        let was_verified = self.st.pin_verified;
        self.reattach()?;
        if was_verified || !retry {
            return Err(CardError::PinStateLost);
        }
        self.attempt(&mut f)
    }

    /// Reconnect after [`CardError::CardRemoved`] and check that the card is the same one.
    ///
    /// # Errors
    /// [`CardError::DifferentCard`] when another card is in the reader; transport errors.
    pub fn reconnect(&mut self) -> Result<(), CardError> {
        self.channel.reconnect(false)?;
        self.reattach()
    }

    /// Status of the PIN or PUK (one SELECT MF + one GET DATA on CPS3, spec §3.2; one empty
    /// VERIFY on CPS4, spec §10.6).
    pub fn pin_status(&mut self, kind: PinKind) -> Result<PinStatus, CardError> {
        let mut all = self.pin_statuses(&[kind])?;
        all.pop()
            .ok_or_else(|| CardError::ObjectNotFound(kind.to_string()))
    }

    /// Status of several codes in one transaction (one SELECT MF for all on CPS3).
    pub fn pin_statuses(&mut self, kinds: &[PinKind]) -> Result<Vec<PinStatus>, CardError> {
        self.run(true, |io, st| match st.generation {
            Generation::Cps3 => cps3::pin_status(io, st, kinds),
            Generation::Cps4 => cps4::pin_status(io, st, kinds),
        })
    }

    /// VERIFY the PIN. The format is checked against the AODF before anything is sent; a failure
    /// is reported with the tries left and never retried.
    pub fn verify_pin(&mut self, pin: &Pin) -> Result<(), CardError> {
        self.verify(PinKind::User, pin)
    }

    /// VERIFY the PIN or the PUK.
    pub fn verify(&mut self, kind: PinKind, pin: &Pin) -> Result<(), CardError> {
        let r = self.run(false, |io, st| match st.generation {
            Generation::Cps3 => cps3::verify(io, st, kind, pin),
            Generation::Cps4 => cps4::verify(io, st, kind, pin),
        });
        if kind == PinKind::User {
            self.st.pin_verified = r.is_ok();
        }
        r
    }

    /// Change the PIN (CPS3 `24 00` old ‖ new; CPS4 VERIFY old + `24 01` new, spec §10.7).
    pub fn change_pin(&mut self, old: &Pin, new: &Pin) -> Result<(), CardError> {
        let r = self.run(false, |io, st| match st.generation {
            Generation::Cps3 => cps3::change(io, st, old, new),
            Generation::Cps4 => cps4::change(io, st, old, new),
        });
        if r.is_err() {
            self.st.pin_verified = false;
        }
        r
    }

    /// Unblock the PIN with the PUK and set a new PIN (spec §3.2, §9, §10.8). The PIN is not
    /// verified afterwards.
    pub fn unblock_pin(&mut self, puk: &Pin, new: &Pin) -> Result<(), CardError> {
        self.st.pin_verified = false;
        self.run(false, |io, st| match st.generation {
            Generation::Cps3 => cps3::unblock(io, st, puk, new),
            Generation::Cps4 => cps4::unblock(io, st, puk, new),
        })
    }

    /// Sign with a key (spec §4.2–§4.4). Returns the signature (modulus length).
    pub fn sign(&mut self, key: KeyRole, mechanism: Mechanism, data: &[u8]) -> Result<Vec<u8>, CardError> {
        self.run(true, |io, st| match st.generation {
            Generation::Cps3 => cps3::sign(io, st, key, mechanism, data),
            Generation::Cps4 => cps4::sign(io, st, key, mechanism, data),
        })
    }

    /// Decrypt a PKCS#1 v1.5 cryptogram with the authentication key (spec §4.3, §4.4). The
    /// plaintext is wiped on drop.
    pub fn decrypt(&mut self, key: KeyRole, cryptogram: &[u8]) -> Result<Zeroizing<Vec<u8>>, CardError> {
        self.run(true, |io, st| match st.generation {
            Generation::Cps3 => cps3::decrypt(io, st, key, cryptogram),
            Generation::Cps4 => cps4::decrypt(io, st, key, cryptogram),
        })
    }

    /// All certificates of the CDF, read (ODF and CDF on first use).
    pub fn certificates(&mut self) -> Result<Vec<Certificate>, CardError> {
        self.run(true, |io, st| {
            let infos = st.cdf(io)?;
            infos
                .into_iter()
                .map(|c| {
                    let der = io.read_der(&c.path.absolute(&st.app_path), &c.common.label)?;
                    Ok(Certificate {
                        label: c.common.label,
                        id: c.id,
                        authority: c.authority,
                        der,
                    })
                })
                .collect()
        })
    }

    /// The certificate of a key (matched by iD through the PrKDF).
    pub fn certificate(&mut self, key: KeyRole) -> Result<Certificate, CardError> {
        self.run(true, |io, st| {
            let id = st.key_id(io, key)?;
            let c = st
                .cdf(io)?
                .into_iter()
                .find(|c| c.id == id)
                .ok_or_else(|| CardError::ObjectNotFound(format!("certificate of the {key:?} key")))?;
            let der = io.read_der(&c.path.absolute(&st.app_path), &c.common.label)?;
            Ok(Certificate {
                label: c.common.label,
                id: c.id,
                authority: c.authority,
                der,
            })
        })
    }

    /// The business data objects (DODF, plus the CPS2ter objects of a CPS3, spec §2.4).
    pub fn data_objects(&mut self) -> Result<Vec<DataObject>, CardError> {
        self.run(true, data::list)
    }

    /// The raw value of the data object `label`. Private objects need the PIN
    /// ([`CardError::SecurityStatusNotSatisfied`] otherwise).
    pub fn read_data_object(&mut self, label: &str) -> Result<Vec<u8>, CardError> {
        self.run(true, |io, st| {
            let object = data::list(io, st)?
                .into_iter()
                .find(|o| o.label == label)
                .ok_or_else(|| CardError::ObjectNotFound(label.to_owned()))?;
            data::read(io, &object)
        })
    }

    /// EF_ACTUA (CPS3 contact; `None` when absent and on CPS4, spec §5.7).
    pub fn ef_actua(&mut self) -> Result<Option<EfActua>, CardError> {
        self.run(true, |io, st| data::ef_actua(io, st))
    }
}

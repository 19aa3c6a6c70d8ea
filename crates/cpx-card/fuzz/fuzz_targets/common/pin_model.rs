//! What a card's PIN and PUK must be after each operation, from the rules alone — not from the
//! driver's code nor the emulator's (issue 20: a bug both share must show).
//!
//! Rules and their sources:
//! - VERIFY right: tries back to the maximum, verified (ISO 7816-4 §11.5.6, VERIFY; a successful
//!   comparison resets the retry counter). Wrong: one try less (63Cx, docs/card-spec.md §3.2/§3.3); at 0 the
//!   code is blocked and every VERIFY answers 6983, spending nothing (docs/card-spec.md §3.3).
//! - Whether a *failed* comparison clears the verified state is not said by the sources: the
//!   model then does not know (`None`) until the card is asked (empty VERIFY, docs/card-spec.md §3.2/§10.6).
//! - A malformed code (length or characters outside the AODF policy: 4 digits on the CPS3,
//!   docs/card-spec.md §3.1 and crates/cpx-emulator/CHOICES.md; 4–8 digits on the CPS4) is refused before any
//!   APDU, nothing spent (docs/card-spec.md §3.1: "no APDU sent"; the project's "never burn a PIN try by
//!   mistake").
//! - CHANGE old→new: as a VERIFY of old, then the value is new (docs/card-spec.md §3.2 table, C_SetPIN).
//! - Unblock with the PUK: as a VERIFY of the PUK; right → the PIN's tries back to the maximum,
//!   its value the new one, one PUK use spent (docs/card-notes.md §4: 10 tries and 100 unblocks;
//!   docs/card-spec.md §8.4 usage counter 9D), and the PIN not verified afterwards (`Card::unblock_pin`
//!   docs); a PUK with no use left is blocked (docs/card-spec.md §3.2: 9D = 0 forces tries left to 0).
//! - Logout (VERIFY P1=FF, ISO 7816-4 §11.5.6 "reset the verification status"): not verified.

/// One code's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub value: Vec<u8>,
    pub tries: u8,
    pub max: u8,
    /// PUK only: unblocks left.
    pub uses: Option<u16>,
    /// On the card; `None` when the rules do not say.
    pub verified: Option<bool>,
}

impl Code {
    pub fn blocked(&self) -> bool {
        self.tries == 0 || self.uses == Some(0)
    }
}

/// What an operation must return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Refused before any APDU.
    Format,
    /// A wrong code with this many tries left (0: the card may also say "blocked", docs/card-spec.md §3.3:
    /// 63C0 gives CKR_PIN_LOCKED on the CPS4).
    Wrong(u8),
    Blocked,
}

/// The PIN and the PUK.
#[derive(Debug, Clone)]
pub struct Model {
    pub pin: Code,
    pub puk: Code,
}

/// A well-formed code for both cards: digits only, 4 for a PIN (docs/card-spec.md §3.1: CPS3 4 digits, CPS4
/// 4..8), 8 for a PUK.
pub fn well_formed(code: &[u8], puk: bool) -> bool {
    let len_ok = if puk { code.len() == 8 } else { code.len() == 4 };
    len_ok && code.iter().all(u8::is_ascii_digit)
}

/// A comparison of `given` with `code`'s value (VERIFY, or the first half of CHANGE/unblock).
fn compare(code: &mut Code, given: &[u8]) -> Outcome {
    if code.blocked() {
        return Outcome::Blocked;
    }
    if given == code.value.as_slice() {
        code.tries = code.max;
        code.verified = Some(true);
        Outcome::Ok
    } else {
        code.tries -= 1;
        code.verified = None;
        Outcome::Wrong(code.tries)
    }
}

impl Model {
    pub fn verify(&mut self, puk: bool, given: &[u8]) -> Outcome {
        if !well_formed(given, puk) {
            return Outcome::Format;
        }
        compare(if puk { &mut self.puk } else { &mut self.pin }, given)
    }

    pub fn change(&mut self, old: &[u8], new: &[u8]) -> Outcome {
        if !well_formed(old, false) || !well_formed(new, false) {
            return Outcome::Format;
        }
        let r = compare(&mut self.pin, old);
        if r == Outcome::Ok {
            self.pin.value = new.to_vec();
            // The CPS3 changes in one command, the CPS4 verifies first (docs/card-spec.md §3.2): not said.
            self.pin.verified = None;
        }
        r
    }

    pub fn unblock(&mut self, puk: &[u8], new: &[u8]) -> Outcome {
        if !well_formed(puk, true) || !well_formed(new, false) {
            return Outcome::Format;
        }
        let r = compare(&mut self.puk, puk);
        if r == Outcome::Ok {
            if let Some(u) = &mut self.puk.uses {
                *u -= 1;
            }
            self.pin.value = new.to_vec();
            self.pin.tries = self.pin.max;
            self.pin.verified = Some(false);
            // The CPS3 takes the PUK inside the command (one-shot), the CPS4 verifies it first
            // (docs/card-spec.md §3.2): whether it stays verified is not said.
            self.puk.verified = None;
        }
        r
    }

    pub fn logout(&mut self) {
        self.pin.verified = Some(false);
        self.puk.verified = Some(false);
    }
}

/// A file of the model's file system: where it is and what a READ BINARY of it must give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum File {
    /// A DF (the MF, the application DF): READ BINARY has no current EF (ISO 7816-4 §7.2.3:
    /// not 9000).
    Df,
    /// A transparent EF whose first bytes are `head`; `private` = read needs the PIN.
    Ef { head: Vec<u8>, private: bool },
}

/// The selected file as far as the rules know: set by a SELECT, unknown after anything else
/// (which file the driver leaves selected is the driver's business; a failed SELECT's effect on
/// the current file is not said by the sources).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selected {
    Unknown,
    File(File),
}

/// What a raw SELECT or READ BINARY must answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawOutcome {
    /// 9000 with these first bytes (empty for a SELECT without FCP).
    Ok(Vec<u8>),
    /// `6A82` (file not found, ISO 7816-4 §5.6).
    NotFound,
    /// `6982` (security status not satisfied: a private EF without the PIN).
    Denied,
    /// Anything but 9000 (READ BINARY with a DF selected).
    NotOk,
    /// The rules do not say (nothing selected that the model knows).
    Unknown,
}

/// The CPS3 contact file system as the sources describe it (docs/card-spec.md §1.3, §2.2; notes "DF
/// 3F00/0001"): the MF, the application DF `3F00/0001`, EF.SN.ICC `3F00/D003` (`5A 0A` + PAN),
/// and the business data EFs under the application DF (DODF, docs/card-spec.md §2.4: FID, private flag and
/// content given by the card image, which is data, not the emulator's code).
#[derive(Debug, Clone)]
pub struct Files {
    pub files: Vec<(Vec<u8>, File)>,
    pub selected: Selected,
}

impl Files {
    pub fn select(&mut self, path: &[u8]) -> RawOutcome {
        match self.files.iter().find(|(p, _)| p == path) {
            Some((_, f)) => {
                self.selected = Selected::File(f.clone());
                RawOutcome::Ok(Vec::new())
            }
            None => {
                self.selected = Selected::Unknown;
                RawOutcome::NotFound
            }
        }
    }

    /// READ BINARY from offset 0 of `head`'s length, with the PIN verified or not (`None`:
    /// unknown).
    pub fn read(&self, pin_verified: Option<bool>) -> RawOutcome {
        match &self.selected {
            Selected::Unknown => RawOutcome::Unknown,
            Selected::File(File::Df) => RawOutcome::NotOk,
            Selected::File(File::Ef { head, private: false }) => RawOutcome::Ok(head.clone()),
            Selected::File(File::Ef { head, private: true }) => match pin_verified {
                Some(true) => RawOutcome::Ok(head.clone()),
                Some(false) => RawOutcome::Denied,
                None => RawOutcome::Unknown,
            },
        }
    }
}

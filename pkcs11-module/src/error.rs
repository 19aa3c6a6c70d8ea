//! The module's one error type and its mapping to `CK_RV` (in [`Error::rv`], the only place).

use cpx_card::CardError;
use cryptoki_sys::*;

/// Why a PKCS#11 call failed.
#[derive(Debug)]
pub enum Error {
    /// A return code decided by the module's own checks (handles, states, arguments).
    Ck(CK_RV),
    /// The output buffer is too small; the size needed.
    BufferTooSmall(usize),
    /// A card-layer failure, mapped per docs/card-spec.md §3.3 by [`Error::rv`].
    Card(CardError),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Ck(rv) => write!(f, "{} (0x{rv:08X})", rv_name(*rv)),
            Error::BufferTooSmall(n) => write!(f, "buffer too small: {n} bytes needed"),
            Error::Card(e) => write!(f, "card: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<CardError> for Error {
    fn from(e: CardError) -> Self {
        Error::Card(e)
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand: `Err(Error::Ck(rv))`.
pub fn ck<T>(rv: CK_RV) -> Result<T> {
    Err(Error::Ck(rv))
}

impl Error {
    /// The one mapping to `CK_RV`. Card errors follow docs/card-spec.md §3.3; context-specific codes (PIN
    /// length on C_SetPIN, data length on C_Sign) are decided by the caller before this point.
    pub fn rv(&self) -> CK_RV {
        match self {
            Error::Ck(rv) => *rv,
            Error::BufferTooSmall(_) => CKR_BUFFER_TOO_SMALL,
            Error::Card(e) => card_rv(e),
        }
    }

    /// [`Error::rv`] for a failure of `function`: a card error whose code the standard does not
    /// list for that function (a status word read while a search or a login reads the card's
    /// files lazily, e.g. `6982` → CKR_USER_NOT_LOGGED_IN from C_FindObjectsInit) becomes
    /// CKR_DEVICE_ERROR, so that a misbehaving card never makes a function answer a code its
    /// callers cannot expect; C_WaitForSlotEvent, which may return no device code at all,
    /// answers CKR_FUNCTION_FAILED for any PC/SC or card failure. The module's own codes
    /// ([`Error::Ck`]) are left as decided.
    ///
    /// ```
    /// use cpx_card::CardError;
    /// use cpx_pkcs11::error::Error;
    /// use cpx_transport::TransportError;
    /// use cryptoki_sys::{CKR_DEVICE_REMOVED, CKR_FUNCTION_FAILED};
    ///
    /// let gone = Error::Card(CardError::Transport(TransportError::NoService));
    /// assert_eq!(gone.rv_for("C_Sign"), CKR_DEVICE_REMOVED);
    /// assert_eq!(gone.rv_for("C_WaitForSlotEvent"), CKR_FUNCTION_FAILED);
    /// ```
    pub fn rv_for(&self, function: &str) -> CK_RV {
        let mut rv = self.rv();
        // C_Decrypt's list (PKCS#11 2.40 §5.9) names the ciphertext, not data: a card refusing
        // it (6A80: padding that does not decode) or a length it cannot take is the encrypted
        // data's fault.
        if function == "C_Decrypt" {
            rv = match rv {
                CKR_DATA_INVALID => CKR_ENCRYPTED_DATA_INVALID,
                CKR_DATA_LEN_RANGE => CKR_ENCRYPTED_DATA_LEN_RANGE,
                other => other,
            };
        }
        match (self, card_codes(function)) {
            (Error::Card(_), Some((allowed, otherwise))) if !allowed.contains(&rv) => otherwise,
            _ => rv,
        }
    }
}

/// The codes PKCS#11 2.40 (§5.5–§5.12) lets these functions return for a failure on the card's
/// side, and the one they answer for any other card failure; `None`: the function's card errors
/// are mapped as they are (docs/card-spec.md §3.3).
fn card_codes(function: &str) -> Option<(&'static [CK_RV], CK_RV)> {
    const TOKEN: &[CK_RV] = &[
        CKR_DEVICE_ERROR,
        CKR_DEVICE_MEMORY,
        CKR_DEVICE_REMOVED,
        CKR_TOKEN_NOT_PRESENT,
        CKR_TOKEN_NOT_RECOGNIZED,
        CKR_FUNCTION_FAILED,
    ];
    const SEARCH: &[CK_RV] = &[
        CKR_DEVICE_ERROR,
        CKR_DEVICE_MEMORY,
        CKR_DEVICE_REMOVED,
        CKR_FUNCTION_FAILED,
        CKR_SESSION_CLOSED,
        CKR_SESSION_HANDLE_INVALID,
    ];
    const ATTRIBUTES: &[CK_RV] = &[
        CKR_ATTRIBUTE_SENSITIVE,
        CKR_ATTRIBUTE_TYPE_INVALID,
        CKR_DEVICE_ERROR,
        CKR_DEVICE_MEMORY,
        CKR_DEVICE_REMOVED,
        CKR_FUNCTION_FAILED,
        CKR_OBJECT_HANDLE_INVALID,
        CKR_SESSION_CLOSED,
        CKR_SESSION_HANDLE_INVALID,
    ];
    const LOGIN: &[CK_RV] = &[
        CKR_DEVICE_ERROR,
        CKR_DEVICE_MEMORY,
        CKR_DEVICE_REMOVED,
        // Cancel or timeout on the reader's PIN pad (docs/pkcs11-module.md).
        CKR_FUNCTION_CANCELED,
        CKR_FUNCTION_FAILED,
        CKR_PIN_INCORRECT,
        CKR_PIN_LOCKED,
        CKR_SESSION_CLOSED,
        CKR_SESSION_HANDLE_INVALID,
        CKR_USER_PIN_NOT_INITIALIZED,
    ];
    const SIGN_INIT: &[CK_RV] = &[
        CKR_DEVICE_ERROR,
        CKR_DEVICE_MEMORY,
        CKR_DEVICE_REMOVED,
        CKR_FUNCTION_FAILED,
        CKR_KEY_FUNCTION_NOT_PERMITTED,
        CKR_KEY_HANDLE_INVALID,
        CKR_KEY_SIZE_RANGE,
        CKR_KEY_TYPE_INCONSISTENT,
        CKR_MECHANISM_INVALID,
        CKR_MECHANISM_PARAM_INVALID,
        CKR_SESSION_CLOSED,
        CKR_SESSION_HANDLE_INVALID,
        CKR_USER_NOT_LOGGED_IN,
    ];
    const DECRYPT: &[CK_RV] = &[
        CKR_DEVICE_ERROR,
        CKR_DEVICE_MEMORY,
        CKR_DEVICE_REMOVED,
        CKR_ENCRYPTED_DATA_INVALID,
        CKR_ENCRYPTED_DATA_LEN_RANGE,
        CKR_FUNCTION_FAILED,
        CKR_SESSION_CLOSED,
        CKR_SESSION_HANDLE_INVALID,
        CKR_USER_NOT_LOGGED_IN,
    ];
    let allowed = match function {
        "C_Decrypt" => DECRYPT,
        "C_SignInit" | "C_VerifyInit" | "C_DecryptInit" | "C_EncryptInit" => SIGN_INIT,
        "C_GetTokenInfo" | "C_OpenSession" | "C_GetMechanismList" | "C_GetMechanismInfo" => TOKEN,
        "C_FindObjectsInit" | "C_FindObjects" => SEARCH,
        "C_GetAttributeValue" => ATTRIBUTES,
        "C_Login" => LOGIN,
        // §5.5 lists for it only ARGUMENTS_BAD, CRYPTOKI_NOT_INITIALIZED, FUNCTION_FAILED,
        // GENERAL_ERROR, HOST_MEMORY, NO_EVENT and OK; the conformance plan (docs/card-spec.md §6.1, rows
        // 108, 121–123) expects nothing else. A wait that cannot go on (pcscd gone, wherever the
        // waiter was at that moment) is CKR_FUNCTION_FAILED.
        "C_WaitForSlotEvent" => return Some((&[], CKR_FUNCTION_FAILED)),
        _ => return None,
    };
    Some((allowed, CKR_DEVICE_ERROR))
}

fn card_rv(e: &CardError) -> CK_RV {
    use cpx_transport::TransportError as T;
    match e {
        CardError::WrongPin { .. } => CKR_PIN_INCORRECT,
        CardError::PinBlocked { .. } => CKR_PIN_LOCKED,
        // docs/card-spec.md §3.1: a PIN outside the policy fails C_Login with PIN_INCORRECT, no APDU sent.
        CardError::PinFormat { .. } => CKR_PIN_INCORRECT,
        CardError::NoSuchPin(_) => CKR_USER_PIN_NOT_INITIALIZED,
        // The reader's own answers on its PIN pad (PC/SC part 10 6401, 6400): the user did not
        // go through with it; no try spent (docs/pkcs11-module.md, "PIN-pad readers").
        CardError::PinPadCancelled { .. } | CardError::PinPadTimeout { .. } => CKR_FUNCTION_CANCELED,
        // 6403: a code of the wrong length typed on the pad is refused as one typed on the host
        // (docs/card-spec.md §3.1: C_Login PIN_INCORRECT; C_SetPIN/C_InitPIN PIN_LEN_RANGE, mapped
        // by their callers).
        CardError::PinPadLength { .. } => CKR_PIN_INCORRECT,
        // 6402: the new PIN and its confirmation differ — the new PIN is not valid as given
        // (C_SetPIN and C_InitPIN only; OpenSC answers the same).
        CardError::PinPadMismatch { .. } => CKR_PIN_INVALID,
        // The pad cannot do it (no MODIFY, a PIN format it cannot take, turned off meanwhile).
        CardError::PinPadUnsupported { .. } => CKR_FUNCTION_FAILED,
        CardError::SecurityStatusNotSatisfied { .. } => CKR_USER_NOT_LOGGED_IN,
        // docs/card-spec.md §3.3: NOT_ALLOWED → KEY_TYPE_INCONSISTENT.
        CardError::NotAllowed { .. } => CKR_KEY_TYPE_INCONSISTENT,
        CardError::CardRemoved { .. } | CardError::PinStateLost | CardError::DifferentCard { .. } => {
            CKR_DEVICE_REMOVED
        }
        CardError::NotCpxCard { .. } | CardError::WrongIssuer { .. } => CKR_TOKEN_NOT_RECOGNIZED,
        CardError::Unsupported { .. } => CKR_KEY_FUNCTION_NOT_PERMITTED,
        CardError::InvalidInput { .. } => CKR_DATA_LEN_RANGE,
        CardError::Status { sw, .. } => match sw.to_u16() {
            0x6700 => CKR_DATA_LEN_RANGE,
            s if s & 0xFF00 == 0x6C00 => CKR_DATA_LEN_RANGE,
            0x6A80 | 0x6A86 | 0x6B00 => CKR_DATA_INVALID,
            _ => CKR_DEVICE_ERROR,
        },
        CardError::Transport(t) => match t {
            T::CardRemoved(_) | T::NoCard(_) | T::CardReset(_) => CKR_DEVICE_REMOVED,
            T::ReaderUnavailable(_) | T::UnknownReader(_) => CKR_DEVICE_REMOVED,
            // pcscd stopped: our handle on the card is gone with it.
            T::NoService => CKR_DEVICE_REMOVED,
            T::NoReaders => CKR_DEVICE_ERROR,
            _ => CKR_DEVICE_ERROR,
        },
        CardError::ObjectNotFound(_) => CKR_OBJECT_HANDLE_INVALID,
        // The card answered with data that cannot be what it claims (a hostile or broken card):
        // a device error, not the library's own failure.
        CardError::MalformedCardData { .. } => CKR_DEVICE_ERROR,
        _ => CKR_GENERAL_ERROR,
    }
}

/// Whether a card error means the token this module knew is gone (removed, reset with the PIN
/// lost, or replaced): the slot's sessions and login state must be dropped.
pub fn token_lost(e: &Error) -> bool {
    match e {
        Error::Card(c) => {
            matches!(
                c,
                CardError::CardRemoved { .. } | CardError::PinStateLost | CardError::DifferentCard { .. }
            ) || matches!(c, CardError::Transport(t) if t.is_card_gone() || matches!(t, cpx_transport::TransportError::NoService))
        }
        _ => false,
    }
}

/// The name of a return code, for logs.
pub fn rv_name(rv: CK_RV) -> &'static str {
    match rv {
        CKR_OK => "CKR_OK",
        CKR_ARGUMENTS_BAD => "CKR_ARGUMENTS_BAD",
        CKR_BUFFER_TOO_SMALL => "CKR_BUFFER_TOO_SMALL",
        CKR_CRYPTOKI_NOT_INITIALIZED => "CKR_CRYPTOKI_NOT_INITIALIZED",
        CKR_CRYPTOKI_ALREADY_INITIALIZED => "CKR_CRYPTOKI_ALREADY_INITIALIZED",
        CKR_DEVICE_REMOVED => "CKR_DEVICE_REMOVED",
        CKR_DEVICE_ERROR => "CKR_DEVICE_ERROR",
        CKR_GENERAL_ERROR => "CKR_GENERAL_ERROR",
        CKR_KEY_HANDLE_INVALID => "CKR_KEY_HANDLE_INVALID",
        CKR_KEY_TYPE_INCONSISTENT => "CKR_KEY_TYPE_INCONSISTENT",
        CKR_MECHANISM_INVALID => "CKR_MECHANISM_INVALID",
        CKR_MECHANISM_PARAM_INVALID => "CKR_MECHANISM_PARAM_INVALID",
        CKR_OBJECT_HANDLE_INVALID => "CKR_OBJECT_HANDLE_INVALID",
        CKR_OPERATION_ACTIVE => "CKR_OPERATION_ACTIVE",
        CKR_OPERATION_NOT_INITIALIZED => "CKR_OPERATION_NOT_INITIALIZED",
        CKR_PIN_INCORRECT => "CKR_PIN_INCORRECT",
        CKR_PIN_LEN_RANGE => "CKR_PIN_LEN_RANGE",
        CKR_PIN_LOCKED => "CKR_PIN_LOCKED",
        CKR_SESSION_HANDLE_INVALID => "CKR_SESSION_HANDLE_INVALID",
        CKR_SESSION_READ_ONLY_EXISTS => "CKR_SESSION_READ_ONLY_EXISTS",
        CKR_SLOT_ID_INVALID => "CKR_SLOT_ID_INVALID",
        CKR_TOKEN_NOT_PRESENT => "CKR_TOKEN_NOT_PRESENT",
        CKR_TOKEN_NOT_RECOGNIZED => "CKR_TOKEN_NOT_RECOGNIZED",
        CKR_USER_NOT_LOGGED_IN => "CKR_USER_NOT_LOGGED_IN",
        CKR_USER_ALREADY_LOGGED_IN => "CKR_USER_ALREADY_LOGGED_IN",
        CKR_USER_PIN_NOT_INITIALIZED => "CKR_USER_PIN_NOT_INITIALIZED",
        CKR_DATA_LEN_RANGE => "CKR_DATA_LEN_RANGE",
        CKR_SIGNATURE_INVALID => "CKR_SIGNATURE_INVALID",
        CKR_SIGNATURE_LEN_RANGE => "CKR_SIGNATURE_LEN_RANGE",
        CKR_FUNCTION_NOT_SUPPORTED => "CKR_FUNCTION_NOT_SUPPORTED",
        CKR_FUNCTION_FAILED => "CKR_FUNCTION_FAILED",
        CKR_NO_EVENT => "CKR_NO_EVENT",
        CKR_ATTRIBUTE_TYPE_INVALID => "CKR_ATTRIBUTE_TYPE_INVALID",
        CKR_ATTRIBUTE_SENSITIVE => "CKR_ATTRIBUTE_SENSITIVE",
        _ => "CKR_(other)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_errors_map_per_spec_3_3() {
        let e = Error::from(CardError::WrongPin {
            kind: cpx_card::PinKind::User,
            tries_left: 2,
        });
        assert_eq!(e.rv(), CKR_PIN_INCORRECT);
        assert_eq!(Error::from(CardError::PinStateLost).rv(), CKR_DEVICE_REMOVED);
        assert!(token_lost(&Error::from(CardError::PinStateLost)));
        assert_eq!(Error::BufferTooSmall(3).rv(), CKR_BUFFER_TOO_SMALL);
        assert_eq!(Error::Ck(CKR_NO_EVENT).rv(), CKR_NO_EVENT);
    }

    #[test]
    fn wait_for_slot_event_answers_only_codes_it_may_return() {
        use cpx_transport::TransportError as T;
        let failures = [
            CardError::Transport(T::NoService),
            CardError::Transport(T::CardRemoved("r".into())),
            CardError::Transport(T::NoReaders),
            CardError::Transport(T::CardMute("r".into())),
            CardError::CardRemoved { reader: "r".into() },
        ];
        for e in failures {
            let e = Error::from(e);
            assert_eq!(e.rv_for("C_WaitForSlotEvent"), CKR_FUNCTION_FAILED, "{e}");
            assert_ne!(e.rv_for("C_GetSlotList"), CKR_FUNCTION_FAILED, "{e}");
        }
        // The module's own codes stay as decided.
        for rv in [CKR_CRYPTOKI_NOT_INITIALIZED, CKR_NO_EVENT, CKR_ARGUMENTS_BAD] {
            assert_eq!(Error::Ck(rv).rv_for("C_WaitForSlotEvent"), rv);
        }
    }
}

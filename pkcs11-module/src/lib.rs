//! `libcpx_pkcs11.so`: a PKCS#11 module for the French health-professional cards CPS3 (IAS-ECC)
//! and CPS4 (ChipDoc), a drop-in replacement for the Cryptolib CPS module
//! (`docs/card-spec.md` §5).
//!
//! # Shape
//! - `ffi` (private) holds all `unsafe` code: `C_GetFunctionList` (2.40 list),
//!   `C_GetInterfaceList` / `C_GetInterface` (3.0 and 2.40), and every `C_X` as a thin shell:
//!   pointers checked (NULL → CKR_ARGUMENTS_BAD), converted to safe types, one safe call, the
//!   error mapped by [`Error::rv`](error::Error::rv), the whole wrapped in `catch_unwind`
//!   (a panic is CKR_GENERAL_ERROR, never an abort in the host application).
//! - The safe core mirrors `ffi/` by PKCS#11 chapter (2.40 §5.x); each `ffi/X.rs` calls the
//!   free functions of `X.rs`, which take the [`state::Module`]:
//!
//! | safe file | PKCS#11 functions (chapter) | ffi file |
//! |---|---|---|
//! | [`general`] | C_Initialize, C_Finalize, C_GetInfo (§5.4) | `ffi/general.rs` |
//! | [`slot`] | C_GetSlotList … C_GetMechanismInfo, C_WaitForSlotEvent (§5.5) | `ffi/slot.rs` |
//! | [`session`] | C_OpenSession … C_Logout, C_InitPIN, C_SetPIN (§5.5–5.6), C_GetFunctionStatus, C_CancelFunction (§5.16) | `ffi/session.rs` |
//! | [`object`] | C_FindObjects*, C_GetAttributeValue, C_SetAttributeValue (§5.7) | `ffi/object.rs` |
//! | [`sign`] | C_Sign*, C_Verify* (§5.11–5.12) | `ffi/sign.rs` |
//! | [`decrypt`] | C_Decrypt*, C_Encrypt* (§5.8–5.9) | `ffi/decrypt.rs` |
//! | [`digest`] | C_Digest* (§5.10) | `ffi/digest.rs` |
//! | [`random`] | C_SeedRandom, C_GenerateRandom (§5.14) | `ffi/random.rs` |
//!
//! - Below the chapter files, in layers (each uses only the layers under it; a test,
//!   `tests/layering.rs`, fails on any import cycle among these files):
//!   [`state`] (the [`Module`](state::Module) registry, no public field: slots, sessions,
//!   PC/SC; [`state::slot`] a slot and its token, [`state::session`] a session,
//!   [`state::events`] PC/SC polling and slot events) → [`ops`] (the per-session operation
//!   state) and [`token`] (an opened card, its PIN counters, [`token::build`] its object list,
//!   [`token::objects`] objects completed on demand) → [`objects`] and [`attributes`] (the
//!   object model) → [`cache`] (the disk cache; it and the objects hold the card layer's
//!   listing entries, `cpx_card::Certificate`, `PrivateKeyInfo`, `DataObject`, as they are), [`mechanisms`], [`readers`] (PC/SC backend: in-process virtual
//!   readers too with the `virtual-readers` feature, for tests and fuzzing), [`error`] (the
//!   one mapping to CK_RV), [`sync`].
//!
//! # Behaviour
//! - **Slots**: one per PC/SC reader; slot IDs are stable for the life of the process; a
//!   reader that disappears keeps its slot, without token. C_GetSlotInfo sends no APDU.
//! - **Tokens**: opened on first need (C_GetTokenInfo, C_OpenSession, C_GetMechanismList),
//!   reading the serial only (and EF_ACTUA for the disk cache): label `CPS3v3-<serial>` /
//!   `CPS4v1-<serial>` from TokenInfo, read at the first C_GetTokenInfo; model "IAS ECC" (the
//!   official module's, CPS4 included). Every file is read when an operation first needs it
//!   (issue 15; the fewest APDUs of each whole `pkcs11-tool` run: docs/apdu-minima.md).
//! - **PIN-counter flags** (COUNT_LOW, FINAL_TRY, LOCKED for PIN and PUK): cached, refreshed
//!   when older than [`token::PIN_STATUS_TTL`] (10 s) and after every PIN operation, instead of
//!   the official module's up to six APDUs on every C_GetTokenInfo.
//! - **Login** is per slot, shared by all sessions. C_Login(CKU_SO) verifies the PUK on the
//!   card; C_InitPIN then unblocks and sets the PIN with the PUK already verified (CPS3
//!   `00 2C 02`, CPS4 `01 2C 03` + `01 24 01`, docs/card-spec.md §3.2): the PUK is sent once and never kept
//!   in memory. The card's verified state is shared by every program using the card: C_Logout
//!   (and closing the last session, C_Finalize, exit) undoes only our own login — VERIFY P1=FF
//!   when our VERIFY is what logged the card in (C_Login asks the card first, with a VERIFY
//!   without data), of the PUK too after an SO login — and leaves a login another program made
//!   first. A login the card lost (another program logged it out: `6982`, or the card's answer
//!   when C_GetSessionInfo asks it, at most once a second) turns every session public, so one
//!   C_Login recovers. A private key handle kept across C_Logout gets CKR_USER_NOT_LOGGED_IN. A malformed PIN never reaches the card
//!   (the card layer checks it against the AODF, which also gives ulMinPinLen/ulMaxPinLen). The
//!   module never presents a PIN on its own: a card reset or removal drops the login and the
//!   sessions (CKR_DEVICE_REMOVED once per session, then CKR_SESSION_HANDLE_INVALID).
//! - **Objects** are built at first use from the CDF, PrKDF and DODF only (or the disk cache,
//!   below), each when needed: a private key lookup, C_SignInit or a private-key attribute
//!   reads the PrKDF alone; key labels, iDs, sizes and private flags come from it; a
//!   certificate is read when an attribute only it holds is asked or its public key is used; a data
//!   object's size query (NULL pValue, or CKA_VALUE_LEN)
//!   takes the FCP/FCI size (docs/card-spec.md §5.3). CKA_PRIVATE objects are visible after login only.
//!   CKA_ALWAYS_AUTHENTICATE is FALSE (see [`attributes`]).
//! - **Disk cache** ([`cache`]): with it (the default), a card's public objects (certificate
//!   DERs, the PrKDF/CDF/DODF descriptions, public non-modifiable data values, PIN lengths) are
//!   kept in one file per card under `$XDG_CACHE_HOME/cpx/pkcs11/` (else
//!   `$HOME/.cache/cpx/pkcs11/`; neither set: no cache). `CPX_PKCS11_CACHE=off` disables it,
//!   `CPX_PKCS11_CACHE=/abs/dir` moves it. The entry is keyed by the card's serial and, on a
//!   CPS3 contact card, EF_ACTUA (read once per insertion); on a CPS4 (no EF_ACTUA) the data
//!   objects are not cached. The entry keeps whatever a process read (files, each certificate
//!   once read) and serves the next process, even partly filled; a warm listing reads no file. A bad file is ignored and
//!   rewritten, never an error; values that need the PIN are never written.
//! - **C_SetAttributeValue** writes CKA_VALUE of modifiable data objects (CPS_DATA on CPS3,
//!   docs/card-spec.md §5.4); see [`object::set_attributes`] for the return codes (a value longer than the
//!   file is CKR_ATTRIBUTE_VALUE_INVALID, where the official module says CKR_GENERAL_ERROR).
//! - **C_GenerateRandom** asks the card (GET CHALLENGE, 8 bytes each, docs/card-spec.md §4.5); the token
//!   has CKF_RNG. The bytes go straight into the caller's buffer, in batches that release the
//!   card between them; see [`random`] for the length checks (at most 1 MiB per call).
//! - **Multi-part operations** are streamed: each C_SignUpdate / C_VerifyUpdate /
//!   C_DigestUpdate part is hashed as it comes and none of the message is kept, whatever its
//!   length (see [`ops`]).
//! - **Mechanisms** follow Tableau 2 of the specification: CKM_RSA_PKCS, CKM_SHA1/SHA256_RSA_PKCS,
//!   CKM_SHA_1, CKM_SHA256, and on CPS4 the three PSS mechanisms; contactless: CKM_RSA_PKCS
//!   only. Verify and encrypt are done in software with the certificate's key.
//! - **Thread safety** (CKF_OS_LOCKING_OK or not): native locks, see [`state`] for the model.
//!   A card does one operation at a time; different slots work in parallel, each with its own
//!   PC/SC context; C_GetSlotList, C_GetSlotInfo and C_GetSessionInfo never wait for a card
//!   operation, and a card that stops answering costs only its slot ([`state::slot::STUCK_AFTER`]).
//! - **Fork**: each process's state sits in a cell tagged with its pid; in a child every call
//!   returns CKR_CRYPTOKI_NOT_INITIALIZED (without touching any lock of the parent's) until the
//!   child calls C_Initialize, which starts afresh in a cell of its own.
//!
//! # Logging
//! Set `CPX_PKCS11_LOG` to an `env_logger` filter (`debug`, `cpx_pkcs11=debug,cpx::apdu=trace`):
//! logs go to stderr. PIN values are never logged (APDU traces mask them).

pub mod attributes;
pub mod cache;
pub mod decrypt;
pub mod digest;
pub mod error;
mod ffi;
pub mod general;
pub mod mechanisms;
pub mod object;
pub mod objects;
pub mod ops;
pub mod random;
pub mod readers;
pub mod session;
pub mod sign;
pub mod slot;
pub mod state;
pub mod sync;
pub mod token;

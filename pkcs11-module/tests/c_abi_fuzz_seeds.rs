//! Replays the committed seed corpus of the `pkcs11_calls` fuzz target
//! (pkcs11-module/tests/c_abi_fuzz/seeds) through the same harness, on stable, so that
//! `cargo test` checks every seed's C_* sequence: allowed return codes, closed sessions staying
//! invalid, wrong PINs refused, signatures that verify with the card's certificate. Then a few
//! hand-written sequences, encoded for the same decoder, that must each give a given code.
//!
//! The module runs in this process against emulated cards behind in-process virtual readers
//! (the `virtual-readers` feature, enabled for tests only): no pcscd needed.
//!
//! `C_ABI_FUZZ_TRACE=1` prints every call and its code. `cargo test -p cpx-pkcs11 --test
//! c_abi_fuzz_seeds -- --ignored write_seeds` rewrites the seeds from [`seeds_to_write`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod c_abi_fuzz;

use std::path::PathBuf;
use std::sync::Mutex;

use c_abi_fuzz::driver::{Stats, run_recorded};
use c_abi_fuzz::rv_lists::{allowed, known_deviation};
use cryptoki_sys::*;

/// The module is process-global: one sequence at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/c_abi_fuzz/seeds")
}

fn run(data: &[u8]) -> (Stats, Vec<(&'static str, CK_RV)>) {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let trace = std::env::var_os("C_ABI_FUZZ_TRACE").is_some();
    c_abi_fuzz::driver::TRACE.store(trace, std::sync::atomic::Ordering::Relaxed);
    run_recorded(data)
}

/// Writes the fuzzer's bytes for a sequence of calls, as `c_abi_fuzz::driver` decodes them
/// (each op is its `step` index, then the bytes its picks read, in order).
struct Seq(Vec<u8>);

/// The card images, as the driver's first byte picks them.
#[derive(Clone, Copy)]
enum Image {
    Cps3 = 0,
    Cps4 = 1,
    Contactless = 2,
}

/// Mechanism indexes of the driver's `mechanism_type`.
const RSA_PKCS: u8 = 0;
const SHA1_RSA_PKCS: u8 = 1;
const SHA256_RSA_PKCS: u8 = 2;
const SHA256_RSA_PKCS_PSS: u8 = 5;
const SHA256: u8 = 7;

impl Seq {
    fn new(image: Image) -> Seq {
        Seq(vec![image as u8])
    }
    fn bytes(mut self, b: &[u8]) -> Seq {
        self.0.extend_from_slice(b);
        self
    }
    /// C_Initialize(NULL).
    fn initialize(self) -> Seq {
        self.bytes(&[0, 0])
    }
    /// C_Finalize(NULL).
    fn finalize(self) -> Seq {
        self.bytes(&[1, 1])
    }
    fn get_info(self) -> Seq {
        self.bytes(&[2, 1])
    }
    /// C_GetSlotList(TRUE) into a buffer of `len` (0..=3) slots.
    fn slot_list(self, len: u8) -> Seq {
        self.bytes(&[3, 0, len, 2])
    }
    /// C_OpenSession on the first slot listed; `serial` false leaves out CKF_SERIAL_SESSION.
    fn open(self, serial: bool) -> Seq {
        self.bytes(&[8, 2, if serial { 3 } else { 1 }, 1])
    }
    /// C_CloseSession of the `i`-th open session.
    fn close(self, i: u8) -> Seq {
        self.bytes(&[10, i])
    }
    /// C_GetSessionInfo on the first session closed (none open).
    fn session_info_closed(self) -> Seq {
        self.bytes(&[12, 180, 1])
    }
    /// C_GetSessionInfo on the `i`-th open session.
    fn session_info(self, i: u8) -> Seq {
        self.bytes(&[12, i, 1])
    }
    /// C_Login(CKU_USER) with the card's PIN, or the same with its last digit changed.
    fn login(self, right: bool) -> Seq {
        self.bytes(&[13, 0, 3, if right { 0 } else { 4 }, 1])
    }
    /// C_Login(CKU_SO) with the card's PUK.
    fn login_so(self) -> Seq {
        self.bytes(&[13, 0, 0, 0, 1])
    }
    /// C_OpenSession(CKF_SERIAL_SESSION | CKF_RW_SESSION) on the first slot listed.
    fn open_rw(self) -> Seq {
        self.bytes(&[8, 2, 0, 1])
    }
    /// C_SetPIN from the current PIN to 1234.
    fn set_pin(self) -> Seq {
        self.bytes(&[28, 0, 1, 0, 1, 1, 2, 3, 4])
    }
    /// C_GetFunctionList with NULL (`null`) or a pointer.
    fn function_list(self, null: bool) -> Seq {
        self.bytes(&[31, 0, 3, if null { 0 } else { 1 }])
    }
    fn logout(self) -> Seq {
        self.bytes(&[15, 0])
    }
    /// C_FindObjectsInit with CKA_CLASS = CKO_PRIVATE_KEY, one C_FindObjects of 5, Final.
    fn find_private_keys(self) -> Seq {
        self.bytes(&[16, 0, 1, 0, 0, 3, 1, 1, 5, 2, 0])
    }
    /// C_FindObjectsInit with an empty template, one C_FindObjects of 5, Final.
    fn find_all(self) -> Seq {
        self.bytes(&[16, 0, 0, 1, 1, 5, 2, 0])
    }
    /// C_GetAttributeValue of CKA_CLASS, CKA_ID and CKA_VALUE of the `o`-th object found,
    /// with a size query (NULL), a 1-byte buffer and a 1020-byte one.
    fn attributes(self, o: u8) -> Seq {
        self.bytes(&[18, 0, o, 3, 0, 0, 1, 2, 3, 7, 255, 1])
    }
    /// C_GetAttributeValue size queries (NULL) of CKA_VALUE and CKA_ID of the `o`-th object
    /// found, which the driver then fetches with the lengths answered.
    fn attribute_sizes(self, o: u8) -> Seq {
        self.bytes(&[18, 0, o, 2, 3, 0, 1, 0, 1])
    }
    /// C_SignInit(mechanism without parameter, the `key`-th object found).
    fn sign_init(self, mechanism: u8, key: u8) -> Seq {
        self.bytes(&[19, 0, mechanism, 4, key, 1])
    }
    /// C_SignInit(CKM_SHA256_RSA_PKCS_PSS with SHA-256, MGF1-SHA-256, salt 32). The driver
    /// reads the byte of each parameter's odd value before the pick among them.
    fn sign_init_pss(self, key: u8) -> Seq {
        self.bytes(&[19, 0, SHA256_RSA_PKCS_PSS, 2, 0, 1, 0, 1, 1, 1, key, 1])
    }
    /// C_Sign of 20×AB into 256 bytes.
    fn sign(self) -> Seq {
        self.bytes(&[21, 0, 1, 0, 1, 5, 1])
    }
    /// C_Sign of 32×CD with a NULL output (the size query).
    fn sign_size_query(self) -> Seq {
        self.bytes(&[21, 0, 1, 1, 1, 0, 1])
    }
    /// C_SignUpdate of 3 bytes.
    fn sign_update(self) -> Seq {
        self.bytes(&[23, 0, 3, 1, 2, 3, 1])
    }
    /// C_SignFinal into 256 bytes.
    fn sign_final(self) -> Seq {
        self.bytes(&[21, 0, 0, 0, 1, 5, 1])
    }
    /// C_DigestInit(SHA-256) then C_Digest of 3 bytes into 256.
    fn digest(self) -> Seq {
        self.bytes(&[25, 0, SHA256, 4, 3, 1, 2, 3, 5, 1])
    }
    /// C_DecryptInit(CKM_RSA_PKCS, the `key`-th object) then C_Decrypt of 256×00 into 256.
    fn decrypt_zeros(self, key: u8) -> Seq {
        self.bytes(&[26, 0, RSA_PKCS, 4, key, 0, 5])
    }
    /// C_GenerateRandom of 32 bytes.
    fn random(self) -> Seq {
        self.bytes(&[27, 0, 2, 31, 1])
    }
    /// The card pulled out (`false`) or put back (`true`), then C_WaitForSlotEvent(DONT_BLOCK).
    fn card(self, present: bool) -> Seq {
        self.bytes(&[29, if present { 1 } else { 0 }, 0])
    }
}

/// The committed seeds: each reaches a deep state the fuzzer mutates from.
fn seeds_to_write() -> Vec<(&'static str, Seq)> {
    let signing = |image, mechanism, key| {
        Seq::new(image)
            .slot_list(3)
            .open(true)
            .login(true)
            .find_private_keys()
            .sign_init(mechanism, key)
            .sign_size_query()
            .sign()
            .sign_init(SHA1_RSA_PKCS, key)
            .sign_update()
            .sign_update()
            .sign_final()
            .logout()
    };
    // The contactless card has no PIN and signs CKM_RSA_PKCS only.
    let contactless = Seq::new(Image::Contactless)
        .slot_list(3)
        .open(true)
        .find_private_keys()
        .sign_init(RSA_PKCS, 0)
        .sign_size_query()
        .sign()
        .sign_init(RSA_PKCS, 0)
        .sign_update()
        .sign_final()
        .login(true);
    vec![
        ("seed-cps3-sign", signing(Image::Cps3, SHA256_RSA_PKCS, 0)),
        ("seed-cps4-sign", signing(Image::Cps4, SHA256_RSA_PKCS, 1)),
        ("seed-contactless-sign", contactless),
        ("seed-cps3-raw-pkcs", signing(Image::Cps3, RSA_PKCS, 1)),
        (
            "seed-cps4-pss",
            Seq::new(Image::Cps4)
                .slot_list(3)
                .open(true)
                .login(true)
                .find_private_keys()
                .sign_init_pss(0)
                .sign()
                .decrypt_zeros(0)
                .decrypt_zeros(1),
        ),
        // C_SetPIN where the module answered outside its list before issue 14 (SO session).
        (
            "seed-setpin-deviations",
            Seq::new(Image::Cps3)
                .slot_list(3)
                .open_rw()
                .login_so()
                .set_pin()
                .logout()
                .login(true)
                .set_pin(),
        ),
        (
            "seed-contactless-setpin",
            Seq::new(Image::Contactless).slot_list(3).open_rw().set_pin(),
        ),
        (
            "seed-cps4-attribute-sizes",
            Seq::new(Image::Cps4)
                .slot_list(3)
                .open(true)
                .find_all()
                .attribute_sizes(0)
                .attribute_sizes(1)
                .attribute_sizes(2)
                .attribute_sizes(3)
                .attribute_sizes(4),
        ),
        (
            "seed-cps3-decrypt",
            Seq::new(Image::Cps3)
                .slot_list(3)
                .open(true)
                .login(true)
                .find_private_keys()
                .decrypt_zeros(0)
                .decrypt_zeros(1)
                .sign_init(SHA256_RSA_PKCS, 1)
                .sign(),
        ),
        (
            "seed-cps3-objects",
            Seq::new(Image::Cps3)
                .slot_list(3)
                .open(true)
                .find_all()
                .attributes(0)
                .attributes(1)
                .attributes(2)
                .digest()
                .random()
                .close(0)
                .session_info_closed(),
        ),
        (
            "seed-cps4-lifecycle",
            Seq::new(Image::Cps4)
                .slot_list(3)
                .open(true)
                .login(false)
                .login(true)
                .finalize()
                .session_info_closed()
                .initialize()
                .slot_list(3)
                .open(true)
                .card(false)
                .session_info(0)
                .card(true)
                .open(true)
                .get_info(),
        ),
    ]
}

#[test]
#[ignore = "writes the seed corpus: run by hand after changing the decoder"]
fn write_seeds() {
    let dir = seed_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, seq) in seeds_to_write() {
        std::fs::write(dir.join(name), &seq.0).unwrap();
    }
}

/// Every committed seed, replayed: the rules hold and together they reach login, objects and
/// verified signatures.
#[test]
fn committed_seeds_follow_the_rules() {
    let dir = seed_dir();
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 5, "seed corpus missing: {seeds:?}");
    let mut reached = Stats::default();
    for seed in seeds {
        let data = std::fs::read(&seed).unwrap_or_else(|e| panic!("{}: {e}", seed.display()));
        let (stats, _) = run(&data);
        eprintln!("{}: {} bytes, {stats:?}", seed.display(), data.len());
        reached.logins += stats.logins;
        reached.objects += stats.objects;
        reached.signatures += stats.signatures;
    }
    // The seeds are what the fuzzer starts from: they must reach the deep states.
    assert!(
        reached.logins >= 5 && reached.objects >= 5 && reached.signatures >= 8,
        "the seeds no longer reach login, find and sign: {reached:?}"
    );
}

/// The codes of the calls to `function`, in order.
fn codes(record: &[(&'static str, CK_RV)], function: &str) -> Vec<CK_RV> {
    record
        .iter()
        .filter(|(f, _)| *f == function)
        .map(|(_, rv)| *rv)
        .collect()
}

#[test]
fn a_wrong_pin_is_incorrect_and_the_right_one_then_logs_in() {
    let (stats, record) = run(&Seq::new(Image::Cps3)
        .slot_list(3)
        .open(true)
        .login(false)
        .login(true)
        .0);
    assert_eq!(
        codes(&record, "C_Login"),
        [CKR_PIN_INCORRECT, CKR_OK],
        "{record:?}"
    );
    assert_eq!(stats.logins, 1);
}

#[test]
fn a_closed_session_is_invalid() {
    let (_, record) = run(&Seq::new(Image::Cps4)
        .slot_list(3)
        .open(true)
        .close(0)
        .session_info_closed()
        .0);
    assert_eq!(codes(&record, "C_CloseSession"), [CKR_OK], "{record:?}");
    assert_eq!(
        codes(&record, "C_GetSessionInfo"),
        [CKR_SESSION_HANDLE_INVALID],
        "{record:?}"
    );
}

#[test]
fn a_session_closed_by_finalize_stays_invalid_after_initialize() {
    let seq = Seq::new(Image::Cps3)
        .slot_list(3)
        .open(true)
        .finalize()
        .initialize()
        .slot_list(3)
        .open(true);
    let (_, record) = run(&seq.session_info_closed().0);
    assert_eq!(codes(&record, "C_OpenSession"), [CKR_OK, CKR_OK], "{record:?}");
    assert_eq!(
        codes(&record, "C_GetSessionInfo"),
        [CKR_SESSION_HANDLE_INVALID],
        "{record:?}"
    );
}

#[test]
fn an_empty_slot_buffer_is_too_small() {
    let (_, record) = run(&Seq::new(Image::Cps3).slot_list(0).0);
    assert_eq!(
        codes(&record, "C_GetSlotList"),
        [CKR_BUFFER_TOO_SMALL],
        "{record:?}"
    );
}

#[test]
fn a_session_without_the_serial_flag_is_refused() {
    let (_, record) = run(&Seq::new(Image::Cps3).slot_list(3).open(false).0);
    assert_eq!(
        codes(&record, "C_OpenSession"),
        [CKR_SESSION_PARALLEL_NOT_SUPPORTED],
        "{record:?}"
    );
}

#[test]
fn sign_without_sign_init_is_not_initialized() {
    let (_, record) = run(&Seq::new(Image::Cps3).slot_list(3).open(true).sign().0);
    assert_eq!(
        codes(&record, "C_Sign"),
        [CKR_OPERATION_NOT_INITIALIZED],
        "{record:?}"
    );
}

#[test]
fn nothing_answers_after_finalize() {
    let (_, record) = run(&Seq::new(Image::Cps3).finalize().get_info().0);
    assert_eq!(
        codes(&record, "C_GetInfo"),
        [CKR_CRYPTOKI_NOT_INITIALIZED],
        "{record:?}"
    );
}

#[test]
fn a_logged_in_signature_verifies_with_the_certificate() {
    for image in [Image::Cps3, Image::Cps4] {
        let seq = Seq::new(image)
            .slot_list(3)
            .open(true)
            .login(true)
            .find_private_keys();
        let (stats, record) = run(&seq.sign_init(SHA256_RSA_PKCS, 0).sign().0);
        assert_eq!(codes(&record, "C_Sign"), [CKR_OK], "{record:?}");
        assert_eq!(stats.signatures, 1, "{record:?}");
    }
}

/// The list rejects the code issue 14 reported for C_Decrypt (fixed: no longer a known
/// deviation); a code neither lists nor allows is refused.
#[test]
fn the_lists_know_the_issue_14_deviations() {
    assert!(!allowed("C_Decrypt", CKR_DATA_INVALID));
    assert!(known_deviation("C_Decrypt", CKR_DATA_INVALID).is_none());
    assert!(allowed("C_Decrypt", CKR_ENCRYPTED_DATA_INVALID));
    assert!(!allowed("C_Login", CKR_PIN_LEN_RANGE));
    assert!(!allowed("C_CloseSession", CKR_ARGUMENTS_BAD));
    assert!(allowed("C_GetSessionInfo", CKR_SESSION_HANDLE_INVALID));
    assert!(!allowed("C_GetSlotList", CKR_SESSION_HANDLE_INVALID));
    assert!(known_deviation("C_Sign", CKR_DATA_INVALID).is_none());
}

/// A CPS3 card's 6A80 to a bad padding (256×00) is CKR_ENCRYPTED_DATA_INVALID, the code in
/// C_Decrypt's list (issue 14; CKR_DATA_INVALID before), and no longer a known deviation.
#[test]
fn cps3_bad_padding_is_encrypted_data_invalid() {
    let seq = Seq::new(Image::Cps3)
        .slot_list(3)
        .open(true)
        .login(true)
        .find_private_keys();
    let (_, record) = run(&seq.decrypt_zeros(1).0);
    assert_eq!(codes(&record, "C_DecryptInit"), [CKR_OK], "{record:?}");
    assert_eq!(
        codes(&record, "C_Decrypt"),
        [CKR_ENCRYPTED_DATA_INVALID],
        "{record:?}"
    );
    assert!(known_deviation("C_Decrypt", CKR_DATA_INVALID).is_none());
}

/// C_SetPIN where no PIN can be set — the PUK in an SO session, a contactless token without
/// PIN — is CKR_FUNCTION_FAILED (issue 14; CKR_FUNCTION_NOT_SUPPORTED and
/// CKR_USER_PIN_NOT_INITIALIZED before, neither in C_SetPIN's list).
#[test]
fn set_pin_where_no_pin_can_be_set_fails_within_its_list() {
    let so = Seq::new(Image::Cps3).slot_list(3).open_rw().login_so().set_pin();
    let (_, record) = run(&so.0);
    assert_eq!(codes(&record, "C_SetPIN"), [CKR_FUNCTION_FAILED], "{record:?}");
    let cl = Seq::new(Image::Contactless).slot_list(3).open_rw().set_pin();
    let (_, record) = run(&cl.0);
    assert_eq!(codes(&record, "C_SetPIN"), [CKR_FUNCTION_FAILED], "{record:?}");
}

/// Replays the inputs named in `C_ABI_FUZZ_REPLAY` (colon-separated paths, e.g. a fuzzer's
/// crash artifact) on stable, with `C_ABI_FUZZ_TRACE=1` to see each call's code.
#[test]
#[ignore = "a tool: C_ABI_FUZZ_REPLAY=path[:path...] cargo test ... -- --ignored replay"]
fn replay() {
    let paths = std::env::var_os("C_ABI_FUZZ_REPLAY").expect("C_ABI_FUZZ_REPLAY names the inputs");
    for path in std::env::split_paths(&paths) {
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (stats, _) = run(&data);
        eprintln!("{}: {stats:?}", path.display());
    }
}

/// The seam stays out of the library programs load: `cargo build -p cpx-pkcs11 --lib` (what the
/// real-stack tests load, and with `--release` what scripts/build-deb.sh packages) exports no
/// marker of the `virtual-readers` feature, while this test binary, built with it, has one.
#[test]
fn the_built_library_has_no_virtual_readers() {
    assert_eq!(cpx_pkcs11::readers::cpx_pkcs11_test_backend_virtual_readers(), 1);
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let so = cpx_testkit::built_module(profile_dir, manifest.as_ref()).unwrap();
    let nm = std::process::Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&so)
        .output()
        .expect("nm (binutils)");
    assert!(nm.status.success(), "nm {}: {nm:?}", so.display());
    let symbols = String::from_utf8_lossy(&nm.stdout);
    assert!(
        symbols.contains(" C_GetFunctionList"),
        "{}: no C_GetFunctionList",
        so.display()
    );
    assert!(
        !symbols.contains("cpx_pkcs11_test_backend_virtual_readers"),
        "{} was built with the virtual-readers test backend",
        so.display()
    );
}

#[test]
fn function_list_refuses_null_before_and_after_finalize() {
    let seq = Seq::new(Image::Cps4)
        .function_list(true)
        .function_list(false)
        .finalize();
    let (_, record) = run(&seq.function_list(true).function_list(false).0);
    assert_eq!(
        codes(&record, "C_GetFunctionList"),
        [CKR_ARGUMENTS_BAD, CKR_OK, CKR_ARGUMENTS_BAD, CKR_OK],
        "{record:?}"
    );
}

//! Stateful fuzzing of the module's C ABI, in-process: the fuzzer's bytes become a sequence of
//! C_* calls with chosen arguments (handles valid, closed or random; mechanisms with garbage
//! parameters; odd templates; buffers of size 0 or declared huge; NULL pointers; C_Finalize and
//! C_Initialize in between; logins with the right or a wrong PIN; the card pulled out and put
//! back), run against a fresh emulated card per input through the module's real code, its
//! slots backed by in-process virtual readers (`cpx_pkcs11::readers`).
//!
//! After every call: no panic (the module catches them at the ABI: a hook here sees them), the
//! code is one PKCS#11 2.40 §5 lists for the function ([`rv_lists`]; issue-14 deviations
//! allowed and named), a session closed by C_CloseSession, C_CloseAllSessions or C_Finalize stays
//! invalid, a wrong PIN never logs in, and a signature answered CKR_OK verifies with the
//! card's certificate.
//!
//! Used by the cargo-fuzz target `pkcs11_calls` (crates/cpx-card/fuzz) and by the stable test
//! tests/c_abi_fuzz_seeds.rs, which replays the committed seeds.
#![allow(unsafe_code, dead_code, unreachable_pub)]

pub mod driver;
/// The §5 lists, shared with the other tests (tests/common/rv_lists.rs).
#[path = "../common/rv_lists.rs"]
pub mod rv_lists;
mod signatures;

#[allow(unused_imports)] // the fuzz target calls `c_abi_fuzz::run`; the seed replay does not.
pub use driver::run;

//! Stateful fuzzing of the PKCS#11 module's C ABI: the input is a sequence of C_* calls run
//! in-process against a fresh emulated card (see pkcs11-module/tests/c_abi_fuzz/mod.rs, shared
//! with the stable seed replay `cargo test -p cpx-pkcs11 --test c_abi_fuzz_seeds`).
//!
//! Seeds: pkcs11-module/tests/c_abi_fuzz/seeds (committed; the crate's corpus/ is not), e.g.
//! `cargo +nightly fuzz run pkcs11_calls corpus/pkcs11_calls ../../../pkcs11-module/tests/c_abi_fuzz/seeds`.
#![no_main]

#[path = "../../../../pkcs11-module/tests/c_abi_fuzz/mod.rs"]
mod c_abi_fuzz;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    c_abi_fuzz::run(data);
});

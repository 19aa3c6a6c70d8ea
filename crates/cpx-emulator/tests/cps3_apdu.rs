//! Data-driven APDU tests of the CPS3 models: `tests/vectors/*.apdu` (format: `support/mod.rs`).

mod support;

macro_rules! vector_tests {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { support::run_file(concat!(stringify!($name), ".apdu")); })*
    };
}

vector_tests!(
    connect_official,
    select_forms,
    read_update,
    foreign_probes,
    pin_verify_change,
    pin_unblock,
    blocked_cards,
    sign_on_card_hash,
    sign_hash_given,
    auth_internal_authenticate,
    decipher_chained,
    opensc_sdo_queries,
    business_data,
    cps2ter_volet,
    transport_t0,
    contactless,
);

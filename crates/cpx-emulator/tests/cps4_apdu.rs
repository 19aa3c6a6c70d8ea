//! Data-driven APDU tests of the CPS4 model: `tests/vectors/cps4_*.apdu` (format: `support/mod.rs`).

mod support;

macro_rules! vector_tests {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { support::run_file(concat!(stringify!($name), ".apdu")); })*
    };
}

vector_tests!(
    cps4_connect_official,
    cps4_pin,
    cps4_sign,
    cps4_decipher,
    cps4_channels,
    cps4_files,
    cps4_transport,
);

//! What the report sets beside the measurements: the official module's figures recorded in
//! docs/card-spec.md, the minimum APDU count of each operation and why, and the reasons cpx is above it.

use crate::ops::CardModel;
use crate::report::{Phase, Results};

/// What docs/card-spec.md records of the official module (Cryptolib 5.2.2) for an operation.
pub fn official(card: CardModel, op: &str, phase: Phase) -> &'static str {
    match (card, op, phase) {
        (CardModel::Cps3, "open", _) => {
            "bind: EF.DIR, ODF, TokenInfo twice each, EF_ACTUA twice (§8.3); `-L` run: 45 / 18 warm (§8.9)"
        }
        (CardModel::Cps3, "pin_status", _) => {
            "6 on every C_GetTokenInfo (SELECT MF + GET DATA + GET RESPONSE, PIN and PUK, §8.4)"
        }
        (CardModel::Cps3, "pin_status_again", _) => "6 again: never cached (§8.4)",
        (CardModel::Cps4, "pin_status_again", _) => "2 again: never cached (§10.6)",
        (CardModel::Cps3, "list", Phase::Cold) => "`-O` run: 52 (§8.9)",
        (CardModel::Cps3, "list", Phase::Warm) => "`-O` run: 12 (§8.9)",
        (CardModel::Cps3, "login", _) => "VERIFY (§8.5) + counters; login + list run: 59 / 19 warm (§8.9)",
        (CardModel::Cps3, "sign-sha256-sig", _) => {
            "8: 2× SELECT app DF, MSE HT, PSO HASH, MSE DST, PSO CDS, 2 GET RESPONSE (§8.6); run: 60 / 33 warm (§8.9)"
        }
        (CardModel::Cps3, "sign-sha1-sig", _) => "the §8.6 sequence with MSE HT 10 (§4.2)",
        (CardModel::Cps3, "sign-rsa-pkcs-sig", _) => {
            "MSE DST + PSO CDS with the hash, then GET RESPONSE (§4.2, §8.1)"
        }
        (CardModel::Cps3, "sign-rsa-pkcs-auth", _) => {
            "MSE AT + INTERNAL AUTHENTICATE + GET RESPONSE E7 / 19 (§8.7, §8.1); run: 58 / 31 warm (§8.9)"
        }
        (CardModel::Cps3, "decrypt", _) => "MSE CT + PSO DECIPHER chained in 2 + GET RESPONSE (§4.3)",
        (CardModel::Cps4, "open", _) => "`-L` run: 25 / 8 warm (§10.16)",
        (CardModel::Cps4, "pin_status", _) => "2 on every C_GetTokenInfo (bare VERIFY, PIN and PUK, §10.6)",
        (CardModel::Cps4, "list", Phase::Cold) => "`-O` run: 33 (§10.16)",
        (CardModel::Cps4, "list", Phase::Warm) => "`-O` run: 6 (§10.16)",
        (CardModel::Cps4, "login", _) => "login + list run: 36 / 9 warm (§10.16)",
        (CardModel::Cps4, "sign-sha256-sig", _) => {
            "4: 2× SELECT app DF, MSE, PSO CDS (§10.5, §10.9); run: 32 / 15 warm (§10.16)"
        }
        (CardModel::Cps4, "sign-sha1-sig" | "sign-rsa-pkcs-sig", _) => {
            "4: 2× SELECT app DF, MSE, PSO CDS (§10.5, §10.9)"
        }
        (CardModel::Cps4, "sign-rsa-pkcs-auth", _) => {
            "5: 2× SELECT app DF, MSE, PSO DECIPHER chained in 2 (§10.5, §10.11); run: 29 / 12 warm (§10.16)"
        }
        (CardModel::Cps4, "sign-sha256-pss-sig" | "sign-sha256-pss-auth" | "sign-pss-hash-sig", _) => {
            "4: 2× SELECT app DF, MSE, PSO CDS (§10.10); PSS run: 32 / 15 warm (§10.16)"
        }
        (CardModel::Cps4, "decrypt", _) => "MSE + PSO DECIPHER chained in 2 (§4.4)",
        _ => "—",
    }
}

/// The fewest APDUs the operation can take on this card, and why.
pub fn minimum(r: &Results, card: CardModel, op: &str, phase: Phase) -> (Option<usize>, String) {
    let (n, why): (usize, &str) = match (card, op, phase) {
        (_, "init", _) => (0, "no card access needed: readers are PC/SC state"),
        (CardModel::Cps3, "open", _) => (
            3,
            "SELECT + READ BINARY of EF.SN.ICC (the serial tells cards apart, §1.3), SELECT of EF_ACTUA (cache freshness, `6A82` when absent, §5.7)",
        ),
        (CardModel::Cps4, "open", _) => (
            3,
            "SELECT of the ChipDoc AID on channel 1 (§1.3), SELECT + READ BINARY of EF.SN",
        ),
        (CardModel::Cps3, "pin_status", _) => (
            5,
            "SELECT MF, then GET DATA + GET RESPONSE (T=0) for the PIN and for the PUK (§3.2)",
        ),
        (CardModel::Cps4, "pin_status", _) => (2, "one bare VERIFY per code (§10.6)"),
        (_, "pin_status_again", _) => (
            0,
            "counters kept 10 s (the module's own PIN operations update them at once; a change by another program shows at most 10 s late)",
        ),
        (_, "list", Phase::Cold) => {
            return match r.list_minimum.iter().find(|(c, _, _)| *c == card) {
                Some((_, n, sizes)) => (
                    Some(*n),
                    format!(
                        "SELECT + ⌈size / 256⌉ READ BINARY of the ODF, the CDF and each certificate ({} bytes)",
                        sizes
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(" + ")
                    ),
                ),
                None => (None, "not measured".into()),
            };
        }
        (_, "keys", Phase::Cold) => {
            return match r.keys_minimum.iter().find(|(c, _, _)| *c == card) {
                Some((_, n, sizes)) => (
                    Some(*n),
                    format!(
                        "key lookup: SELECT + ⌈size / 256⌉ READ BINARY of the ODF and the PrKDF ({} bytes); no certificate",
                        sizes
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(" + ")
                    ),
                ),
                None => (None, "not measured".into()),
            };
        }
        (_, "keys", Phase::Warm) => (0, "key lookup from the disk cache"),
        (_, "select_app", _) => (
            1,
            "SELECT of the application DF before the key operation: the card is shared, another program may have selected another application (docs/card-notes.md §7)",
        ),
        (_, "list", Phase::Warm) => (
            0,
            "everything from the disk cache; its freshness check is in C_OpenSession",
        ),
        (_, "login", _) => (1, "VERIFY"),
        (CardModel::Cps3, "sign-sha256-sig" | "sign-sha1-sig", _) => (
            5,
            "MSE SET HT, PSO HASH (the card ends the hash, §4.2), MSE SET DST, PSO CDS, one GET RESPONSE of 256 bytes (T=0)",
        ),
        (CardModel::Cps3, "sign-rsa-pkcs-sig", _) => {
            (3, "MSE SET DST, PSO CDS carrying the hash, GET RESPONSE")
        }
        (CardModel::Cps3, "sign-rsa-pkcs-auth", _) => (3, "MSE SET AT, INTERNAL AUTHENTICATE, GET RESPONSE"),
        (CardModel::Cps3, "decrypt", _) => (
            4,
            "MSE SET CT, PSO DECIPHER in 2 chained parts (257 bytes > 255), GET RESPONSE",
        ),
        (CardModel::Cps4, "sign-rsa-pkcs-auth", _) => (
            3,
            "MSE, PSO DECIPHER of the PKCS#1 block in 2 chained parts (§4.4)",
        ),
        (CardModel::Cps4, "decrypt", _) => (3, "MSE, PSO DECIPHER in 2 chained parts"),
        (CardModel::Cps4, _, _) => (2, "MSE SET DST, PSO CDS (T=1: no GET RESPONSE)"),
        _ => return (None, "—".into()),
    };
    (Some(n), why.into())
}

/// Why cpx is above the minimum where it is (from the traces of this benchmark).
pub fn above_minimum_reason(card: CardModel, op: &str, phase: Phase) -> &'static str {
    match (card, op, phase) {
        (CardModel::Cps3, "open", _) => {
            "cpx-card reads TokenInfo (label, manufacturer) at a cold open (a warm one has it from the disk cache: 3 APDUs): SELECT with FCP + GET RESPONSE + 2 READ BINARY of 231 bytes"
        }
        (CardModel::Cps4, "open", _) => {
            "cpx-card reads EF.DIR (application path, §10.3) and TokenInfo at a cold open (a warm one has them from the disk cache: 3 APDUs)"
        }
        (_, "pin_status", _) => {
            "cpx-card reads the ODF and the AODF once per cold card session to find the PIN and PUK references (warm: from the disk cache)"
        }
        (CardModel::Cps3, "list", Phase::Cold) => {
            "the first listing builds every object: the PrKDF and the DODF are read too; directory files are selected with their FCP (size: + 1 GET RESPONSE each on T=0), and READ BINARY chunks are 231 bytes (§2.3)"
        }
        (CardModel::Cps4, "list", Phase::Cold) => {
            "the first listing builds every object: the PrKDF and the DODF are read too"
        }
        (CardModel::Cps4, "list", Phase::Warm) => {
            "without EF_ACTUA the data objects are not cached (a card update may change them): ODF and DODF are read"
        }
        (CardModel::Cps3, _, _) if op.starts_with("sign") || op == "decrypt" => {
            "the application DF is selected again before each key operation (as the official module does: another application may be selected, docs/card-notes.md §7), and GET RESPONSE comes in 231-byte parts as with the official module (§2.3, §8.1)"
        }
        (CardModel::Cps4, _, _) if op.starts_with("sign") || op == "decrypt" => {
            "the application DF is selected again before each key operation (the official module selects it twice, §10.5)"
        }
        _ => "see the traces (CPX_BENCH_TRACE=1)",
    }
}

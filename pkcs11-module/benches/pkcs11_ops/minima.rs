//! The fewest APDUs each whole `pkcs11-tool` run can send through cpx, cold (empty disk cache)
//! and warm (a new process after one that filled it), on the emulated CPS3 (`cps3-doctor`, T=0)
//! and CPS4 (`cps4-doctor`, T=1, logical channel 1), and why each APDU is unavoidable
//! (issue 15: every run sends at most its minimum + [`SLACK`]; `tests/whole_runs.rs` checks
//! it against the real stack, docs/apdu-minima.md explains it in prose).
//!
//! A minimum is the sum of [`Part`]s: what the run asks of the module (the PKCS#11 calls
//! `pkcs11-tool` makes), each answered with the APDUs the card's protocol requires, nothing
//! read that the answer does not need. It counts what the card sees: GET RESPONSE and the
//! parts of a chained command included. It also counts what the module's guarantees cost
//! on a card that several programs share (spec: `docs/card-spec.md`; module: `src/lib.rs`):
//!
//! - the serial (EF.SN.ICC / EF.SN, docs/card-spec.md §1.3) in every process: another card may be in the
//!   reader since the last one, and the disk cache is keyed by it; on a CPS3 contact card also
//!   EF_ACTUA (§5.7), the disk cache's freshness check;
//! - the PIN and PUK counters at C_GetTokenInfo (its PIN flags), never from the disk cache:
//!   another program may have spent tries;
//! - at C_Login, a VERIFY without data before the VERIFY (no try spent): a login another
//!   program made first is left in place at logout;
//! - the application DF selected again before each key operation: another program may have
//!   selected elsewhere between two of our transactions (the official module does it too,
//!   §8.6, §10.5);
//! - at C_Finalize, VERIFY P1=FF when our VERIFY logged the card in: the next program does not
//!   inherit our login.
//!
//! A file whose size is not known is selected with its FCP/FCI (on T=0 the FCP comes with a
//! GET RESPONSE) and read in chunks of at most 231 bytes on a CPS3 (§2.3, the official module's
//! size too) and 256 on a CPS4 (§10.13; T=1: the FCI costs no APDU); on a CPS3 a certificate
//! is selected without FCP, its DER header giving the size.
//!
//! | run | CPS3 cold / warm | CPS4 cold / warm |
//! |---|---:|---:|
//! | `-L` | 18 / 8 | 13 / 5 |
//! | `-O` | 36 / 3 | 33 / 3 |
//! | `--login -O` | 51 / 11 | 42 / 8 |
//! | `--login --sign -m SHA256-RSA-PKCS`, signature key | 31 / 18 | 21 / 11 |
//! | `--login --sign -m RSA-PKCS`, authentication key | 29 / 16 | 22 / 12 |
//! | `--login --sign -m SHA256-RSA-PKCS-PSS`, authentication key | — | 21 / 11 |
//! | `--login --decrypt -m RSA-PKCS`, authentication key | 29 / 16 | 22 / 12 |
#![allow(dead_code, unreachable_pub)]

/// APDUs a whole run may send beyond its minimum (issue 15: "at most the documented
/// minimum + 2").
pub const SLACK: usize = 2;

/// The card of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Card {
    /// CPS3 (IAS-ECC, T=0, contact).
    Cps3,
    /// CPS4 (ChipDoc, T=1, logical channel 1).
    Cps4,
}

/// The disk cache at the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Empty.
    Cold,
    /// As the same run left it in an earlier process.
    Warm,
}

/// A whole `pkcs11-tool` run (one process; `--login` runs give the PIN with `--pin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// `-L`: C_GetSlotList, C_GetSlotInfo, C_GetTokenInfo.
    ListSlots,
    /// `-O`: every public object and its attributes (certificate subjects: both certificates).
    ListObjects,
    /// `--login -O`: C_GetTokenInfo, C_Login, then every object.
    LoginList,
    /// `--login --sign -m SHA256-RSA-PKCS --id <signature key>`, a 1 KiB message.
    SignSha256Sig,
    /// `--login --sign -m RSA-PKCS --id <authentication key>`, a SHA-256 DigestInfo.
    SignRsaPkcsAuth,
    /// `--login --sign -m SHA256-RSA-PKCS-PSS --id <authentication key>` (CPS4 only).
    SignPssAuth,
    /// `--login --decrypt -m RSA-PKCS --id <authentication key>`.
    DecryptAuth,
}

/// APDUs a run cannot do without, and why.
#[derive(Debug, Clone, Copy)]
pub struct Part {
    /// How many.
    pub apdus: usize,
    /// What they are and why they are needed.
    pub why: &'static str,
}

/// One run: its card, what it does, its parts cold and warm.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// The card.
    pub card: Card,
    /// What `pkcs11-tool` does.
    pub kind: RunKind,
    /// Its unavoidable APDUs with an empty disk cache.
    pub cold: &'static [Part],
    /// Its unavoidable APDUs in a new process after one that filled the cache.
    pub warm: &'static [Part],
}

impl Run {
    /// The parts of `phase`.
    pub fn parts(&self, phase: Phase) -> &'static [Part] {
        match phase {
            Phase::Cold => self.cold,
            Phase::Warm => self.warm,
        }
    }

    /// The minimum APDU count of `phase`.
    pub fn minimum(&self, phase: Phase) -> usize {
        self.parts(phase).iter().map(|p| p.apdus).sum()
    }

    /// The minimum and its reasons, one line.
    pub fn why(&self, phase: Phase) -> String {
        let parts: Vec<String> = self
            .parts(phase)
            .iter()
            .map(|p| format!("{} {}", p.apdus, p.why))
            .collect();
        format!("{}: {}", self.minimum(phase), parts.join("; "))
    }
}

const fn part(apdus: usize, why: &'static str) -> Part {
    Part { apdus, why }
}

// ---- CPS3 (T=0; READ BINARY and GET RESPONSE in parts of at most 231 bytes, docs/card-spec.md §2.3) ----

/// SELECT EF.SN.ICC (no FCP: 12 bytes, docs/card-spec.md §1.3) + READ BINARY: the serial.
const CPS3_SERIAL: Part = part(
    2,
    "EF.SN.ICC: SELECT + READ BINARY (the serial tells cards apart, keys the disk cache; §1.3)",
);
/// SELECT of EF_ACTUA: the disk cache's freshness (6A82 when absent, docs/card-spec.md §5.7).
const CPS3_ACTUA: Part = part(1, "SELECT EF_ACTUA (the disk cache's freshness check, §5.7)");
/// TokenInfo, 236 bytes: C_GetTokenInfo's label and manufacturer (docs/card-spec.md §1.4 point 5).
const CPS3_TOKEN_INFO: Part = part(
    4,
    "TokenInfo (236 bytes): SELECT with FCP + GET RESPONSE + 2 READ BINARY, for C_GetTokenInfo's label (§1.4)",
);
/// ODF, 48 bytes: where the AODF, PrKDF, CDF and DODF are (docs/card-spec.md §1.4 point 6).
const CPS3_ODF: Part = part(
    3,
    "ODF (48 bytes): SELECT with FCP + GET RESPONSE + READ BINARY; the card's file IDs (§1.4)",
);
/// AODF, 189 bytes: PIN and PUK references, PIN format, ulMin/MaxPinLen.
const CPS3_AODF: Part = part(
    3,
    "AODF (189 bytes): SELECT with FCP + GET RESPONSE + READ BINARY; PIN/PUK references and lengths (§3.2, §8.5)",
);
/// PIN and PUK counters (docs/card-spec.md §3.2, §8.4).
const CPS3_COUNTERS: Part = part(
    5,
    "SELECT MF + 2 × (GET DATA + GET RESPONSE): PIN and PUK counters for C_GetTokenInfo's flags (§3.2)",
);
/// C_Login.
const CPS3_LOGIN: Part = part(
    2,
    "VERIFY without data (another program's login is left alone) + VERIFY",
);
/// PrKDF, 197 bytes.
const CPS3_PRKDF: Part = part(
    3,
    "PrKDF (197 bytes): SELECT with FCP + GET RESPONSE + READ BINARY; the keys (§1.5)",
);
/// CDF, 182 bytes.
const CPS3_CDF: Part = part(
    3,
    "CDF (182 bytes): SELECT with FCP + GET RESPONSE + READ BINARY; the certificates' entries",
);
/// DODF, 284 bytes.
const CPS3_DODF: Part = part(
    4,
    "DODF (284 bytes): SELECT with FCP + GET RESPONSE + 2 READ BINARY; the data objects (§2.4)",
);
/// Both certificates, 1864 and 1951 bytes.
const CPS3_CERTS: Part = part(
    20,
    "both certificates (1864 + 1951 bytes): 2 × (SELECT + 9 READ BINARY), for the subjects `-O` shows",
);
/// CKM_SHA256_RSA_PKCS with the signature key (docs/card-spec.md §4.2, §8.6).
const CPS3_SIGN: Part = part(
    7,
    "SELECT app DF (shared card), MSE SET HT, PSO HASH (the card ends the hash, §4.2), MSE SET DST, PSO CDS, 2 GET RESPONSE (256 bytes in 231-byte parts)",
);
/// CKM_RSA_PKCS with the authentication key (docs/card-spec.md §4.3, §8.7).
const CPS3_AUTH: Part = part(
    5,
    "SELECT app DF (shared card), MSE SET AT, INTERNAL AUTHENTICATE, 2 GET RESPONSE (§4.3)",
);
/// CKM_RSA_PKCS decryption (docs/card-spec.md §4.3).
const CPS3_DECRYPT: Part = part(
    5,
    "SELECT app DF (shared card), MSE SET CT, PSO DECIPHER in 2 chained parts (257 bytes > 255), GET RESPONSE",
);
/// VERIFY P1=FF at C_Finalize.
const LOGOUT: Part = part(
    1,
    "VERIFY P1=FF at C_Finalize (our login is not left to the next program)",
);

// ---- CPS4 (T=1: data comes with 9000, no GET RESPONSE; READ BINARY in 256-byte parts, §10) ----

/// SELECT of the ChipDoc AID on channel 1, SELECT + READ BINARY of EF.SN (docs/card-spec.md §1.3).
const CPS4_CONNECT: Part = part(
    3,
    "SELECT ChipDoc AID on channel 1 + EF.SN: SELECT + READ BINARY (the serial, §1.3)",
);
/// EF.DIR: the application path (docs/card-spec.md §10.3).
const CPS4_DIR: Part = part(
    2,
    "EF.DIR: SELECT with FCI + READ BINARY; the application path (§10.3)",
);
/// TokenInfo, 207 bytes.
const CPS4_TOKEN_INFO: Part = part(
    2,
    "TokenInfo: SELECT with FCI + READ BINARY, for C_GetTokenInfo's label (§1.4)",
);
/// ODF.
const CPS4_ODF: Part = part(2, "ODF: SELECT with FCI + READ BINARY; the card's file IDs");
/// AODF.
const CPS4_AODF: Part = part(
    2,
    "AODF: SELECT with FCI + READ BINARY; PIN/PUK references and lengths",
);
/// PIN and PUK counters (docs/card-spec.md §10.6).
const CPS4_COUNTERS: Part = part(
    2,
    "bare VERIFY for the PIN and the PUK: counters for C_GetTokenInfo's flags (§10.6)",
);
/// C_Login.
const CPS4_LOGIN: Part = part(
    2,
    "VERIFY without data (another program's login is left alone) + VERIFY",
);
/// PrKDF.
const CPS4_PRKDF: Part = part(2, "PrKDF: SELECT with FCI + READ BINARY; the keys");
/// CDF.
const CPS4_CDF: Part = part(2, "CDF: SELECT with FCI + READ BINARY; the certificates' entries");
/// DODF, 584 bytes.
const CPS4_DODF: Part = part(
    4,
    "DODF (584 bytes): SELECT with FCI + 3 READ BINARY; the data objects",
);
/// Both certificates, 1865 and 1952 bytes.
const CPS4_CERTS: Part = part(
    18,
    "both certificates (1865 + 1952 bytes): 2 × (SELECT + 8 READ BINARY), for the subjects `-O` shows",
);
/// A signature by PSO CDS (docs/card-spec.md §10.9, §10.10).
const CPS4_SIGN: Part = part(3, "SELECT app DF (shared card), MSE SET DST, PSO CDS (§10.9)");
/// CKM_RSA_PKCS with the authentication key: raw decipher of the PKCS#1 block (docs/card-spec.md §10.11).
const CPS4_AUTH: Part = part(
    4,
    "SELECT app DF (shared card), MSE, PSO DECIPHER of the 256-byte PKCS#1 block in 2 chained parts (§10.11)",
);
/// CKM_RSA_PKCS decryption.
const CPS4_DECRYPT: Part = part(
    4,
    "SELECT app DF (shared card), MSE, PSO DECIPHER in 2 chained parts (§4.4)",
);

/// What C_GetTokenInfo needs on a cold CPS3: TokenInfo, the ODF to find the AODF, the AODF, the
/// counters.
const CPS3_TOKEN_COLD: [Part; 4] = [CPS3_TOKEN_INFO, CPS3_ODF, CPS3_AODF, CPS3_COUNTERS];
const CPS4_TOKEN_COLD: [Part; 5] = [CPS4_DIR, CPS4_TOKEN_INFO, CPS4_ODF, CPS4_AODF, CPS4_COUNTERS];

macro_rules! parts {
    ($($p:expr),* $(,)?) => { &[$($p),*] };
}

/// Every run the table names, plus the PSS and decrypt runs.
pub const RUNS: &[Run] = &[
    Run {
        card: Card::Cps3,
        kind: RunKind::ListSlots,
        cold: parts![
            CPS3_SERIAL,
            CPS3_ACTUA,
            CPS3_TOKEN_COLD[0],
            CPS3_TOKEN_COLD[1],
            CPS3_TOKEN_COLD[2],
            CPS3_TOKEN_COLD[3]
        ],
        warm: parts![CPS3_SERIAL, CPS3_ACTUA, CPS3_COUNTERS],
    },
    Run {
        card: Card::Cps3,
        kind: RunKind::ListObjects,
        // No C_GetTokenInfo in `-O`: no TokenInfo, AODF or counters. The PrKDF gives the
        // public keys (one per private key with a certificate), the DODF the data objects.
        cold: parts![
            CPS3_SERIAL,
            CPS3_ACTUA,
            CPS3_ODF,
            CPS3_PRKDF,
            CPS3_CDF,
            CPS3_DODF,
            CPS3_CERTS
        ],
        warm: parts![CPS3_SERIAL, CPS3_ACTUA],
    },
    Run {
        card: Card::Cps3,
        kind: RunKind::LoginList,
        cold: parts![
            CPS3_SERIAL,
            CPS3_ACTUA,
            CPS3_TOKEN_COLD[0],
            CPS3_TOKEN_COLD[1],
            CPS3_TOKEN_COLD[2],
            CPS3_TOKEN_COLD[3],
            CPS3_LOGIN,
            CPS3_PRKDF,
            CPS3_CDF,
            CPS3_DODF,
            CPS3_CERTS,
            LOGOUT
        ],
        warm: parts![CPS3_SERIAL, CPS3_ACTUA, CPS3_COUNTERS, CPS3_LOGIN, LOGOUT],
    },
    Run {
        card: Card::Cps3,
        kind: RunKind::SignSha256Sig,
        // The key lookup needs the PrKDF only: no CDF, no certificate.
        cold: parts![
            CPS3_SERIAL,
            CPS3_ACTUA,
            CPS3_TOKEN_COLD[0],
            CPS3_TOKEN_COLD[1],
            CPS3_TOKEN_COLD[2],
            CPS3_TOKEN_COLD[3],
            CPS3_LOGIN,
            CPS3_PRKDF,
            CPS3_SIGN,
            LOGOUT
        ],
        warm: parts![
            CPS3_SERIAL,
            CPS3_ACTUA,
            CPS3_COUNTERS,
            CPS3_LOGIN,
            CPS3_SIGN,
            LOGOUT
        ],
    },
    Run {
        card: Card::Cps3,
        kind: RunKind::SignRsaPkcsAuth,
        cold: parts![
            CPS3_SERIAL,
            CPS3_ACTUA,
            CPS3_TOKEN_COLD[0],
            CPS3_TOKEN_COLD[1],
            CPS3_TOKEN_COLD[2],
            CPS3_TOKEN_COLD[3],
            CPS3_LOGIN,
            CPS3_PRKDF,
            CPS3_AUTH,
            LOGOUT
        ],
        warm: parts![
            CPS3_SERIAL,
            CPS3_ACTUA,
            CPS3_COUNTERS,
            CPS3_LOGIN,
            CPS3_AUTH,
            LOGOUT
        ],
    },
    Run {
        card: Card::Cps3,
        kind: RunKind::DecryptAuth,
        cold: parts![
            CPS3_SERIAL,
            CPS3_ACTUA,
            CPS3_TOKEN_COLD[0],
            CPS3_TOKEN_COLD[1],
            CPS3_TOKEN_COLD[2],
            CPS3_TOKEN_COLD[3],
            CPS3_LOGIN,
            CPS3_PRKDF,
            CPS3_DECRYPT,
            LOGOUT
        ],
        warm: parts![
            CPS3_SERIAL,
            CPS3_ACTUA,
            CPS3_COUNTERS,
            CPS3_LOGIN,
            CPS3_DECRYPT,
            LOGOUT
        ],
    },
    Run {
        card: Card::Cps4,
        kind: RunKind::ListSlots,
        cold: parts![
            CPS4_CONNECT,
            CPS4_TOKEN_COLD[0],
            CPS4_TOKEN_COLD[1],
            CPS4_TOKEN_COLD[2],
            CPS4_TOKEN_COLD[3],
            CPS4_TOKEN_COLD[4]
        ],
        // No EF_ACTUA on a CPS4 (§10.4).
        warm: parts![CPS4_CONNECT, CPS4_COUNTERS],
    },
    Run {
        card: Card::Cps4,
        kind: RunKind::ListObjects,
        cold: parts![
            CPS4_CONNECT,
            CPS4_DIR,
            CPS4_ODF,
            CPS4_PRKDF,
            CPS4_CDF,
            CPS4_DODF,
            CPS4_CERTS
        ],
        warm: parts![CPS4_CONNECT],
    },
    Run {
        card: Card::Cps4,
        kind: RunKind::LoginList,
        cold: parts![
            CPS4_CONNECT,
            CPS4_TOKEN_COLD[0],
            CPS4_TOKEN_COLD[1],
            CPS4_TOKEN_COLD[2],
            CPS4_TOKEN_COLD[3],
            CPS4_TOKEN_COLD[4],
            CPS4_LOGIN,
            CPS4_PRKDF,
            CPS4_CDF,
            CPS4_DODF,
            CPS4_CERTS,
            LOGOUT
        ],
        warm: parts![CPS4_CONNECT, CPS4_COUNTERS, CPS4_LOGIN, LOGOUT],
    },
    Run {
        card: Card::Cps4,
        kind: RunKind::SignSha256Sig,
        cold: parts![
            CPS4_CONNECT,
            CPS4_TOKEN_COLD[0],
            CPS4_TOKEN_COLD[1],
            CPS4_TOKEN_COLD[2],
            CPS4_TOKEN_COLD[3],
            CPS4_TOKEN_COLD[4],
            CPS4_LOGIN,
            CPS4_PRKDF,
            CPS4_SIGN,
            LOGOUT
        ],
        warm: parts![CPS4_CONNECT, CPS4_COUNTERS, CPS4_LOGIN, CPS4_SIGN, LOGOUT],
    },
    Run {
        card: Card::Cps4,
        kind: RunKind::SignRsaPkcsAuth,
        cold: parts![
            CPS4_CONNECT,
            CPS4_TOKEN_COLD[0],
            CPS4_TOKEN_COLD[1],
            CPS4_TOKEN_COLD[2],
            CPS4_TOKEN_COLD[3],
            CPS4_TOKEN_COLD[4],
            CPS4_LOGIN,
            CPS4_PRKDF,
            CPS4_AUTH,
            LOGOUT
        ],
        warm: parts![CPS4_CONNECT, CPS4_COUNTERS, CPS4_LOGIN, CPS4_AUTH, LOGOUT],
    },
    Run {
        card: Card::Cps4,
        kind: RunKind::SignPssAuth,
        cold: parts![
            CPS4_CONNECT,
            CPS4_TOKEN_COLD[0],
            CPS4_TOKEN_COLD[1],
            CPS4_TOKEN_COLD[2],
            CPS4_TOKEN_COLD[3],
            CPS4_TOKEN_COLD[4],
            CPS4_LOGIN,
            CPS4_PRKDF,
            CPS4_SIGN,
            LOGOUT
        ],
        warm: parts![CPS4_CONNECT, CPS4_COUNTERS, CPS4_LOGIN, CPS4_SIGN, LOGOUT],
    },
    Run {
        card: Card::Cps4,
        kind: RunKind::DecryptAuth,
        cold: parts![
            CPS4_CONNECT,
            CPS4_TOKEN_COLD[0],
            CPS4_TOKEN_COLD[1],
            CPS4_TOKEN_COLD[2],
            CPS4_TOKEN_COLD[3],
            CPS4_TOKEN_COLD[4],
            CPS4_LOGIN,
            CPS4_PRKDF,
            CPS4_DECRYPT,
            LOGOUT
        ],
        warm: parts![CPS4_CONNECT, CPS4_COUNTERS, CPS4_LOGIN, CPS4_DECRYPT, LOGOUT],
    },
];

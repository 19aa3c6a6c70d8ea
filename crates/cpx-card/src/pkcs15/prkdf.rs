//! EF.PrKDF: private keys (docs/card-spec.md §1.5: CPS_PRIV_SIG 0x81 nonRepudiation, CPS_PRIV_AUT 0x82
//! decrypt + sign; CPS4 authentication key 0x20).

use cpx_apdu::tlv::Tlv;

use super::{CommonObject, entries, required};
use crate::ber::{self, Ber};
use crate::error::CardError;

/// KeyUsageFlags bits (ISO 7816-15).
pub const USAGE_DECRYPT: u32 = 1 << 1;
/// sign.
pub const USAGE_SIGN: u32 = 1 << 2;
/// nonRepudiation.
pub const USAGE_NON_REPUDIATION: u32 = 1 << 9;

/// One RSA private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateKey {
    /// Common attributes.
    pub common: CommonObject,
    /// iD (CKA_ID), e.g. the PKCS#15 AID ‖ 01.
    pub id: Vec<u8>,
    /// KeyUsageFlags.
    pub usage: u32,
    /// keyReference, e.g. 0x81.
    pub reference: Option<u8>,
    /// modulusLength in bits.
    pub modulus_bits: u32,
}

fn parse_entry(t: &Tlv<'_>) -> Ber<Option<PrivateKey>> {
    let items = ber::expect(t, ber::SEQUENCE, "private key")?;
    let common = CommonObject::parse(items.first().ok_or("CommonObjectAttributes missing")?)?;
    let class = ber::children(items.get(1).ok_or("CommonKeyAttributes missing")?)?;
    let id = required(&class, ber::OCTET_STRING, "iD")?.value.to_vec();
    let usage = ber::bits(required(&class, ber::BIT_STRING, "usage")?);
    let reference = match class.iter().find(|c| c.tag == ber::INTEGER) {
        Some(r) => Some(u8::try_from(ber::uint(r, "keyReference")?).map_err(|_| "keyReference too large")?),
        None => None,
    };
    let Some(type_attrs) = items.iter().find(|c| c.tag == 0xA1) else {
        return Ok(None);
    };
    let outer = ber::children(type_attrs)?;
    let rsa = ber::children(outer.first().ok_or("PrivateRSAKeyAttributes empty")?)?;
    let modulus_bits = ber::uint(required(&rsa, ber::INTEGER, "modulusLength")?, "modulusLength")?;
    Ok(Some(PrivateKey {
        common,
        id,
        usage,
        reference,
        modulus_bits,
    }))
}

/// Parse the PrKDF.
pub fn parse(data: &[u8]) -> Result<Vec<PrivateKey>, CardError> {
    entries("PrKDF", data, parse_entry)
}

//! EF.CDF: X.509 certificates and where they are (docs/card-spec.md §5.3; entries carry the non-DER
//! `03 02 08 00` flags on a real CPS3).

use cpx_apdu::tlv::Tlv;

use super::{CommonObject, entries, required, type_path};
use crate::ber::{self, Ber, Path};
use crate::error::CardError;

/// One certificate entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Common attributes (label, e.g. "Certificat de Signature CPS").
    pub common: CommonObject,
    /// iD, matching the private key's.
    pub id: Vec<u8>,
    /// authority flag (CA certificate).
    pub authority: bool,
    /// Where the DER is.
    pub path: Path,
}

fn parse_entry(t: &Tlv<'_>) -> Ber<Option<CertificateInfo>> {
    let items = ber::expect(t, ber::SEQUENCE, "certificate")?;
    let common = CommonObject::parse(items.first().ok_or("CommonObjectAttributes missing")?)?;
    let class = ber::children(items.get(1).ok_or("CommonCertificateAttributes missing")?)?;
    let id = required(&class, ber::OCTET_STRING, "iD")?.value.to_vec();
    let authority = class
        .iter()
        .find(|c| c.tag == ber::BOOLEAN)
        .is_some_and(|b| b.value.first().is_some_and(|v| *v != 0));
    let path = type_path(&items, "X509CertificateAttributes")?;
    Ok(Some(CertificateInfo {
        common,
        id,
        authority,
        path,
    }))
}

/// Parse the CDF.
pub fn parse(data: &[u8]) -> Result<Vec<CertificateInfo>, CardError> {
    entries("CDF", data, parse_entry)
}

//! What `cpx data` shows: the structs the command fills, as its JSON (docs/cli-json.md)
//! and its text.

use cpx_profile::business::{BusinessObject, Decoded};
use serde::Serialize;

use crate::output::outln;

#[derive(Serialize)]
pub(crate) struct Data {
    pub(crate) reader: String,
    pub(crate) logged_in: bool,
    pub(crate) objects: Vec<Object>,
}

#[derive(Serialize)]
pub(crate) struct Object {
    pub(crate) label: String,
    pub(crate) application: Option<String>,
    pub(crate) private: bool,
    pub(crate) modifiable: bool,
    /// The value was read (false: private without login, or an error).
    pub(crate) read: bool,
    /// Why it was not read.
    pub(crate) error: Option<String>,
    /// cpx-profile's decoding (its `BusinessObject` layout); null when not read.
    pub(crate) content: Option<BusinessObject>,
}

pub(crate) fn print_text(d: &Data) {
    for o in &d.objects {
        let access = if o.private { "private" } else { "public" };
        let Some(c) = &o.content else {
            outln!(
                "{} ({access}): {}",
                o.label,
                o.error.as_deref().unwrap_or("not read")
            );
            continue;
        };
        outln!("{} ({access}, {} bytes)", o.label, c.length);
        match &c.decoded {
            Some(Decoded::Activity(a)) => {
                outln!("  situation {}", a.number);
                if let Some(r) = &a.raison_sociale {
                    outln!("  raison sociale: {r}");
                }
                if let Some(s) = &a.structure_id {
                    outln!("  structure: {}", s.value);
                }
                if let Some(s) = &a.sector {
                    outln!("  sector: {} {}", s.code, s.label.as_deref().unwrap_or(""));
                }
            }
            Some(Decoded::InfoPs(i)) => match &i.specialty {
                Some(s) => outln!("  specialty: {} {}", s.code, s.label.as_deref().unwrap_or("")),
                None => outln!("  specialty: unknown"),
            },
            None => {}
        }
        match &c.tlv {
            Some(tlv) => {
                for line in tlv.to_text().lines() {
                    outln!("  {line}");
                }
            }
            None => outln!("  {}", c.value),
        }
    }
}

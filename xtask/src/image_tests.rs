//! Guards for the committed emulator images `test-vectors/cards/<stem>/card.toml`: they carry
//! the identity that `holder.toml` (hence the certificates) states, their structure ids are
//! well formed, and one structure id always has one raison sociale. Byte-for-byte regeneration is
//! checked with the rest of the files in `tests.rs`.

use std::collections::BTreeMap;
use std::fs;

use crate::cards::{CARDS, Card, Holder};
use crate::images;
use crate::luhn;

fn table(card: &Card, file: &str) -> toml::Table {
    let path = crate::default_out_dir().join("cards").join(card.stem).join(file);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse().unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn str_of<'t>(t: &'t toml::Table, section: &str, key: &str) -> &'t str {
    t[section][key]
        .as_str()
        .unwrap_or_else(|| panic!("[{section}].{key}"))
}

/// The texts of the `[[data]]` object `label`, `None` when the image has no such object.
fn texts(image: &toml::Table, label: &str) -> Option<Vec<String>> {
    let data = image["data"].as_array().unwrap();
    let object = data.iter().find(|d| d["label"].as_str() == Some(label))?;
    let fields = object.get("fields")?.as_array().unwrap();
    Some(
        fields
            .iter()
            .map(|f| f["text"].as_str().unwrap().to_owned())
            .collect(),
    )
}

fn yyyymmdd(datetime: &toml::Value) -> String {
    datetime.as_datetime().unwrap().to_string()[..10].replace('-', "")
}

#[test]
fn images_carry_the_identity_of_the_certificates() {
    for card in CARDS {
        let (image, holder) = (table(card, "card.toml"), table(card, "holder.toml"));
        let stem = card.stem;
        assert_eq!(
            image["token_serial"].as_str(),
            Some(str_of(&holder, "card", "serial"))
        );

        let type_code = holder["card"]["type_code"].as_integer().unwrap();
        let cert = holder["certificates"]
            .as_table()
            .unwrap()
            .values()
            .next()
            .unwrap();
        let id_card = [
            format!("{type_code:02}"),
            str_of(&holder, "card", "category_code").to_owned(),
            str_of(&holder, "card", "token_id").to_owned(),
            yyyymmdd(&cert["not_before"]),
            yyyymmdd(&cert["not_after"]),
        ];
        assert_eq!(texts(&image, "CPS_ID_CARD").unwrap(), id_card, "{stem}");

        let names = [
            str_of(&holder, "holder", "surname"),
            str_of(&holder, "holder", "given_name"),
        ];
        assert_eq!(texts(&image, "CPS_NAME_PS").unwrap(), names, "{stem}");

        let info = texts(&image, "CPS_INFO_PS").unwrap();
        assert_eq!(
            info[..2].concat(),
            str_of(&holder, "holder", "national_id"),
            "{stem}"
        );
        let profession = holder["holder"].get("profession_code").and_then(|v| v.as_str());
        assert_eq!(
            info.get(2).map(String::as_str).filter(|_| profession.is_some()),
            profession
        );

        // CPS4: every CPS2ter twin holds what its CPS_* object holds.
        for (twin, of) in [
            ("CPS2TER_NAME", "CPS_NAME_PS"),
            ("CPS2TER_PSINFO", "CPS_INFO_PS"),
            ("CPS2TER_LANG", "CPS_LANG_PS"),
            ("CPS2TER_ACTIVITY_01_PS", "CPS_ACTIVITY_01_PS"),
        ] {
            if let Some(t) = texts(&image, twin) {
                assert_eq!(Some(t), texts(&image, of), "{stem} {twin}");
            }
        }
        if let Some(id) = texts(&image, "CPS2TER_ID") {
            assert_eq!(id, id_card[..3], "{stem}");
        }
    }
}

#[test]
fn situations_are_well_formed_and_consistent() {
    // Struct_IdNat → raison sociale, over every situation and every certificate organisation.
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut same_name = |id: &str, name: &str, stem: &str| {
        let known = names.entry(id.to_owned()).or_insert_with(|| name.to_owned());
        assert_eq!(known, name, "{stem}: structure {id} has two names");
    };
    for card in CARDS {
        let (image, holder) = (table(card, "card.toml"), table(card, "holder.toml"));
        let mut situations = Vec::new();
        for n in 1.. {
            let Some(fields) = texts(&image, &format!("CPS_ACTIVITY_{n:02}_PS")) else {
                break;
            };
            situations.push(fields);
        }
        assert!(!situations.is_empty(), "{}: no situation", card.stem);
        for s in &situations {
            let [name, id, sector] = s.as_slice() else {
                panic!("{}: {s:?}", card.stem)
            };
            same_name(id, name, card.stem);
            assert!(sector.starts_with("SA") && sector.len() == 4, "{sector}");
            let (prefix, number) = id.split_at(1);
            match prefix {
                // Cabinet RPPS: the holder's RPPS + rang + key (docs/data-and-certs.md §2.7).
                "4" => {
                    let rpps = &card.holder.national_id[1..];
                    assert!(number.len() == 14 && luhn::is_valid(number), "{id}");
                    assert!(
                        number.starts_with(rpps),
                        "{}: {id} is not the holder's cabinet",
                        card.stem
                    );
                    assert_eq!(*name, format!("CABINET DR {}", card.holder.surname));
                }
                "3" => assert!(number.len() == 14 && luhn::is_valid(number), "SIRET {id}"),
                "1" => assert!(number.len() == 9 && number.starts_with("0B"), "test FINESS {id}"),
                _ => panic!("{}: unexpected Struct_IdNat {id}", card.stem),
            }
        }
        // A CPE/CPA works for the organisation its certificates name.
        if let Some(org) = holder.get("organisation") {
            let (name, id) = (org["name"].as_str().unwrap(), org["struct_id"].as_str().unwrap());
            same_name(id, name, card.stem);
            assert!(
                situations.iter().any(|s| s[0] == name && s[1] == id),
                "{}",
                card.stem
            );
        }
    }
}

#[test]
fn rpps_rang_gets_its_luhn_key() {
    // The real test card's cabinet (docs/data-and-certs.md §1.2, §2.7): RPPS 99700735741, rang 00.
    let card = Card {
        holder: Holder {
            national_id: "899700735741",
            ..CARDS[0].holder
        },
        ..CARDS[0]
    };
    assert_eq!(images::rpps_rang(&card, 0).unwrap(), "499700735741008");
    assert_eq!(images::rpps_rang(&CARDS[0], 0).unwrap(), "499700000013000");
    let not_rpps = CARDS.iter().find(|c| c.stem == "cpe").unwrap();
    assert!(images::rpps_rang(not_rpps, 0).is_err());
    assert!(images::rpps_rang(&card, 100).is_err());
}

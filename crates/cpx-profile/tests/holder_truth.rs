//! Every value of every test card's `holder.toml` (the ground truth of what the certificates
//! encode, test-vectors/README.md) is found in the profile, and nothing the certificates do not
//! encode is invented.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{STEMS, profile_of, test_store, vectors};
use cpx_profile::{ChainStatus, ExpiryStatus, Profile, Role};

fn s(t: &toml::Table, key: &str) -> Option<String> {
    t.get(key).map(|v| match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn check(stem: &str, profile: &Profile, truth: &toml::Table, errors: &mut Vec<String>) {
    let mut eq = |what: &str, expected: Option<String>, actual: Option<String>| {
        if expected != actual {
            errors.push(format!(
                "{stem}: {what}: holder.toml {expected:?}, profile {actual:?}"
            ));
        }
    };
    let card = truth["card"].as_table().unwrap();
    let c = &profile.card;
    let type_json = serde_json::to_value(c.card_type)
        .unwrap()
        .as_str()
        .map(str::to_owned);
    eq("card.type", s(card, "type"), type_json);
    eq(
        "card.type_code",
        s(card, "type_code"),
        c.type_code.map(|x| x.to_string()),
    );
    eq("card.type_label", s(card, "type_label"), c.type_label.clone());
    eq(
        "card.category_code",
        s(card, "category_code"),
        c.category_code.clone(),
    );
    eq("card.token_id", s(card, "token_id"), c.token_id.clone());
    eq("card.serial", s(card, "serial"), c.serial.clone());
    eq("card.test", Some("true".into()), c.test.map(|t| t.to_string()));

    let holder = truth["holder"].as_table().unwrap();
    let h = &profile.holder;
    let id = h.national_id.as_ref();
    eq(
        "holder.national_id",
        s(holder, "national_id"),
        id.map(|i| i.value.clone()),
    );
    eq(
        "holder.national_id_type",
        s(holder, "national_id_type"),
        id.and_then(|i| i.type_code.clone()),
    );
    eq(
        "holder.national_id_type_label",
        s(holder, "national_id_type_label"),
        id.and_then(|i| i.type_label.clone()),
    );
    eq(
        "holder.identifier",
        s(holder, "identifier"),
        id.map(|i| i.identifier.clone()),
    );
    eq(
        "holder.national_id valid",
        Some("Valid".into()),
        id.map(|i| format!("{:?}", i.status)),
    );
    eq("holder.given_name", s(holder, "given_name"), h.given_name.clone());
    eq("holder.surname", s(holder, "surname"), h.surname.clone());
    eq("holder.title", s(holder, "title"), h.title.clone());
    eq(
        "holder.profession_table",
        s(holder, "profession_table"),
        h.profession.as_ref().map(|p| p.table.clone()),
    );
    eq(
        "holder.profession_code",
        s(holder, "profession_code"),
        h.profession.as_ref().map(|p| p.code.clone()),
    );

    match (
        truth.get("organisation").and_then(|o| o.as_table()),
        &profile.organisation,
    ) {
        (None, None) => {}
        (Some(o), Some(org)) => {
            let sid = org.structure_id.as_ref();
            eq("organisation.name", s(o, "name"), org.name.clone());
            eq("organisation.state", s(o, "state"), org.state.clone());
            eq(
                "organisation.struct_id",
                s(o, "struct_id"),
                sid.map(|i| i.value.clone()),
            );
            eq(
                "organisation.struct_id_type",
                s(o, "struct_id_type"),
                sid.and_then(|i| i.type_code.clone()),
            );
            eq(
                "organisation.struct_id_type_label",
                s(o, "struct_id_type_label"),
                sid.and_then(|i| i.type_label.clone()),
            );
            eq(
                "organisation.identifier",
                s(o, "identifier"),
                sid.map(|i| i.identifier.clone()),
            );
        }
        (o, org) => eq(
            "organisation",
            o.map(|o| format!("{o:?}")),
            org.as_ref().map(|o| format!("{o:?}")),
        ),
    }

    let certs = truth["certificates"].as_table().unwrap();
    eq(
        "certificate count",
        Some(certs.len().to_string()),
        Some(profile.certificates.len().to_string()),
    );
    for (role_key, t) in certs {
        let t = t.as_table().unwrap();
        let file = s(t, "file");
        let Some(r) = profile.certificates.iter().find(|c| c.source == file) else {
            eq("certificate file", file, None);
            continue;
        };
        let cert = &r.certificate;
        let want_role = match role_key.as_str() {
            "auth" => Role::Authentication,
            "sign" => Role::Signature,
            "tech" => Role::Technical,
            other => panic!("unknown role key {other}"),
        };
        let w = |k: &str| format!("certificates.{role_key}.{k}");
        eq(
            &w("role"),
            Some(format!("{want_role:?}")),
            Some(format!("{:?}", cert.role.role)),
        );
        eq(&w("serial"), s(t, "serial"), Some(cert.serial.clone()));
        eq(
            &w("issuer_cn"),
            s(t, "issuer_cn"),
            cert.issuer.common_name().map(str::to_owned),
        );
        eq(
            &w("not_before"),
            s(t, "not_before"),
            Some(cert.validity.not_before.to_string()),
        );
        eq(
            &w("not_after"),
            s(t, "not_after"),
            Some(cert.validity.not_after.to_string()),
        );
        let list = |k: &str| t.get(k).map(|v| v.to_string());
        let ku = cert
            .extensions
            .key_usage
            .as_ref()
            .map(|k| format!("{:?}", k.usages));
        eq(&w("key_usage"), list("key_usage"), ku);
        let eku = cert.extensions.extended_key_usage.as_ref().map(|e| {
            format!(
                "{:?}",
                e.usages.iter().filter_map(|u| u.name.clone()).collect::<Vec<_>>()
            )
        });
        eq(&w("extended_key_usage"), list("extended_key_usage"), eku);
        let upn = cert
            .extensions
            .subject_alt_names
            .iter()
            .find(|a| a.kind == "upn")
            .map(|a| a.value.clone());
        eq(&w("upn"), s(t, "upn"), upn);
        let policies: Vec<String> = cert.extensions.policies.iter().map(|p| p.oid.clone()).collect();
        eq(
            &w("policy"),
            s(t, "policy").map(|p| format!("{:?}", [p])),
            Some(format!("{policies:?}")),
        );
    }
}

#[test]
fn profiles_agree_with_holder_toml() {
    let store = test_store();
    let mut errors = Vec::new();
    for stem in STEMS {
        let text = std::fs::read_to_string(vectors().join("cards").join(stem).join("holder.toml")).unwrap();
        let truth: toml::Table = toml::from_str(&text).unwrap();
        let profile = profile_of(stem, &store);
        assert!(
            profile.certificate_errors.is_empty(),
            "{stem}: {:?}",
            profile.certificate_errors
        );
        assert!(profile.warnings.is_empty(), "{stem}: {:?}", profile.warnings);
        check(stem, &profile, &truth, &mut errors);
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn expiry_and_chains_at_the_fixed_instant() {
    let store = test_store();
    for stem in STEMS {
        let p = profile_of(stem, &store);
        let expired = stem == "cps3-expired";
        for c in &p.certificates {
            let want = if expired {
                ExpiryStatus::Expired
            } else {
                ExpiryStatus::Valid
            };
            assert_eq!(c.expiry.status, want, "{stem}");
            assert_eq!(c.expiry.days_left, if expired { -1826 } else { 731 }, "{stem}");
            let chain_want = if expired {
                ChainStatus::Invalid
            } else {
                ChainStatus::Valid
            };
            assert_eq!(c.chain.status, chain_want, "{stem}: {:?}", c.chain.problems);
            assert_eq!(c.chain.path.len(), 3, "{stem}");
        }
        assert_eq!(p.summary.all_in_validity, !expired, "{stem}");
        assert_eq!(p.summary.all_chains_valid, !expired, "{stem}");
        // No certificate carries the specialty: it comes only from CPS_INFO_PS.
        let info_ps = p.business_data.iter().any(|o| o.label == "CPS_INFO_PS");
        if !info_ps {
            assert_eq!(p.holder.specialty, None, "{stem}");
        }
    }
}

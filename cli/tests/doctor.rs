//! `cpx doctor` end to end: the real `cpx` against emulated cards behind the sandbox's pcscd, the
//! built PKCS#11 module, and a fake workstation (a temporary HOME, and `CPX_DOCTOR_ROOT` for the
//! system paths). Each broken set-up checks the verdict and the fix of the checks it breaks, in
//! text and in JSON (the text run must show each verdict line and fix of the JSON run), and the
//! exit code (13 on a failure). The harness is in tests/common/doctor.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
#[path = "common/doctor.rs"]
mod harness;

use std::path::Path;
use std::process::ExitCode;

use common::*;
use cpx_testkit::{Failed, SandboxConfig, SandboxEnv, TestCard, Trial, insert_seen};
use cpx_vpcd::CardSlot;
use harness::*;

fn main() -> ExitCode {
    // The module built before the sandbox starts: most checks load it.
    let config = SandboxConfig {
        prebuild_module: true,
        ..SandboxConfig::default()
    };
    cpx_testkit::run_tests(&config, || {
        vec![
            Trial::test("healthy_cps3_all_ok_then_warnings", healthy_cps3),
            Trial::test("healthy_cps4", healthy_cps4),
            Trial::test("no_pcscd_fails_and_skips_the_card_checks", no_pcscd),
            Trial::test("no_reader", no_reader),
            Trial::test("no_card_and_unknown_reader_name", no_card),
            Trial::test("unknown_card", unknown_card),
            Trial::test("expired_certificates", expired),
            Trial::test("blocked_pin_never_spends_a_try", pin_blocked),
            Trial::test("blocked_puk_card_to_replace", puk_blocked),
            Trial::test("wrong_pin_before_is_a_warning", pin_spent),
            Trial::test("contactless_has_no_pin", contactless),
            Trial::test("module_not_registered_then_fixed", not_registered),
            Trial::test("p11kit_user_directory_as_p11kit_sees_it", p11kit_user_dir),
            Trial::test("p11kit_second_module_for_the_card", p11kit_others),
            Trial::test("module_missing_or_given", module_missing),
            Trial::test("nfc_kernel_driver", nfc),
            Trial::test("snap_flatpak_and_firefox_policy", packaging),
        ]
    })
}

fn healthy_cps3() -> Result<(), Failed> {
    let lib = module_path()?;
    let ws = Workstation::registered(&lib);
    let card = insert("cps3-doctor")?;
    let lib_s = lib.to_str().unwrap();
    let d = doctor(
        &ws,
        &["--reader", card.reader(), "--anchors", PKI, "--module", lib_s],
        &[],
    );
    assert_eq!(d.code, 0, "{}\n{}", d.text, d.stderr);
    assert_eq!(d.json["counts"]["ok"], 12, "{}", d.text);
    let status = json(&on(&card, &["status", "--json"], ""), "status");
    let label = status["card"]["token_label"].clone();
    let serial = status["card"]["serial"].as_str().unwrap();
    assert_eq!(d.json["token_label"], label);
    assert_eq!(d.json["reader"], card.reader());
    assert_eq!(d.json["module"], lib_s);
    let label = label.as_str().unwrap();
    d.expect("pcscd", "ok", "the PC/SC service answers (", None)
        .expect("readers", "ok", "8 readers", None)
        .expect(
            "card",
            "ok",
            &format!(
                "CPS3 (IAS ECC), contact, serial {serial}, token \"{label}\" in {}",
                card.reader()
            ),
            None,
        )
        .expect(
            "certificates",
            "ok",
            "2 certificates valid until 2029-01-01 (",
            None,
        )
        .expect(
            "certificates",
            "ok",
            "days left), chained to TEST CPX AC RACINE IGC-SANTE FORT (a TEST PKI)",
            None,
        )
        .expect("pin", "ok", "PIN 3 tries left, PUK ", None)
        .expect(
            "module",
            "ok",
            &format!(
                "{lib_s} loads and shows the token \"{label}\" (reader {})",
                card.reader()
            ),
            None,
        );
    workstation_ok(&d, &ws);
    assert!(
        d.details("readers")
            .iter()
            .any(|r| r.starts_with(&format!("{}: card ", card.reader()))),
        "{:?}",
        d.details("readers")
    );
    assert_eq!(d.details("certificates").len(), 2);

    // Without --anchors the test PKI is unknown: a warning (exit 0) that says so; without
    // --module, the module next to cpx. A snap Firefox appears: two more warnings.
    ws.at_root("snap/bin/firefox", "#!/bin/sh\n");
    ws.firefox_profile("snap/firefox/common/.mozilla/firefox", Some(&lib));
    let d = doctor(&ws, &["--reader", card.reader()], &[]);
    assert_eq!(d.code, 0, "{}\n{}", d.text, d.stderr);
    assert_eq!(d.json["module"], lib_s, "found next to cpx");
    d.expect(
        "certificates",
        "warn",
        "certificate comes from a TEST PKI (TEST CPX AC IGC-SANTE FORT PERSONNES), not \
         IGC-Santé: a test card",
        Some("pass --anchors DIR with the test PKI's CA certificates"),
    )
    .expect(
        "firefox",
        "warn",
        "confined Firefox profile(s): default-release (snap): a snap or Flatpak Firefox cannot \
         load a host PKCS#11 module",
        Some("sudo apt install firefox-esr"),
    )
    .expect(
        "browser-packaging",
        "warn",
        "1 confined browser: snap and Flatpak browsers cannot load a host PKCS#11 module",
        Some("use browsers from packages for CPx sites"),
    )
    .expect("module", "ok", "loads and shows the token", None);
    assert_eq!(d.json["counts"]["warn"], 3);

    // doctor reads, it never presents a code
    assert_eq!(card.pin_commands(), 0);
    Ok(())
}

fn healthy_cps4() -> Result<(), Failed> {
    let lib = module_path()?;
    let ws = Workstation::registered(&lib);
    let card = insert("cps4-doctor")?;
    let d = doctor(&ws, &["--reader", card.reader(), "--anchors", PKI], &[]);
    assert_eq!(d.code, 0, "{}\n{}", d.text, d.stderr);
    d.expect("card", "ok", "CPS4 (ChipDoc), contact, serial ", None)
        .expect(
            "certificates",
            "ok",
            "2 certificates valid until 2029-01-01",
            None,
        )
        .expect("pin", "ok", "PIN 3 tries left", None)
        .expect("module", "ok", "loads and shows the token \"", None);
    assert_eq!(card.pin_commands(), 0);
    Ok(())
}

fn no_pcscd() -> Result<(), Failed> {
    let lib = module_path()?;
    let ws = Workstation::registered(&lib);
    // pcscd installed (in the fake root) but not running: start it
    ws.at_root("usr/sbin/pcscd", "");
    let d = doctor(&ws, &[], &[NO_PCSCD]);
    d.expect(
        "pcscd",
        "fail",
        "the PC/SC service (pcscd) is not reachable at /nonexistent/cpx-doctor/pcscd.comm",
        Some("start it: sudo systemctl start pcscd.socket (systemd), or sudo pcscd (without systemd)"),
    )
    .expect("readers", "skip", "needs pcscd (see the pcscd check)", None)
    .expect("card", "skip", "needs pcscd (see the pcscd check)", None)
    .expect(
        "certificates",
        "skip",
        "needs a CPx card (see the card check)",
        None,
    )
    .expect("pin", "skip", "needs a CPx card (see the card check)", None)
    // the workstation checks still run
    .expect(
        "module",
        "ok",
        "loads and initialises (no CPx card to look for its token)",
        None,
    );
    workstation_ok(&d, &ws);
    assert!(d.json["reader"].is_null() && d.json["token_label"].is_null());
    assert_eq!(d.json["counts"]["fail"], 1);

    // not installed at all: install it
    std::fs::remove_file(ws.root().join("usr/sbin/pcscd"))?;
    doctor(&ws, &[], &[NO_PCSCD]).expect(
        "pcscd",
        "fail",
        "is not reachable",
        Some("install and start it: sudo apt install pcscd"),
    );
    Ok(())
}

fn no_reader() -> Result<(), Failed> {
    let lib = module_path()?;
    let ws = Workstation::registered(&lib);
    let pcscd = ReaderlessPcscd::start()?;
    let socket = pcscd.socket.to_str().unwrap();
    let env = [("PCSCLITE_CSOCK_NAME", socket)];
    let d = doctor(&ws, &[], &env);
    d.expect(
        "pcscd",
        "ok",
        &format!("the PC/SC service answers ({socket})"),
        None,
    )
    .expect(
        "readers",
        "fail",
        "pcscd sees no smart card reader",
        Some("plug the reader in (lsusb should list it); USB CCID readers need the libccid package"),
    )
    .expect("card", "skip", "needs a reader (see the readers check)", None)
    .expect("certificates", "skip", "needs a CPx card", None)
    .expect("pin", "skip", "needs a CPx card", None);
    assert_eq!(d.json["counts"]["fail"], 1);

    // with a pn533 driver loaded, the readers fix points at it first
    ws.at_root(
        "proc/modules",
        "pn533_usb 20480 0 - Live 0x0\npn533 45056 1 pn533_usb, Live 0x0\nnfc 135168 1 pn533, Live 0x0\n",
    );
    doctor(&ws, &[], &env)
        .expect(
            "readers",
            "fail",
            "pcscd sees no smart card reader",
            Some("the kernel NFC driver holds a contactless reader: see the nfc-kernel-driver fix"),
        )
        .expect(
            "nfc-kernel-driver",
            "fail",
            "pn533 is loaded",
            Some("blacklist pn533_usb"),
        );
    Ok(())
}

fn no_card() -> Result<(), Failed> {
    let lib = module_path()?;
    let ws = Workstation::registered(&lib);
    let lease = SandboxEnv::get()?.try_lease(SEEN)?;
    let d = doctor(&ws, &["--reader", &lease.name], &[]);
    d.expect(
        "card",
        "fail",
        &format!("no card in reader {:?}", lease.name),
        Some("insert the CPx card in the reader, chip first and facing up"),
    )
    .expect("readers", "ok", "8 readers", None)
    .expect(
        "certificates",
        "skip",
        "needs a CPx card (see the card check)",
        None,
    )
    .expect("pin", "skip", "needs a CPx card (see the card check)", None)
    .expect(
        "module",
        "ok",
        "loads and initialises (no CPx card to look for its token)",
        None,
    );
    assert_eq!(d.json["counts"]["fail"], 1);

    let d = doctor(&ws, &["--reader", "no such reader"], &[]);
    d.expect(
        "readers",
        "fail",
        "no reader named \"no such reader\"",
        Some("use a name that `cpx readers` lists"),
    )
    .expect("card", "skip", "needs a reader (see the readers check)", None);
    assert!(d.details("readers").iter().any(|r| r.starts_with(&lease.name)));
    Ok(())
}

fn unknown_card() -> Result<(), Failed> {
    let lib = module_path()?;
    let ws = Workstation::registered(&lib);
    let lease = SandboxEnv::get()?.try_lease(SEEN)?;
    let mut slot = CardSlot::new(
        lease.vpcd_addr(),
        Box::new(TestCard::new().with_atr(vec![0x3B, 0x02, 0x14, 0x50])),
    );
    insert_seen(&mut slot, &lease.name)?;
    let d = doctor(&ws, &["--reader", &lease.name], &[]);
    d.expect(
        "card",
        "fail",
        &format!(
            "the card in {} is not a CPx card (unknown ATR 3B021450)",
            lease.name
        ),
        Some("insert a French health-professional card (CPS3 or CPS4"),
    )
    .expect("certificates", "skip", "needs a CPx card", None)
    .expect("pin", "skip", "needs a CPx card", None);
    assert!(
        d.details("readers")
            .contains(&format!("{}: card present, ATR 3B 02 14 50", lease.name)),
        "{:?}",
        d.details("readers")
    );
    Ok(())
}

fn expired() -> Result<(), Failed> {
    let lib = module_path()?;
    let ws = Workstation::registered(&lib);
    let card = insert("cps3-expired")?;
    // cpx counts the days from its own clock: a day before and after it ran (both the same
    // unless the run crossed 00:00 UTC).
    let expired = cpx_profile::Timestamp::parse("2022-01-01T00:00:00Z")?;
    let before = expired.days_until(cpx_profile::Timestamp::now());
    let d = doctor(&ws, &["--reader", card.reader(), "--anchors", PKI], &[]);
    let after = expired.days_until(cpx_profile::Timestamp::now());
    let finding = d.get("certificates")["finding"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let ago = (before..=after)
        .find(|ago| finding.contains(&format!("certificate expired on 2022-01-01 ({ago} days ago)")))
        .unwrap_or(before);
    d.expect(
        "certificates",
        "fail",
        &format!("certificate expired on 2022-01-01 ({ago} days ago)"),
        Some("the card must be renewed: ask your card manager"),
    )
    .expect("card", "ok", "token \"CPS3v3-9900000007\"", None)
    .expect("pin", "ok", "PIN 3 tries left", None);
    assert!(
        d.details("certificates")
            .iter()
            .all(|c| c.ends_with("expired on 2022-01-01, chain invalid")),
        "{:?}",
        d.details("certificates")
    );
    assert_eq!(d.json["counts"]["fail"], 1);
    Ok(())
}

fn pin_blocked() -> Result<(), Failed> {
    let lib = module_path()?;
    let ws = Workstation::registered(&lib);
    let card = insert("cps3-pin-blocked")?;
    let d = doctor(&ws, &["--reader", card.reader(), "--anchors", PKI], &[]);
    d.expect(
        "pin",
        "fail",
        "PIN blocked",
        Some("unblock with your PUK: cpx pin unblock"),
    )
    .expect("certificates", "ok", "2 certificates valid", None);
    assert!(
        d.details("pin")
            .contains(&"PIN blocked (unblock with your PUK: cpx pin unblock)".to_owned()),
        "{:?}",
        d.details("pin")
    );
    assert_eq!(d.json["counts"]["fail"], 1);
    assert_eq!(card.pin_commands(), 0, "no VERIFY with data");
    Ok(())
}

fn puk_blocked() -> Result<(), Failed> {
    let lib = module_path()?;
    let ws = Workstation::registered(&lib);
    let card = insert("cps3-puk-blocked")?;
    let d = doctor(&ws, &["--reader", card.reader(), "--anchors", PKI], &[]);
    d.expect(
        "pin",
        "fail",
        "PIN and PUK blocked",
        Some("the card must be replaced"),
    );
    assert!(
        d.details("pin")
            .contains(&"PUK blocked (the card must be replaced)".to_owned()),
        "{:?}",
        d.details("pin")
    );
    assert_eq!(card.pin_commands(), 0);
    Ok(())
}

fn pin_spent() -> Result<(), Failed> {
    let lib = module_path()?;
    let ws = Workstation::registered(&lib);
    let card = insert("cps3-doctor")?;
    expect_code(&on(&card, &["pin", "verify", "--pin-stdin"], "0000\n"), 6);
    let d = doctor(&ws, &["--reader", card.reader(), "--anchors", PKI], &[]);
    assert_eq!(d.code, 0, "a warning only: {}", d.stderr);
    d.expect(
        "pin",
        "warn",
        "wrong PIN entered before: PIN 2 tries left of 3",
        Some("make sure of the PIN before the next try"),
    );
    assert_eq!(card.pin_commands(), 1, "only the wrong try of cpx pin verify");
    Ok(())
}

fn contactless() -> Result<(), Failed> {
    let lib = module_path()?;
    let ws = Workstation::registered(&lib);
    let card = insert("cps3-contactless")?;
    let d = doctor(&ws, &["--reader", card.reader(), "--anchors", PKI], &[]);
    d.expect("card", "ok", "CPS3 (IAS ECC), contactless, serial ", None)
        .expect("pin", "skip", "this interface has no PIN (contactless)", None)
        .expect("certificates", "ok", "1 certificate valid until ", None)
        .expect("module", "ok", "loads and shows the token", None);
    assert_eq!(d.code, 0, "{}\n{}", d.text, d.stderr);
    Ok(())
}

fn not_registered() -> Result<(), Failed> {
    let lib = module_path()?;
    let lib_s = lib.to_str().unwrap();
    let card = insert("cps3-doctor")?;
    let args = ["--reader", card.reader(), "--anchors", PKI];

    // an empty HOME: p11-kit fails, the browsers are not used
    let ws = Workstation::new();
    let d = doctor(&ws, &args, &[]);
    d.expect(
        "p11-kit",
        "fail",
        "no p11-kit module file names libcpx_pkcs11.so",
        Some(&format!(
            "printf 'module: %s\\n' {lib_s} | sudo tee /etc/pkcs11/modules/cpx.module"
        )),
    )
    .expect("nss-chromium", "skip", "no NSS database", None)
    .expect(
        "firefox",
        "skip",
        "no Firefox profile found: Firefox not used by this user",
        None,
    )
    .expect("card", "ok", "CPS3", None)
    .expect("module", "ok", "loads and shows the token", None);
    assert!(
        d.details("p11-kit").contains(&format!(
            "looked in {}",
            ws.root().join("usr/share/p11-kit/modules").display()
        )),
        "{:?}",
        d.details("p11-kit")
    );
    assert_eq!(d.json["counts"]["fail"], 1);

    // a Chromium installed that never ran: create the database, then add the module
    ws.at_root("usr/bin/chromium", "#!/bin/sh\n");
    let db = ws.home().join(".pki/nssdb");
    let d = doctor(&ws, &args, &[]);
    d.expect(
        "nss-chromium",
        "warn",
        &format!(
            "/usr/bin/chromium is installed but {} does not exist yet",
            db.display()
        ),
        Some(&format!(
            "mkdir -p {d} && certutil -N -d sql:{d} --empty-password && modutil",
            d = db.display()
        )),
    );
    sh(
        &d.fix("nss-chromium").replace(" (package libnss3-tools)", ""),
        &ws,
    );
    doctor(&ws, &args, &[]).expect(
        "nss-chromium",
        "ok",
        &format!("{} loads {lib_s}", db.display()),
        None,
    );

    // real NSS databases without the module (Chromium's and a Firefox profile's), and a p11-kit
    // file naming a library that is gone: each fails with its fix; the NSS fixes, run as
    // written, repair them
    let ws = Workstation::new();
    let db = ws.home().join(".pki/nssdb");
    std::fs::create_dir_all(&db)?;
    sh(
        &format!("certutil -N -d sql:{} --empty-password", db.display()),
        &ws,
    );
    let profile = ws.firefox_profile(FIREFOX, None);
    std::fs::remove_file(profile.join("pkcs11.txt"))?;
    sh(
        &format!("certutil -N -d sql:{} --empty-password", profile.display()),
        &ws,
    );
    ws.at_root(
        "usr/share/p11-kit/modules/cpx.module",
        "module: libcpx_pkcs11.so\n",
    );
    let d = doctor(&ws, &args, &[]);
    let gone = ws
        .root()
        .join("usr/lib")
        .join(multiarch())
        .join("pkcs11/libcpx_pkcs11.so");
    d.expect(
        "p11-kit",
        "fail",
        &format!(
            "{} names {}, which does not exist",
            ws.root().join("usr/share/p11-kit/modules/cpx.module").display(),
            gone.display()
        ),
        Some("reinstall the cpx package, or point the module: line of"),
    )
    .expect(
        "nss-chromium",
        "fail",
        &format!("Chromium's NSS database {} does not load libcpx_pkcs11.so", db.display()),
        Some(&format!(
            "close Chromium, then: modutil -dbdir sql:{} -add cpx -libfile {lib_s} -force (package libnss3-tools)",
            db.display()
        )),
    )
    .expect(
        "firefox",
        "fail",
        "Firefox profile(s) without libcpx_pkcs11.so: default-release",
        Some(&format!(
            "close Firefox, then for each: modutil -dbdir sql:{} -add cpx -libfile {lib_s} -force",
            profile.display()
        )),
    );
    assert_eq!(d.json["counts"]["fail"], 3);
    sh(&command_in(&d.fix("nss-chromium")), &ws);
    sh(&command_in(&d.fix("firefox")), &ws);
    let d = doctor(&ws, &args, &[]);
    d.expect(
        "nss-chromium",
        "ok",
        &format!("{} loads {lib_s}", db.display()),
        None,
    )
    .expect("firefox", "ok", "1 Firefox profile loads libcpx_pkcs11.so", None);

    // the library named in an NSS database was removed
    ws.at_home(
        ".pki/nssdb/pkcs11.txt",
        &pkcs11_txt(Some(Path::new("/nonexistent/libcpx_pkcs11.so"))),
    );
    doctor(&ws, &args, &[]).expect(
        "nss-chromium",
        "fail",
        "names /nonexistent/libcpx_pkcs11.so, which does not exist",
        Some(&format!(
            "-delete CPx -force; modutil -dbdir sql:{} -add cpx",
            db.display()
        )),
    );
    Ok(())
}

fn p11kit_user_dir() -> Result<(), Failed> {
    let lib = module_path()?;
    let lib_s = lib.to_str().unwrap();
    let ws = Workstation::new();
    ws.at_home(".config/pkcs11/modules/cpx.module", &format!("module: {lib_s}\n"));
    let user_file = ws.home().join(".config/pkcs11/modules/cpx.module");

    // p11-kit told to ignore user files: registered where it does not look
    let d = doctor(&ws, &[], &[NO_PCSCD, ("P11_KIT_NO_USER_CONFIG", "1")]);
    let why = if root() {
        "p11-kit reads no user configuration in a process running as root"
    } else {
        "P11_KIT_NO_USER_CONFIG is set"
    };
    d.expect(
        "p11-kit",
        "fail",
        &format!(
            "registered only in {}, which p11-kit ignores here: {why}",
            user_file.display()
        ),
        Some("register it for everyone: sudo mkdir -p /etc/pkcs11/modules"),
    );

    // As it is: the doctor agrees with p11-kit itself (root: ignored; a user: registered).
    let d = doctor(&ws, &[], &[NO_PCSCD]);
    let listed = std::process::Command::new("p11-kit")
        .arg("list-modules")
        .env("HOME", ws.home())
        .env_remove("XDG_CONFIG_HOME")
        .env(NO_PCSCD.0, NO_PCSCD.1)
        .output()?;
    let seen = stdout(&listed).contains(&format!("cpx: {lib_s}"));
    assert_eq!(seen, !root(), "{}", stdout(&listed));
    if seen {
        d.expect(
            "p11-kit",
            "ok",
            &format!("registered in {}", user_file.display()),
            None,
        );
    } else {
        d.expect(
            "p11-kit",
            "fail",
            "which p11-kit ignores here",
            Some("register it for everyone"),
        );
    }

    // user-config: none in the system pkcs11.conf
    ws.at_root("etc/pkcs11/pkcs11.conf", "user-config: none\n");
    if !root() {
        doctor(&ws, &[], &[NO_PCSCD]).expect(
            "p11-kit",
            "fail",
            "which p11-kit ignores here: user-config: none in pkcs11.conf",
            Some("register it for everyone"),
        );
    }
    Ok(())
}

/// Debian's opensc-pkcs11 registers OpenSC's module with p11-kit: with cpx there too, p11-kit
/// clients see a CPS3 twice. The doctor says so, and its fix — run as written — hides OpenSC's
/// module from p11-kit, for the doctor and for p11-kit itself.
fn p11kit_others() -> Result<(), Failed> {
    const OPENSC: &str = "usr/share/p11-kit/modules/opensc-pkcs11.module";
    let lib = module_path()?;
    let lib_s = lib.to_str().unwrap();
    let ws = Workstation::registered(&lib);
    ws.at_root(
        OPENSC,
        "# This file describes how to load the opensc module\nmodule: opensc-pkcs11.so\n",
    );
    let args = ["--module", lib_s];
    let d = doctor(&ws, &args, &[NO_PCSCD]);
    let opensc = ws.root().join(OPENSC);
    d.expect(
        "p11-kit-others",
        "warn",
        &format!(
            "p11-kit also loads OpenSC's module ({}): its clients (GnuTLS, curl, p11tool, NSS \
             through p11-kit-proxy) see a CPS3 twice",
            opensc.display()
        ),
        Some("hide opensc-pkcs11 from p11-kit clients, for everyone: sudo mkdir -p"),
    );
    // Restricted to some programs is still loaded there.
    ws.at_root(OPENSC, "module: opensc-pkcs11.so\ndisable-in: p11-kit-proxy\n");
    let d = doctor(&ws, &args, &[NO_PCSCD]);
    d.expect(
        "p11-kit-others",
        "warn",
        "p11-kit also loads OpenSC's module",
        Some("enable-in:"),
    );
    assert!(
        d.details("p11-kit-others")
            .iter()
            .any(|l| l.ends_with("(OpenSC, not in: p11-kit-proxy)")),
        "{}",
        d.text
    );

    // The fix for everyone, as a support desk would paste it (root's sudo left out).
    let fix = d.fix("p11-kit-others");
    let everyone = fix
        .split_once("for everyone: ")
        .and_then(|(_, rest)| rest.split(" (programs given").next())
        .and_then(|cmd| cmd.split("; for this user only").next())
        .unwrap()
        .replace("sudo ", "");
    let override_file = ws.root().join("etc/pkcs11/modules/opensc-pkcs11.module");
    assert!(everyone.contains(&override_file.display().to_string()), "{fix}");
    sh(&everyone, &ws);
    let d = doctor(&ws, &args, &[NO_PCSCD]);
    d.expect(
        "p11-kit-others",
        "ok",
        "no other module p11-kit loads drives CPx cards",
        None,
    );
    assert!(
        d.details("p11-kit-others")
            .iter()
            .any(|l| l.ends_with("hidden from p11-kit (enable-in: with no value)")),
        "{}",
        d.text
    );

    // cpx not registered: the duplicate is announced for when it is.
    std::fs::remove_file(ws.root().join("etc/pkcs11/modules/cpx.module"))?;
    std::fs::remove_file(&override_file)?;
    doctor(&ws, &args, &[NO_PCSCD]).expect(
        "p11-kit-others",
        "warn",
        "once cpx is registered (see p11-kit)",
        Some("enable-in:"),
    );

    // p11-kit itself agrees: a same-named user module file with `enable-in:` and no value hides
    // the package's. p11-kit reads no user configuration as root, so as root the check runs
    // p11-kit as nobody (in a private mount namespace holding only the OpenSC file); a non-root
    // developer cannot mount over /usr/share without becoming root in a user namespace, where
    // p11-kit would again ignore the user's files.
    if !root() {
        eprintln!("p11kit_others: p11-kit's own view is checked when run as root (CI)");
        return Ok(());
    }
    let modules = ws.root().join("only-opensc");
    std::fs::create_dir_all(&modules)?;
    std::fs::copy(ws.root().join(OPENSC), modules.join("opensc-pkcs11.module"))?;
    // As root the doctor offers no per-user fix (p11-kit would not read it); this is the one
    // it gives a user.
    assert!(!fix.contains("for this user"), "{fix}");
    let user_fix = format!(
        "mkdir -p {h}/.config/pkcs11/modules && printf 'enable-in:\\n' > \
         {h}/.config/pkcs11/modules/opensc-pkcs11.module",
        h = ws.home().display()
    );
    let list = |label: &str| -> Result<String, Failed> {
        // Readable by nobody: the temporary directories are private to their owner.
        for dir in [ws.home().parent().unwrap(), &ws.home(), &ws.root(), &modules] {
            std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        }
        let out = std::process::Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(
                "set -e; mount --bind \"$1\" /usr/share/p11-kit/modules; \
                 exec setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=\"$2\" \
                 p11-kit list-modules",
            )
            .args(["sh", modules.to_str().unwrap(), ws.home().to_str().unwrap()])
            .env_remove("XDG_CONFIG_HOME")
            .output()?;
        assert!(out.status.success(), "{label}: {}{}", stdout(&out), stderr(&out));
        Ok(stdout(&out))
    };
    let before = list("before the fix")?;
    assert!(before.contains("opensc-pkcs11: opensc-pkcs11.so"), "{before}");
    sh(&user_fix, &ws);
    let after = list("after the fix")?;
    assert!(!after.contains("opensc-pkcs11"), "{after}");
    Ok(())
}

fn module_missing() -> Result<(), Failed> {
    let lib = module_path()?;
    let ws = Workstation::registered(&lib);
    doctor(&ws, &["--module", "/nonexistent/libcpx_pkcs11.so"], &[NO_PCSCD]).expect(
        "module",
        "fail",
        "--module /nonexistent/libcpx_pkcs11.so: no such file",
        Some("give the path of libcpx_pkcs11.so"),
    );
    // not a PKCS#11 module at all
    let bogus = ws.dir.path().join("libcpx_pkcs11.so");
    std::fs::write(&bogus, "not an ELF file")?;
    let d = doctor(&ws, &["--module", bogus.to_str().unwrap()], &[NO_PCSCD]);
    d.expect(
        "module",
        "fail",
        &format!("cannot load {}: ", bogus.display()),
        Some(&format!("check its dependencies (ldd {})", bogus.display())),
    );
    // installed in the standard place (the fake root): used before the one next to cpx
    let installed = ws
        .root()
        .join("usr/lib")
        .join(multiarch())
        .join("pkcs11/libcpx_pkcs11.so");
    std::fs::create_dir_all(installed.parent().unwrap())?;
    std::fs::copy(&lib, &installed)?;
    let d = doctor(&ws, &[], &[NO_PCSCD]);
    assert_eq!(d.json["module"], installed.to_str().unwrap());
    d.expect(
        "module",
        "ok",
        &format!("{} loads and initialises", installed.display()),
        None,
    );
    Ok(())
}

fn nfc() -> Result<(), Failed> {
    let lib = module_path()?;
    let ws = Workstation::registered(&lib);
    let blacklist = "printf 'blacklist pn533_usb\\nblacklist pn533\\n' | sudo tee \
                     /etc/modprobe.d/cpx-blacklist-nfc.conf && sudo modprobe -r pn533_usb pn533 ";
    // The fix writes what the package ships (inactive) in /usr/share/cpx/modprobe.d.
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../udev/cpx-blacklist-nfc.conf"
    ))?;
    let rules: Vec<&str> = shipped.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rules, ["blacklist pn533_usb", "blacklist pn533"]);
    ws.at_root(
        "proc/modules",
        "usbhid 65536 0 - Live 0x0\npn533_usb 20480 0 - Live 0x0\npn533 45056 1 pn533_usb, Live 0x0\n\
         nfc 135168 1 pn533, Live 0x0\n",
    );
    let d = doctor(&ws, &[], &[NO_PCSCD]);
    d.expect(
        "nfc-kernel-driver",
        "fail",
        "the kernel NFC driver pn533 is loaded: it takes PN533 contactless readers from pcscd",
        Some(blacklist),
    );
    assert_eq!(d.details("nfc-kernel-driver").len(), 3);

    // a reader bound to the driver (sysfs), whatever /proc/modules says
    ws.at_root("proc/modules", "usbhid 65536 0 - Live 0x0\n");
    std::fs::create_dir_all(ws.root().join("sys/bus/usb/drivers/pn533_usb/1-1:1.0"))?;
    ws.at_root("sys/bus/usb/drivers/pn533_usb/uevent", "");
    doctor(&ws, &[], &[NO_PCSCD]).expect(
        "nfc-kernel-driver",
        "fail",
        "the kernel NFC driver pn533_usb holds 1 USB reader: pcscd cannot use it",
        Some(blacklist),
    );
    std::fs::remove_dir_all(ws.root().join("sys"))?;

    // the NFC core alone: a warning
    ws.at_root("proc/modules", "nfc 135168 0 - Live 0x0\n");
    doctor(&ws, &[], &[NO_PCSCD]).expect(
        "nfc-kernel-driver",
        "warn",
        "the kernel NFC stack (nfc) is loaded",
        Some(blacklist),
    );
    Ok(())
}

fn packaging() -> Result<(), Failed> {
    let lib = module_path()?;
    let ws = Workstation::registered(&lib);
    // snap Chromium, Flatpak Firefox (system) and Chrome (user)
    ws.at_root("snap/bin/chromium", "");
    std::fs::create_dir_all(ws.root().join("var/lib/flatpak/app/org.mozilla.firefox"))?;
    std::fs::create_dir_all(ws.home().join(".local/share/flatpak/app/com.google.Chrome"))?;
    ws.firefox_profile(".var/app/org.mozilla.firefox/.mozilla/firefox", None);
    let d = doctor(&ws, &[], &[NO_PCSCD]);
    d.expect(
        "browser-packaging",
        "warn",
        "3 confined browsers",
        Some("use browsers from packages for CPx sites"),
    )
    .expect(
        "firefox",
        "warn",
        "confined Firefox profile(s): default-release (Flatpak)",
        Some("use a Firefox from packages"),
    );
    let found = d.details("browser-packaging");
    assert!(
        found.iter().any(|f| f.starts_with("snap chromium (")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("Flatpak org.mozilla.firefox (")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|f| f.starts_with("Flatpak com.google.Chrome (")),
        "{found:?}"
    );

    // a host profile without the module, covered by the enterprise policy
    let ws = Workstation::registered(&lib);
    ws.firefox_profile(FIREFOX, None);
    ws.at_root(
        "etc/firefox/policies/policies.json",
        &format!(
            "{{\"policies\": {{\"SecurityDevices\": {{\"Add\": {{\"CPx\": \"{}\"}}}}}}}}",
            lib.display()
        ),
    );
    let d = doctor(&ws, &[], &[NO_PCSCD]);
    d.expect("firefox", "ok", "1 Firefox profile loads libcpx_pkcs11.so", None);
    assert!(
        d.details("firefox")[0].ends_with(&format!(
            "loads libcpx_pkcs11.so by policy ({})",
            ws.root().join("etc/firefox/policies/policies.json").display()
        )),
        "{:?}",
        d.details("firefox")
    );
    Ok(())
}

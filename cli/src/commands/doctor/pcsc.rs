//! The `pcscd`, `readers` and `card` checks: can we reach the PC/SC service, does it see a
//! reader, and is there a CPx card in it.

use cpx_card::{Card, CardError};
use cpx_transport::{Pcsc, ReaderInfo, TransportError};

use super::Check;
use super::host::Host;
use crate::output::spaced_hex;
use crate::session::{
    Passed, PassedOver, ReaderArg, Session, first_cpx_card, generation_name, interface_name,
};

/// pcsc-lite's default socket (`pcscd -v`: ipcdir=/run/pcscd); clients honour
/// `PCSCLITE_CSOCK_NAME` instead when set.
const DEFAULT_SOCKET: &str = "/run/pcscd/pcscd.comm";

/// Runs the three checks into `out`; returns the open card when all passed.
pub(super) fn check(host: &Host, arg: &ReaderArg, nfc_failed: bool, out: &mut Vec<Check>) -> Option<Session> {
    let socket = std::env::var("PCSCLITE_CSOCK_NAME").unwrap_or_else(|_| DEFAULT_SOCKET.into());
    let pcsc = match Pcsc::establish().and_then(|p| p.readers().map(|r| (p, r))) {
        Ok(ok) => ok,
        Err(e) => {
            out.push(pcscd_failed(host, &e, &socket));
            out.push(Check::skip("readers", "needs pcscd (see the pcscd check)"));
            out.push(Check::skip("card", "needs pcscd (see the pcscd check)"));
            return None;
        }
    };
    let (pcsc, readers) = pcsc;
    out.push(Check::ok(
        "pcscd",
        format!("the PC/SC service answers ({socket})"),
    ));

    let details: Vec<String> = readers.iter().map(describe).collect();
    if readers.is_empty() {
        let mut fix = String::from(
            "plug the reader in (lsusb should list it); USB CCID readers need the libccid package \
             (sudo apt install libccid), then restart pcscd (sudo systemctl restart pcscd)",
        );
        if nfc_failed {
            fix.insert_str(
                0,
                "the kernel NFC driver holds a contactless reader: see the nfc-kernel-driver fix; \
                 otherwise ",
            );
        }
        out.push(Check::fail("readers", "pcscd sees no smart card reader", fix));
        out.push(Check::skip("card", "needs a reader (see the readers check)"));
        return None;
    }
    if let Some(name) = &arg.reader
        && !readers.iter().any(|r| &r.name == name)
    {
        out.push(
            Check::fail(
                "readers",
                format!("no reader named {name:?}"),
                "use a name that `cpx readers` lists, or omit --reader to let cpx pick the reader",
            )
            .details(details),
        );
        out.push(Check::skip("card", "needs a reader (see the readers check)"));
        return None;
    }
    let n = readers.len();
    out.push(Check::ok("readers", format!("{n} reader{}", if n == 1 { "" } else { "s" })).details(details));

    let (card, auto) = match &arg.reader {
        Some(name) => (open_in(&pcsc, readers.iter().filter(|r| &r.name == name)), false),
        None => (open_in(&pcsc, readers.iter()), true),
    };
    match card {
        Ok(card) => {
            let how = if auto {
                " (first reader with a CPx card)"
            } else {
                ""
            };
            out.push(Check::ok(
                "card",
                format!(
                    "{} ({}), {}, serial {}, token \"{}\" in {}{how}",
                    generation_name(card.generation()),
                    card.model(),
                    interface_name(card.interface()),
                    card.serial(),
                    card.token_label(),
                    cpx_card::text::display_safe(card.reader())
                ),
            ));
            Some(Session { card, auto })
        }
        Err(check) => {
            out.push(check);
            None
        }
    }
}

fn pcscd_failed(host: &Host, e: &TransportError, socket: &str) -> Check {
    // Whether the daemon is installed at all decides between "install" and "start".
    let installed = ["/usr/sbin/pcscd", "/usr/bin/pcscd", "/sbin/pcscd"]
        .iter()
        .any(|p| host.sys(p).exists());
    let fix = if installed {
        "start it: sudo systemctl start pcscd.socket (systemd), or sudo pcscd (without systemd)"
    } else {
        "install and start it: sudo apt install pcscd (then sudo systemctl start pcscd.socket)"
    };
    match e {
        TransportError::NoService => Check::fail(
            "pcscd",
            format!("the PC/SC service (pcscd) is not reachable at {socket}"),
            fix,
        ),
        other => Check::fail(
            "pcscd",
            format!("the PC/SC service does not answer properly: {other}"),
            format!("restart it (sudo systemctl restart pcscd); if it persists, {fix}"),
        ),
    }
}

/// `name: card present, ATR 3B …`
fn describe(r: &ReaderInfo) -> String {
    match &r.atr {
        Some(atr) => format!("{}: {}, ATR {}", r.name, r.status, spaced_hex(atr)),
        None => format!("{}: {}", r.name, r.status),
    }
}

const INSERT: &str = "insert the CPx card in the reader, chip first and facing up (a contactless \
                      CPS3 lies flat on a contactless reader)";

/// The first CPx card among `candidates`, or the failed `card` check saying why there is none.
fn open_in<'a>(pcsc: &Pcsc, candidates: impl Iterator<Item = &'a ReaderInfo>) -> Result<Card, Check> {
    let candidates: Vec<&ReaderInfo> = candidates.collect();
    let passed = match first_cpx_card(pcsc, candidates.iter().copied()) {
        Ok(card) => return Ok(card),
        Err(passed) => passed,
    };
    let problems: Vec<(String, &str)> = passed
        .into_iter()
        .map(|Passed { reader, why }| match why {
            PassedOver::Mute => (
                format!("the card in {reader} does not answer (mute)"),
                "take the card out and insert it again, the right way round; clean the chip \
                 if it persists",
            ),
            PassedOver::NotCpx(CardError::NotCpxCard { atr }) => (
                format!("the card in {reader} is not a CPx card (unknown ATR {atr})"),
                "insert a French health-professional card (CPS3 or CPS4: CPS, CPF, CPE, CPA); \
                 other cards are not for cpx",
            ),
            PassedOver::NotCpx(e) => (
                format!("the card in {reader} is not a CPx card: {e}"),
                "insert a card issued by the ANS (CPS3 or CPS4)",
            ),
            PassedOver::Unreadable(e) => (
                format!("cannot read the card in {reader}: {e}"),
                "take the card out and insert it again; if it persists, run with CPX_LOG=debug \
                 and report the output",
            ),
        })
        .collect();
    let details = problems.iter().skip(1).map(|(f, _)| f.clone()).collect();
    match problems.into_iter().next() {
        Some((finding, fix)) => Err(Check::fail("card", finding, fix).details(details)),
        None => Err(Check::fail(
            "card",
            match candidates.as_slice() {
                [one] => format!("no card in reader {:?}", one.name),
                _ => "no card in any reader".to_owned(),
            },
            INSERT,
        )),
    }
}

//! Rows 1200–1201: miscellaneous (`testMiscellaneousFunctions`): the slot list, and a card that
//! does not answer ("une carte CPS à l'envers", a mute card) in another reader. The mute card is
//! the testkit's `TestCard`: the CPS3 ATR, but `6D 00` to every CPx command.

use cryptoki_sys::*;

use crate::raw::blank;
use crate::runner::{Ctx, Gen, Item, StepResult, ok, row, rv_name, setup, text};

fn mute_slot(c: &Ctx) -> Result<CK_SLOT_ID, String> {
    let reader = c
        .other
        .as_ref()
        .map(|(l, _)| l.name.clone())
        .ok_or("no mute card")?;
    c.slot_of(&reader)
}

fn slot_info(c: &mut Ctx) -> StepResult {
    let slot = mute_slot(c)?;
    let mut info: CK_SLOT_INFO = blank();
    let rv = c.p11.get_slot_info(slot, Some(&mut info));
    if rv != CKR_OK {
        return Ok(rv);
    }
    // Not a token; the real card next to it still is one.
    let t = c.p11.get_token_info(slot, Some(&mut blank()));
    c.detail = Some(format!("C_GetTokenInfo of the mute card: {}", rv_name(t)));
    if t != CKR_TOKEN_NOT_RECOGNIZED {
        return Err(format!(
            "the mute card in {} gives {} instead of CKR_TOKEN_NOT_RECOGNIZED",
            text(&info.slotDescription),
            rv_name(t)
        ));
    }
    ok(
        c.p11.get_token_info(c.slot()?, Some(&mut blank())),
        "C_GetTokenInfo of the CPx card",
    )?;
    Ok(rv)
}

/// The rows.
pub fn rows(_kind: Gen) -> Vec<Item> {
    vec![
        setup("insert a mute card into another reader", |c| {
            let card: Box<dyn cpx_vpcd::VirtualCard> = Box::new(cpx_testkit::TestCard::new());
            c.other = Some(cpx_testkit::insert_card(card).map_err(|e| format!("{e:?}"))?);
            Ok(CKR_OK)
        }),
        setup("C_Initialize(NULL)", |c| Ok(c.p11.initialize(None))),
        row(1200, "C_GetSlotList: all slots", CKR_OK, |c| {
            let slots = c.slots(false)?;
            if !slots.contains(&c.slot()?) || !slots.contains(&mute_slot(c)?) {
                return Err(format!("slots {slots:?} miss a reader"));
            }
            Ok(CKR_OK)
        }),
        row(
            1201,
            "C_GetSlotInfo of a reader holding a mute card",
            CKR_OK,
            slot_info,
        ),
        setup("C_Finalize, take the mute card out", |c| {
            c.finalize()?;
            c.other = None;
            Ok(CKR_OK)
        }),
    ]
}

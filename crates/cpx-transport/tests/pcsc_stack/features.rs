//! Reader-feature discovery (PC/SC part 10 GET_FEATURE_REQUEST) through the real pcscd + vpcd,
//! whose driver has no control command: no features, no error, nothing seen by the card and no
//! other program disturbed.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use cpx_apdu::StatusWord;
use cpx_testkit::Failed;
use cpx_transport::{CardChannel, ControlCode, Pcsc, ReaderFeatures, TransportError};

use super::{SEEN, cmd, reader_with_card};

pub(crate) fn vpcd_has_no_features_and_disturbs_nobody() -> Result<(), Failed> {
    let (lease, _slot, log) = reader_with_card();
    // Another program with a security state on the card (80 20 sets it, 80 22 needs it).
    let mut other = Pcsc::establish()?.connect(&lease.name)?;
    assert!(other.transmit(&cmd(&[0x80, 0x20, 0, 0]))?.is_success());
    let commands_before = log.lock().unwrap().len();

    let mut ours = Pcsc::establish()?.connect(&lease.name)?;
    let started = Instant::now();
    assert_eq!(ours.reader_features()?, ReaderFeatures::none());
    eprintln!("discovery on vpcd: {} ms", started.elapsed().as_millis());
    assert_eq!(ours.reader_features()?, ReaderFeatures::none(), "cached");
    match ours.control(ControlCode::GET_FEATURE_REQUEST, &[]) {
        Err(TransportError::ControlUnsupported(reader)) => assert_eq!(reader, lease.name),
        other => panic!("expected ControlUnsupported from vpcd, got {other:?}"),
    }
    {
        let mut tx = ours.transaction()?;
        assert!(tx.reader_features()?.is_empty());
        assert!(matches!(
            tx.control(ControlCode::GET_FEATURE_REQUEST, &[]),
            Err(TransportError::ControlUnsupported(_))
        ));
        // The transaction goes on after a refused control command.
        assert!(tx.transmit(&cmd(&[0x80, 0x22, 0, 0]))?.is_success());
        tx.end(false)?;
    }
    // A fresh connection asks again, with the same outcome.
    let mut again = Pcsc::establish()?.connect(&lease.name)?;
    assert!(again.reader_features()?.is_empty());

    assert_eq!(
        log.lock().unwrap().len(),
        commands_before + 1,
        "only our 80 22 reached the card: control commands stay in the reader"
    );
    // The other program's security state survived: no reset, no error.
    assert_eq!(
        other.transmit(&cmd(&[0x80, 0x22, 0, 0]))?.sw(),
        StatusWord(0x90, 0x00)
    );
    Ok(())
}

/// pcsc-lite refuses SCardControl while another program holds the card in a transaction:
/// discovery waits for its turn instead of failing (or reporting "no features" wrongly).
pub(crate) fn discovery_waits_for_another_programs_transaction() -> Result<(), Failed> {
    let (lease, _slot, _log) = reader_with_card();
    let mut holder = Pcsc::establish()?.connect(&lease.name)?;
    let mut ours = Pcsc::establish()?.connect(&lease.name)?;
    let tx = holder.transaction()?;
    let (done_tx, done_rx) = mpsc::channel();
    let asker = std::thread::spawn(move || {
        let result = ours.reader_features();
        done_tx.send(Instant::now()).unwrap();
        (result.map(|f| f.is_empty()), ours)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        done_rx.try_recv().is_err(),
        "discovery went through another program's transaction"
    );
    let ended = Instant::now();
    tx.end(false)?;
    assert!(done_rx.recv_timeout(SEEN)? >= ended);
    let (result, mut ours) = asker.join().unwrap();
    assert!(result?, "vpcd has no features");
    assert!(ours.transmit(&cmd(&[0x80, 0x20, 0, 0]))?.is_success());
    Ok(())
}

//! The in-process channel behaves like the PC/SC one: T=0 rules, removal, reset by another program.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cpx_apdu::{Command, StatusWord};
use cpx_testkit::TestCard;
use cpx_transport::{CardChannel, ExchangePolicy, Protocol, TransportError};
use cpx_transport_virtual::VirtualChannel;

#[test]
fn t0_get_response_chain_and_6cxx_like_through_pcscd() {
    let card = TestCard::new();
    let log = card.log();
    let (mut ch, _control) = VirtualChannel::new("virtual", Box::new(card));
    assert_eq!(ch.protocol(), Protocol::T0);
    ch.set_policy(ExchangePolicy::GENERIC);
    let r = ch
        .transmit(&Command::new(0x80, 0x10, 0, 0).with_le(256).unwrap())
        .unwrap();
    assert_eq!(r.data(), &TestCard::long_answer()[..]);
    let r = ch
        .transmit(&Command::new(0x80, 0x12, 0, 0).with_le(256).unwrap())
        .unwrap();
    assert_eq!(r.data().len(), 12);
    let sizes: Vec<u8> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c[1] == 0xC0)
        .map(|c| c[4])
        .collect();
    assert_eq!(sizes, vec![0xE7, 0xE7, 0x8A]);
}

#[test]
fn removal_and_reset_are_reported_like_pcsc() {
    let (mut ch, control) = VirtualChannel::new("virtual", Box::new(TestCard::new()));
    let verify = Command::new(0x80, 0x20, 0, 0);
    let check = Command::new(0x80, 0x22, 0, 0);
    ch.transmit(&verify).unwrap();
    assert!(ch.transmit(&check).unwrap().is_success());

    control.reset();
    assert!(matches!(ch.transmit(&check), Err(TransportError::CardReset(_))));
    assert_eq!(
        ch.transmit(&check).unwrap().sw(),
        StatusWord(0x69, 0x82),
        "security state lost"
    );

    control.remove();
    assert!(matches!(ch.transmit(&check), Err(TransportError::CardRemoved(_))));
    assert!(matches!(ch.reconnect(false), Err(TransportError::NoCard(_))));
    control.insert();
    assert!(
        matches!(ch.transmit(&check), Err(TransportError::CardRemoved(_))),
        "a new card needs a reconnect"
    );
    ch.reconnect(false).unwrap();
    assert_eq!(ch.transmit(&check).unwrap().sw(), StatusWord(0x69, 0x82));
}

#[test]
fn transactions_exclude_other_connections() {
    let (mut a, _control) = VirtualChannel::new("virtual", Box::new(TestCard::new()));
    let mut b = a.connect_again().unwrap();
    let (tx_started, started) = std::sync::mpsc::channel();
    let (tx_done, done) = std::sync::mpsc::channel();
    let mut t = a.transaction().unwrap();
    t.transmit(&Command::new(0x80, 0x20, 0, 0)).unwrap();
    let other = std::thread::spawn(move || {
        tx_started.send(()).unwrap();
        b.transmit(&Command::new(0x80, 0x22, 0, 0)).unwrap();
        tx_done.send(()).unwrap();
    });
    started.recv().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(done.try_recv().is_err());
    t.end(false).unwrap();
    other.join().unwrap();
    assert!(done.try_recv().is_ok());
}

/// A virtual reader behaves like vpcd for control commands: none supported, no features, and a
/// removed card is still reported as such.
#[test]
fn a_virtual_reader_has_no_control_command_and_no_features() {
    use cpx_transport::ControlCode;
    let (mut ch, control) = VirtualChannel::new("virtual", Box::new(TestCard::new()));
    assert!(ch.reader_features().unwrap().is_empty());
    assert!(matches!(
        ch.control(ControlCode::GET_FEATURE_REQUEST, &[]),
        Err(TransportError::ControlUnsupported(r)) if r == "virtual"
    ));
    {
        let mut tx = ch.transaction().unwrap();
        assert!(tx.reader_features().unwrap().is_empty());
        assert!(matches!(
            tx.control(ControlCode::GET_FEATURE_REQUEST, &[]),
            Err(TransportError::ControlUnsupported(_))
        ));
        assert!(tx.transmit(&Command::new(0x80, 0x20, 0, 0)).unwrap().is_success());
    }
    control.remove();
    assert!(matches!(
        ch.reader_features(),
        Err(TransportError::CardRemoved(_))
    ));
}

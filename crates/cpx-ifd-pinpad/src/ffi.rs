//! The IFD handler v3 entry points pcscd calls (pcsc-lite `ifdhandler.h`). All the crate's
//! unsafe code is here: checking pcscd's pointers and lengths, and copying out of and into its
//! buffers. Every entry point runs its body under `catch_unwind`: no panic crosses the C ABI.
//!
//! Types as pcsc-lite defines them on Linux (`wintypes.h`): `DWORD` is `unsigned long`,
//! `RESPONSECODE` is `long`.
#![allow(unsafe_code)]
// Exported by symbol name to pcscd, not by Rust path.
#![allow(unreachable_pub)]

use std::collections::BTreeMap;
use std::ffi::{CStr, c_char, c_long, c_uchar, c_ulong};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use crate::reader::{ControlError, DeviceName, Reader};

type Dword = c_ulong;
type ResponseCode = c_long;

const IFD_SUCCESS: ResponseCode = 0;
const IFD_ERROR_TAG: ResponseCode = 600;
const IFD_PROTOCOL_NOT_SUPPORTED: ResponseCode = 607;
const IFD_ERROR_POWER_ACTION: ResponseCode = 608;
const IFD_COMMUNICATION_ERROR: ResponseCode = 612;
const IFD_NOT_SUPPORTED: ResponseCode = 614;
const IFD_ICC_PRESENT: ResponseCode = 615;
const IFD_ICC_NOT_PRESENT: ResponseCode = 616;
const IFD_NO_SUCH_DEVICE: ResponseCode = 617;
const IFD_ERROR_INSUFFICIENT_BUFFER: ResponseCode = 618;

const IFD_POWER_UP: Dword = 500;
const IFD_POWER_DOWN: Dword = 501;
const IFD_RESET: Dword = 502;

const TAG_IFD_ATR: Dword = 0x0303;
const TAG_IFD_SLOT_THREAD_SAFE: Dword = 0x0FAC;
const TAG_IFD_THREAD_SAFE: Dword = 0x0FAD;
const TAG_IFD_SLOTS_NUMBER: Dword = 0x0FAE;
const TAG_IFD_SIMULTANEOUS_ACCESS: Dword = 0x0FAF;

const SCARD_PROTOCOL_T0: Dword = 1;
const SCARD_PROTOCOL_T1: Dword = 2;

/// pcsc-lite's `SCARD_IO_HEADER`, passed by value to `IFDHTransmitToICC`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ScardIoHeader {
    /// `Protocol`.
    pub protocol: Dword,
    /// `Length`.
    pub length: Dword,
}

/// Readers by Lun. pcscd serialises the calls for one reader (we say we are not thread safe);
/// the lock covers readers of other reader.conf entries sharing this copy of the driver.
static READERS: Mutex<BTreeMap<Dword, Reader>> = Mutex::new(BTreeMap::new());

fn log(message: std::fmt::Arguments<'_>) {
    // pcscd's stderr is its log (the sandbox's pcscd.log). Never a PIN here.
    eprintln!("cpx-ifd-pinpad: {message}");
}

/// Run `body` with the reader of `lun`, turning a panic into `IFD_COMMUNICATION_ERROR`.
fn with_reader(lun: Dword, body: impl FnOnce(&mut Reader) -> ResponseCode) -> ResponseCode {
    guard(|| {
        let mut readers = READERS.lock().unwrap_or_else(PoisonError::into_inner);
        match readers.get_mut(&lun) {
            Some(reader) => body(reader),
            None => IFD_NO_SUCH_DEVICE,
        }
    })
}

fn guard(body: impl FnOnce() -> ResponseCode) -> ResponseCode {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| {
        log(format_args!("internal error (panic caught at the C boundary)"));
        IFD_COMMUNICATION_ERROR
    })
}

fn create(lun: Dword, device: Option<DeviceName>) -> ResponseCode {
    guard(|| {
        let Some(device) = device else {
            log(format_args!(
                "DEVICENAME must be `<keypad script path>:<tcp port>`"
            ));
            return IFD_NO_SUCH_DEVICE;
        };
        match Reader::open(&device) {
            Ok(reader) => {
                READERS
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(lun, reader);
                IFD_SUCCESS
            }
            Err(e) => {
                log(format_args!("cannot listen on 127.0.0.1:{}: {e}", device.port));
                IFD_NO_SUCH_DEVICE
            }
        }
    })
}

/// Copy `data` into pcscd's buffer `out` of `*len` bytes, and set `*len`.
///
/// # Safety
/// `out` must be valid for `*len` bytes of writes and `len` valid for a read and a write
/// (both checked for null).
unsafe fn copy_out(data: &[u8], out: *mut c_uchar, len: *mut Dword) -> ResponseCode {
    if out.is_null() || len.is_null() {
        return IFD_COMMUNICATION_ERROR;
    }
    // SAFETY: non-null, and valid per this function's contract.
    let room = unsafe { *len };
    if data.len() > usize::try_from(room).unwrap_or(usize::MAX) {
        return IFD_ERROR_INSUFFICIENT_BUFFER;
    }
    // SAFETY: `out` holds at least `room` >= data.len() bytes; the buffers do not overlap
    // (`data` is ours).
    unsafe {
        std::ptr::copy_nonoverlapping(data.as_ptr(), out, data.len());
        *len = data.len() as Dword; // <= room, so it fits
    }
    IFD_SUCCESS
}

/// Borrow pcscd's input buffer.
///
/// # Safety
/// `buf` must be valid for `len` bytes of reads for the returned lifetime, or null with `len` 0.
unsafe fn input<'a>(buf: *const c_uchar, len: Dword) -> Option<&'a [u8]> {
    let len = usize::try_from(len).ok()?;
    if len == 0 {
        return Some(&[]);
    }
    if buf.is_null() {
        return None;
    }
    // SAFETY: per this function's contract.
    Some(unsafe { std::slice::from_raw_parts(buf, len) })
}

/// `IFDHCreateChannelByName`: `DeviceName` is the reader.conf `DEVICENAME`,
/// `<keypad script path>:<tcp port>`.
///
/// # Safety
/// `device_name` is a NUL-terminated string (or null), as pcscd passes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn IFDHCreateChannelByName(lun: Dword, device_name: *const c_char) -> ResponseCode {
    let device = if device_name.is_null() {
        None
    } else {
        // SAFETY: pcscd passes a NUL-terminated string that outlives this call.
        let name = unsafe { CStr::from_ptr(device_name) };
        name.to_str().ok().and_then(DeviceName::parse)
    };
    create(lun, device)
}

/// `IFDHCreateChannel` (no DEVICENAME): `channel` is the TCP port, the keypad script is
/// `$CPX_PINPAD_KEYPAD`.
#[unsafe(no_mangle)]
pub extern "C" fn IFDHCreateChannel(lun: Dword, channel: Dword) -> ResponseCode {
    let device = u16::try_from(channel).ok().and_then(|port| {
        Some(DeviceName {
            port,
            keypad: PathBuf::from(std::env::var_os("CPX_PINPAD_KEYPAD")?),
        })
    });
    create(lun, device)
}

/// `IFDHCloseChannel`.
#[unsafe(no_mangle)]
pub extern "C" fn IFDHCloseChannel(lun: Dword) -> ResponseCode {
    guard(|| {
        READERS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&lun);
        IFD_SUCCESS
    })
}

/// `IFDHGetCapabilities`.
///
/// # Safety
/// `length` and `value` as pcscd passes them: `value` valid for `*length` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn IFDHGetCapabilities(
    lun: Dword,
    tag: Dword,
    length: *mut Dword,
    value: *mut c_uchar,
) -> ResponseCode {
    with_reader(lun, |reader| {
        let answer = match tag {
            TAG_IFD_ATR => match reader.atr() {
                Ok(atr) => atr,
                Err(_) => return IFD_ICC_NOT_PRESENT,
            },
            TAG_IFD_SLOTS_NUMBER | TAG_IFD_SIMULTANEOUS_ACCESS => vec![1],
            TAG_IFD_THREAD_SAFE | TAG_IFD_SLOT_THREAD_SAFE => vec![0],
            _ => return IFD_ERROR_TAG,
        };
        // SAFETY: per this function's contract.
        unsafe { copy_out(&answer, value, length) }
    })
}

/// `IFDHSetCapabilities`: nothing to set.
#[unsafe(no_mangle)]
pub extern "C" fn IFDHSetCapabilities(
    _lun: Dword,
    _tag: Dword,
    _length: Dword,
    _value: *mut c_uchar,
) -> ResponseCode {
    IFD_ERROR_TAG
}

/// `IFDHSetProtocolParameters`: T=0 and T=1 are carried as they are (the emulated card speaks
/// APDUs), no PTS.
#[unsafe(no_mangle)]
pub extern "C" fn IFDHSetProtocolParameters(
    lun: Dword,
    protocol: Dword,
    _flags: c_uchar,
    _pts1: c_uchar,
    _pts2: c_uchar,
    _pts3: c_uchar,
) -> ResponseCode {
    with_reader(lun, |_| match protocol {
        SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1 => IFD_SUCCESS,
        _ => IFD_PROTOCOL_NOT_SUPPORTED,
    })
}

/// `IFDHPowerICC`.
///
/// # Safety
/// `atr` valid for `*atr_length` bytes of writes, as pcscd passes (`MAX_ATR_SIZE`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn IFDHPowerICC(
    lun: Dword,
    action: Dword,
    atr: *mut c_uchar,
    atr_length: *mut Dword,
) -> ResponseCode {
    with_reader(lun, |reader| {
        let powered = match action {
            IFD_POWER_UP => reader.power_up(),
            IFD_RESET => reader.reset(),
            IFD_POWER_DOWN => {
                let _ = reader.power_down();
                if !atr_length.is_null() {
                    // SAFETY: non-null, as pcscd passes.
                    unsafe { *atr_length = 0 };
                }
                return IFD_SUCCESS;
            }
            _ => return IFD_NOT_SUPPORTED,
        };
        match powered {
            // SAFETY: per this function's contract.
            Ok(answer) => unsafe { copy_out(&answer, atr, atr_length) },
            Err(_) => IFD_ERROR_POWER_ACTION,
        }
    })
}

/// `IFDHTransmitToICC`: the APDU goes to the emulated card as it is.
///
/// # Safety
/// `tx` valid for `tx_length` bytes, `rx` for `*rx_length` bytes of writes, as pcscd passes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn IFDHTransmitToICC(
    lun: Dword,
    _send_pci: ScardIoHeader,
    tx: *const c_uchar,
    tx_length: Dword,
    rx: *mut c_uchar,
    rx_length: *mut Dword,
    _recv_pci: *mut ScardIoHeader,
) -> ResponseCode {
    with_reader(lun, |reader| {
        // SAFETY: per this function's contract.
        let Some(command) = (unsafe { input(tx, tx_length) }) else {
            return IFD_COMMUNICATION_ERROR;
        };
        match reader.transmit(command) {
            // SAFETY: per this function's contract.
            Ok(response) => unsafe { copy_out(&response, rx, rx_length) },
            Err(_) => {
                if !rx_length.is_null() {
                    // SAFETY: non-null, as pcscd passes.
                    unsafe { *rx_length = 0 };
                }
                IFD_COMMUNICATION_ERROR
            }
        }
    })
}

/// `IFDHICCPresence`.
#[unsafe(no_mangle)]
pub extern "C" fn IFDHICCPresence(lun: Dword) -> ResponseCode {
    with_reader(lun, |reader| {
        if reader.present() {
            IFD_ICC_PRESENT
        } else {
            IFD_ICC_NOT_PRESENT
        }
    })
}

/// `IFDHControl` (v3): the part 10 features, PIN entry on the emulated keypad included.
///
/// # Safety
/// `tx` valid for `tx_length` bytes, `rx` for `rx_length` bytes of writes, `bytes_returned`
/// for a write, as pcscd passes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn IFDHControl(
    lun: Dword,
    control_code: Dword,
    tx: *const c_uchar,
    tx_length: Dword,
    rx: *mut c_uchar,
    rx_length: Dword,
    bytes_returned: *mut Dword,
) -> ResponseCode {
    with_reader(lun, |reader| {
        if bytes_returned.is_null() {
            return IFD_COMMUNICATION_ERROR;
        }
        // SAFETY: non-null, as pcscd passes.
        unsafe { *bytes_returned = 0 };
        // SAFETY: per this function's contract.
        let Some(command) = (unsafe { input(tx, tx_length) }) else {
            return IFD_COMMUNICATION_ERROR;
        };
        let Ok(code) = u32::try_from(control_code) else {
            return IFD_NOT_SUPPORTED;
        };
        match reader.control(code, command) {
            Ok(answer) => {
                let mut room = rx_length;
                // SAFETY: `rx` valid for `rx_length` bytes per this function's contract.
                let rv = unsafe { copy_out(&answer, rx, &mut room) };
                if rv == IFD_SUCCESS {
                    // SAFETY: non-null, checked above.
                    unsafe { *bytes_returned = room };
                }
                rv
            }
            Err(e) => {
                log(format_args!("control 0x{code:08X}: {e}"));
                match e {
                    // pcscd answers SCARD_E_UNSUPPORTED_FEATURE for this one.
                    ControlError::Unsupported(_) | ControlError::Structure(_) => IFD_NOT_SUPPORTED,
                    ControlError::Keypad(_) | ControlError::Card(_) => IFD_COMMUNICATION_ERROR,
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::reader::{GET_FEATURE_REQUEST, feature_code, tag};

    /// A reader on a free port (no card), under a Lun no other test uses.
    fn open(lun: Dword) {
        let keypad = std::env::temp_dir().join(format!("cpx-ffi-keypad-{}-{lun}", std::process::id()));
        assert_eq!(create(lun, Some(DeviceName { port: 0, keypad })), IFD_SUCCESS);
    }

    fn control(lun: Dword, code: u32, input: &[u8], room: usize) -> (ResponseCode, Vec<u8>) {
        let mut out = vec![0u8; room];
        let mut returned: Dword = 0xDEAD;
        // SAFETY: buffers valid for the lengths given.
        let rv = unsafe {
            IFDHControl(
                lun,
                Dword::from(code),
                input.as_ptr(),
                input.len() as Dword,
                out.as_mut_ptr(),
                room as Dword,
                &mut returned,
            )
        };
        out.truncate(if rv == IFD_SUCCESS { returned as usize } else { 0 });
        (rv, out)
    }

    #[test]
    fn hostile_calls_get_errors() {
        let lun = 0x7001_0000;
        open(lun);
        let (rv, list) = control(lun, GET_FEATURE_REQUEST, &[], 256);
        assert_eq!((rv, list.len()), (IFD_SUCCESS, 24));
        // Too small a buffer, an unknown code, a cut structure, no card.
        assert_eq!(
            control(lun, GET_FEATURE_REQUEST, &[], 23).0,
            IFD_ERROR_INSUFFICIENT_BUFFER
        );
        assert_eq!(control(lun, 0x4200_0001, &[], 256).0, IFD_NOT_SUPPORTED);
        assert_eq!(
            control(lun, feature_code(tag::VERIFY_PIN_DIRECT), &[0x1E; 7], 256).0,
            IFD_NOT_SUPPORTED
        );
        let mut s = vec![
            30, 0, 0x82, 0x08, 0x00, 0x08, 0x04, 0x02, 0x01, 0x0C, 0x04, 0, 0, 0, 0, 13, 0, 0, 0,
        ];
        s.extend([
            0x00, 0x20, 0x00, 0x01, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        // Keypad script absent: a timeout, answered without the (absent) card.
        assert_eq!(
            control(lun, feature_code(tag::VERIFY_PIN_DIRECT), &s, 256),
            (IFD_SUCCESS, vec![0x64, 0x00])
        );
        // Null pointers.
        // SAFETY: testing the null checks; no pointer is dereferenced.
        unsafe {
            let mut out = [0u8; 8];
            assert_eq!(
                IFDHControl(
                    lun,
                    0x4200_0D48,
                    std::ptr::null(),
                    0,
                    out.as_mut_ptr(),
                    8,
                    std::ptr::null_mut()
                ),
                IFD_COMMUNICATION_ERROR
            );
            let mut n: Dword = 0;
            assert_eq!(
                IFDHControl(lun, 0x4200_0D48, std::ptr::null(), 5, out.as_mut_ptr(), 8, &mut n),
                IFD_COMMUNICATION_ERROR
            );
            let mut len: Dword = 1;
            assert_eq!(
                IFDHGetCapabilities(lun, TAG_IFD_SLOTS_NUMBER, &mut len, std::ptr::null_mut()),
                IFD_COMMUNICATION_ERROR
            );
            let mut one = [0u8; 1];
            assert_eq!(
                IFDHGetCapabilities(lun, TAG_IFD_SLOTS_NUMBER, &mut len, one.as_mut_ptr()),
                IFD_SUCCESS
            );
            assert_eq!((len, one), (1, [1]));
            assert_eq!(
                IFDHGetCapabilities(lun, TAG_IFD_ATR, &mut len, one.as_mut_ptr()),
                IFD_ICC_NOT_PRESENT
            );
        }
        assert_eq!(IFDHICCPresence(lun), IFD_ICC_NOT_PRESENT);
        assert_eq!(IFDHCloseChannel(lun), IFD_SUCCESS);
        assert_eq!(IFDHICCPresence(lun), IFD_NO_SUCH_DEVICE);
        assert_eq!(control(lun, GET_FEATURE_REQUEST, &[], 256).0, IFD_NO_SUCH_DEVICE);
    }

    #[test]
    fn bad_device_names_are_refused() {
        // SAFETY: NUL-terminated literals.
        unsafe {
            assert_eq!(
                IFDHCreateChannelByName(0x7002_0000, c"/dev/null".as_ptr()),
                IFD_NO_SUCH_DEVICE
            );
            assert_eq!(
                IFDHCreateChannelByName(0x7002_0000, std::ptr::null()),
                IFD_NO_SUCH_DEVICE
            );
            assert_eq!(
                IFDHCreateChannelByName(0x7002_0000, c"/tmp/k:notaport".as_ptr()),
                IFD_NO_SUCH_DEVICE
            );
        }
    }

    #[test]
    fn a_panic_does_not_cross() {
        #[allow(clippy::panic)]
        let rv = guard(|| panic!("boom"));
        assert_eq!(rv, IFD_COMMUNICATION_ERROR);
    }
}

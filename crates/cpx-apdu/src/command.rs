//! Command APDUs (short form only, docs/card-spec.md §2.3) and command chaining.

use std::fmt::{self, Write as _};

use zeroize::Zeroizing;

use crate::error::ApduError;

/// Most data bytes a short command APDU carries (Lc is one byte, `00` is not a valid Lc).
pub const MAX_DATA: usize = 255;
/// Largest Le of a short APDU; it is encoded as `00`.
pub const MAX_LE: u16 = 256;

/// CLA bit that announces "more commands of this chain follow" (ISO 7816-4 §5.1.1, docs/card-spec.md §2.3).
pub const CLA_CHAINING: u8 = 0x10;

/// INS of VERIFY: its data is a PIN or PUK.
pub const INS_VERIFY: u8 = 0x20;
/// INS of CHANGE REFERENCE DATA: its data is old ‖ new PIN, or the new PIN (docs/card-spec.md §3.2).
pub const INS_CHANGE_REFERENCE_DATA: u8 = 0x24;
/// INS of RESET RETRY COUNTER: its data is PUK ‖ new PIN, or the new PIN (docs/card-spec.md §3.2).
pub const INS_RESET_RETRY_COUNTER: u8 = 0x2C;

/// The four ISO 7816-4 cases of a short command APDU.
///
/// ```
/// use cpx_apdu::{Case, Command};
///
/// let select = Command::new(0x00, 0xA4, 0x09, 0x04).with_data([0x3F, 0x00, 0xD0, 0x03])?.with_le(256)?;
/// assert_eq!(select.case(), Case::Case4);
/// assert_eq!(select.without_le().case(), Case::Case3);
/// # Ok::<(), cpx_apdu::ApduError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Case {
    /// No data, no Le: `CLA INS P1 P2`.
    Case1,
    /// No data, Le: `CLA INS P1 P2 Le`.
    Case2,
    /// Data, no Le: `CLA INS P1 P2 Lc data`.
    Case3,
    /// Data and Le: `CLA INS P1 P2 Lc data Le`.
    Case4,
}

/// A short command APDU.
///
/// The data field is wiped from memory when the command is dropped, since it may hold a PIN.
/// [`Command::trace`] and `Debug` never show the data of VERIFY, CHANGE REFERENCE DATA and RESET
/// RETRY COUNTER.
///
/// ```
/// use cpx_apdu::Command;
///
/// // docs/card-spec.md §1.3: select EF.SN.ICC by path, FCP wanted.
/// let cmd = Command::new(0x00, 0xA4, 0x09, 0x04).with_data([0x3F, 0x00, 0xD0, 0x03])?.with_le(256)?;
/// assert_eq!(&cmd.to_bytes()[..], &[0x00, 0xA4, 0x09, 0x04, 0x04, 0x3F, 0x00, 0xD0, 0x03, 0x00]);
///
/// // docs/card-spec.md §8: VERIFY of PIN 1234; the PIN never reaches a log.
/// let verify = Command::new(0x00, 0x20, 0x00, 0x01).with_data(b"1234".to_vec())?;
/// assert_eq!(verify.trace(), "00 20 00 01 04 ** ** ** **");
/// assert!(!format!("{verify:?}").contains("31"));
/// # Ok::<(), cpx_apdu::ApduError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    cla: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    data: Zeroizing<Vec<u8>>,
    le: Option<u16>,
}

impl Command {
    /// A case-1 command: header only.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Command {
        Command {
            cla,
            ins,
            p1,
            p2,
            data: Zeroizing::new(Vec::new()),
            le: None,
        }
    }

    /// Sets the data field: 1 to 255 bytes; empty data means "no data field".
    ///
    /// # Errors
    /// [`ApduError::DataTooLong`] beyond 255 bytes (the rejected data is wiped); longer data
    /// needs [`chain`].
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Result<Command, ApduError> {
        let data = Zeroizing::new(data.into());
        if data.len() > MAX_DATA {
            return Err(ApduError::DataTooLong { len: data.len() });
        }
        self.data = data;
        Ok(self)
    }

    /// Sets Le, the number of response bytes expected: 1 to 256 (256 is encoded as `00`).
    ///
    /// # Errors
    /// [`ApduError::InvalidLe`] for 0 or more than 256.
    pub fn with_le(mut self, le: u16) -> Result<Command, ApduError> {
        if le == 0 || le > MAX_LE {
            return Err(ApduError::InvalidLe(le));
        }
        self.le = Some(le);
        Ok(self)
    }

    /// Replaces the class byte (e.g. `01` for ChipDoc's logical channel 1, docs/card-spec.md §1.3).
    pub fn with_cla(mut self, cla: u8) -> Command {
        self.cla = cla;
        self
    }

    /// CLA.
    pub fn cla(&self) -> u8 {
        self.cla
    }

    /// INS.
    pub fn ins(&self) -> u8 {
        self.ins
    }

    /// P1.
    pub fn p1(&self) -> u8 {
        self.p1
    }

    /// P2.
    pub fn p2(&self) -> u8 {
        self.p2
    }

    /// The data field (empty when there is none).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Le, in `1..=256`, or `None` when no response data is expected.
    pub fn le(&self) -> Option<u16> {
        self.le
    }

    /// The ISO 7816-4 case, from the presence of data and Le.
    pub fn case(&self) -> Case {
        match (self.data.is_empty(), self.le.is_some()) {
            (true, false) => Case::Case1,
            (true, true) => Case::Case2,
            (false, false) => Case::Case3,
            (false, true) => Case::Case4,
        }
    }

    /// The short encoding `CLA INS P1 P2 [Lc data] [Le]`, Le 256 as `00`; wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        // Exact capacity: the buffer never reallocates, so no unwiped copy of the data is left behind.
        let mut out = Vec::with_capacity(4 + 1 + self.data.len() + 1);
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if !self.data.is_empty() {
            out.push(short_len(self.data.len()));
            out.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            out.push(short_len(usize::from(le)));
        }
        Zeroizing::new(out)
    }

    /// Parses a short command APDU, e.g. one received by a card emulator.
    ///
    /// A 5-byte APDU is case 2 (`00 20 00 01 00` is a case-2 command with Le 256, even though a T=0
    /// reader sends case 1 that way).
    ///
    /// # Errors
    /// [`ApduError::CommandTooShort`] under 4 bytes, [`ApduError::ExtendedLength`] for the
    /// extended form, [`ApduError::CommandLengthMismatch`] when Lc disagrees with the length.
    pub fn from_bytes(raw: &[u8]) -> Result<Command, ApduError> {
        let Some((&[cla, ins, p1, p2], body)) = raw.split_first_chunk::<4>() else {
            return Err(ApduError::CommandTooShort(raw.len()));
        };
        let cmd = Command::new(cla, ins, p1, p2);
        match body {
            [] => Ok(cmd),
            [le] => cmd.with_le(from_short_len(*le)),
            [0x00, ..] => Err(ApduError::ExtendedLength),
            [lc, rest @ ..] => {
                let mismatch = || ApduError::CommandLengthMismatch {
                    lc: *lc,
                    len: raw.len(),
                };
                let (data, le) = rest.split_at_checked(usize::from(*lc)).ok_or_else(mismatch)?;
                match le {
                    [] => cmd.with_data(data),
                    [le] => cmd.with_data(data)?.with_le(from_short_len(*le)),
                    _ => Err(mismatch()),
                }
            }
        }
    }

    /// The same command with no Le: on T=0 a case-4 command goes out as case 3 and the card answers
    /// `61xx` (docs/card-spec.md §2.3, §8.1).
    pub fn without_le(&self) -> Command {
        Command {
            le: None,
            ..self.clone()
        }
    }

    /// `true` when the data field is a PIN or PUK: INS `20` VERIFY, `24` CHANGE REFERENCE DATA,
    /// `2C` RESET RETRY COUNTER (any CLA, the CPS2ter `A0` class included).
    pub fn is_sensitive(&self) -> bool {
        matches!(
            self.ins,
            INS_VERIFY | INS_CHANGE_REFERENCE_DATA | INS_RESET_RETRY_COUNTER
        )
    }

    /// Upper-case hex with spaces, for logs; the data of [sensitive](Command::is_sensitive)
    /// commands is replaced by `**` per byte (Lc stays visible).
    ///
    /// ```
    /// use cpx_apdu::Command;
    ///
    /// let change = Command::new(0x00, 0x24, 0x00, 0x01).with_data(b"12345678".to_vec())?;
    /// assert_eq!(change.trace(), "00 24 00 01 08 ** ** ** ** ** ** ** **");
    /// let read = Command::new(0x00, 0xB0, 0x00, 0x00).with_le(0x0C)?;
    /// assert_eq!(read.trace(), "00 B0 00 00 0C");
    /// # Ok::<(), cpx_apdu::ApduError>(())
    /// ```
    pub fn trace(&self) -> String {
        let mut out = String::with_capacity(3 * (6 + self.data.len()));
        let sensitive = self.is_sensitive();
        let mut push = |text: fmt::Arguments<'_>| {
            if !out.is_empty() {
                out.push(' ');
            }
            // Writing to a String cannot fail.
            let _ = out.write_fmt(text);
        };
        for byte in [self.cla, self.ins, self.p1, self.p2] {
            push(format_args!("{byte:02X}"));
        }
        if !self.data.is_empty() {
            push(format_args!("{:02X}", short_len(self.data.len())));
            for byte in self.data.iter() {
                if sensitive {
                    push(format_args!("**"));
                } else {
                    push(format_args!("{byte:02X}"));
                }
            }
        }
        if let Some(le) = self.le {
            push(format_args!("{:02X}", short_len(usize::from(le))));
        }
        out
    }
}

/// Shows the header, Le and the data in hex, or `<n bytes masked>` for sensitive commands.
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Data<'a>(&'a Command);
        impl fmt::Debug for Data<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if self.0.is_sensitive() {
                    write!(f, "<{} bytes masked>", self.0.data.len())
                } else {
                    self.0.data.iter().try_for_each(|b| write!(f, "{b:02X}"))
                }
            }
        }
        f.debug_struct("Command")
            .field("cla", &format_args!("{:02X}", self.cla))
            .field("ins", &format_args!("{:02X}", self.ins))
            .field("p1", &format_args!("{:02X}", self.p1))
            .field("p2", &format_args!("{:02X}", self.p2))
            .field("data", &Data(self))
            .field("le", &self.le)
            .finish()
    }
}

/// One length byte of a short APDU: 1..=255 as is, 256 as `00`. Callers keep `len` in `1..=256`.
fn short_len(len: usize) -> u8 {
    // 256 → 0 by truncation, which is the short-APDU encoding of 256.
    (len & 0xFF) as u8
}

/// Le byte of a short APDU to a count: `00` means 256.
fn from_short_len(byte: u8) -> u16 {
    if byte == 0 { MAX_LE } else { u16::from(byte) }
}

/// Splits `data` into a command chain (ISO 7816-4 §5.1.1, docs/card-spec.md §2.3).
///
/// Every command but the last has CLA `cla | 0x10` and `chunk` bytes of data and no Le; the last
/// has `cla` as given, the remaining bytes and `le`. Data of at most `chunk` bytes gives a single
/// unchained command (no data at all gives a case-1 or case-2 command). CPx cards chain only PSO
/// DECIPHER, with 255-byte chunks.
///
/// ```
/// use cpx_apdu::chain;
///
/// // docs/card-spec.md §4.3: PSO DECIPHER of 0x81 ‖ 256-byte cryptogram.
/// let mut data = vec![0x81];
/// data.extend_from_slice(&[0x5A; 256]);
/// let cmds = chain(0x00, 0x2A, 0x80, 0x86, &data, Some(256), 255)?;
/// assert_eq!(cmds.len(), 2);
/// assert_eq!(&cmds[0].to_bytes()[..5], &[0x10, 0x2A, 0x80, 0x86, 0xFF]);
/// assert_eq!(&cmds[1].to_bytes()[..], &[0x00, 0x2A, 0x80, 0x86, 0x02, 0x5A, 0x5A, 0x00]);
/// # Ok::<(), cpx_apdu::ApduError>(())
/// ```
///
/// # Errors
/// [`ApduError::InvalidChunkSize`] unless `chunk` is in `1..=255`; [`ApduError::InvalidLe`] for a
/// `le` outside `1..=256`.
pub fn chain(
    cla: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    data: &[u8],
    le: Option<u16>,
    chunk: usize,
) -> Result<Vec<Command>, ApduError> {
    if chunk == 0 || chunk > MAX_DATA {
        return Err(ApduError::InvalidChunkSize(chunk));
    }
    let with_le = |cmd: Command| match le {
        Some(le) => cmd.with_le(le),
        None => Ok(cmd),
    };
    // Validate Le before doing any work, also when there is no data.
    let last = with_le(Command::new(cla, ins, p1, p2))?;
    let mut parts = data.chunks(chunk);
    let Some(tail) = parts.next_back() else {
        return Ok(vec![last]);
    };
    let mut out = Vec::with_capacity(data.len().div_ceil(chunk));
    for part in parts {
        out.push(Command::new(cla | CLA_CHAINING, ins, p1, p2).with_data(part)?);
    }
    out.push(last.with_data(tail)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    fn bytes(cmd: &Command) -> Vec<u8> {
        cmd.to_bytes().to_vec()
    }

    #[test]
    fn case1() {
        let cmd = Command::new(0x01, 0x20, 0x00, 0x01);
        assert_eq!(cmd.case(), Case::Case1);
        assert_eq!(bytes(&cmd), hex!("01 20 00 01"));
        assert_eq!(cmd.data(), &[] as &[u8]);
        assert_eq!(cmd.le(), None);
    }

    #[test]
    fn case2() {
        let cmd = Command::new(0x00, 0xB0, 0x00, 0x00).with_le(0x0C).unwrap();
        assert_eq!(cmd.case(), Case::Case2);
        assert_eq!(bytes(&cmd), hex!("00 B0 00 00 0C"));
        // docs/card-spec.md §2.3: CPS3 reads in E7 chunks, CPS4 with Le 00 = 256.
        let cmd = Command::new(0x01, 0xB0, 0x00, 0x00).with_le(256).unwrap();
        assert_eq!(bytes(&cmd), hex!("01 B0 00 00 00"));
        assert_eq!(cmd.le(), Some(256));
        let cmd = Command::new(0x00, 0xC0, 0x00, 0x00).with_le(1).unwrap();
        assert_eq!(bytes(&cmd), hex!("00 C0 00 00 01"));
        let cmd = Command::new(0x00, 0xC0, 0x00, 0x00).with_le(255).unwrap();
        assert_eq!(bytes(&cmd), hex!("00 C0 00 00 FF"));
    }

    #[test]
    fn case3() {
        // docs/card-spec.md §1.3: ChipDoc AID select, case 3.
        let cmd = Command::new(0x01, 0xA4, 0x04, 0x0C)
            .with_data(hex!("80 25 00 00 01 FF 01 00"))
            .unwrap();
        assert_eq!(cmd.case(), Case::Case3);
        assert_eq!(bytes(&cmd), hex!("01 A4 04 0C 08 80 25 00 00 01 FF 01 00"));
        let cmd = Command::new(0x00, 0xD6, 0x00, 0x00)
            .with_data(vec![0xAB; 255])
            .unwrap();
        let raw = bytes(&cmd);
        assert_eq!(raw.len(), 4 + 1 + 255);
        assert_eq!(&raw[..5], &hex!("00 D6 00 00 FF"));
    }

    #[test]
    fn case4() {
        // docs/card-spec.md §1.3: select EF.SN.ICC with FCP.
        let cmd = Command::new(0x00, 0xA4, 0x09, 0x04)
            .with_data(hex!("3F00D003").to_vec())
            .unwrap()
            .with_le(256)
            .unwrap();
        assert_eq!(cmd.case(), Case::Case4);
        assert_eq!(bytes(&cmd), hex!("00 A4 09 04 04 3F 00 D0 03 00"));
        let cmd = Command::new(0x00, 0x88, 0x00, 0x00)
            .with_data([1, 2])
            .unwrap()
            .with_le(0x33)
            .unwrap();
        assert_eq!(bytes(&cmd), hex!("00 88 00 00 02 01 02 33"));
    }

    #[test]
    fn without_le_turns_case4_into_case3() {
        let cmd = Command::new(0x00, 0xA4, 0x09, 0x04)
            .with_data(hex!("3F00D003"))
            .unwrap()
            .with_le(256)
            .unwrap();
        let t0 = cmd.without_le();
        assert_eq!(t0.case(), Case::Case3);
        assert_eq!(bytes(&t0), hex!("00 A4 09 04 04 3F 00 D0 03"));
        assert_eq!(cmd.le(), Some(256), "original untouched");
        let case2 = Command::new(0x00, 0xC0, 0, 0).with_le(0x27).unwrap();
        assert_eq!(case2.without_le().case(), Case::Case1);
    }

    #[test]
    fn limits() {
        let base = || Command::new(0x00, 0xD6, 0x00, 0x00);
        assert_eq!(
            base().with_data(vec![0; 256]),
            Err(ApduError::DataTooLong { len: 256 })
        );
        assert_eq!(base().with_data(Vec::new()).unwrap().case(), Case::Case1);
        assert_eq!(base().with_le(0), Err(ApduError::InvalidLe(0)));
        assert_eq!(base().with_le(257), Err(ApduError::InvalidLe(257)));
        assert_eq!(base().with_le(u16::MAX), Err(ApduError::InvalidLe(u16::MAX)));
        // Empty data clears earlier data.
        let cmd = base().with_data([1]).unwrap().with_data(Vec::new()).unwrap();
        assert_eq!(cmd.case(), Case::Case1);
    }

    #[test]
    fn accessors_and_with_cla() {
        let cmd = Command::new(0x00, 0x2A, 0x9E, 0x9A).with_cla(0x01);
        assert_eq!(
            (cmd.cla(), cmd.ins(), cmd.p1(), cmd.p2()),
            (0x01, 0x2A, 0x9E, 0x9A)
        );
    }

    #[test]
    fn sensitive_commands_are_masked() {
        for ins in [INS_VERIFY, INS_CHANGE_REFERENCE_DATA, INS_RESET_RETRY_COUNTER] {
            for cla in [0x00, 0x01, 0xA0] {
                let cmd = Command::new(cla, ins, 0x00, 0x01)
                    .with_data(hex!("31 32 33 34"))
                    .unwrap();
                assert!(cmd.is_sensitive());
                let trace = cmd.trace();
                let debug = format!("{cmd:?}");
                let pretty = format!("{cmd:#?}");
                for shown in [&trace, &debug, &pretty] {
                    assert!(!shown.contains("31 32 33 34"), "{shown}");
                    assert!(!shown.contains("31323334"), "{shown}");
                    assert!(!shown.contains("1234"), "{shown}");
                }
                assert_eq!(trace, format!("{cla:02X} {ins:02X} 00 01 04 ** ** ** **"));
                assert!(debug.contains("<4 bytes masked>"), "{debug}");
            }
        }
        // docs/card-spec.md §9: CHANGE REFERENCE DATA old ‖ new; docs/card-notes.md §4: unblock PUK ‖ new PIN.
        let cmd = Command::new(0x00, 0x2C, 0x00, 0x01)
            .with_data(b"1234567812345678".to_vec())
            .unwrap();
        assert!(!cmd.trace().contains("31"));
        assert!(!format!("{cmd:?}").contains("31"));
        // Data-less PIN status query: nothing to hide.
        assert_eq!(Command::new(0x01, 0x20, 0x00, 0x01).trace(), "01 20 00 01");
    }

    #[test]
    fn non_sensitive_trace_and_debug_show_data() {
        let cmd = Command::new(0x00, 0xA4, 0x09, 0x04)
            .with_data(hex!("3F00D003"))
            .unwrap()
            .with_le(256)
            .unwrap();
        assert!(!cmd.is_sensitive());
        assert_eq!(cmd.trace(), "00 A4 09 04 04 3F 00 D0 03 00");
        assert_eq!(
            format!("{cmd:?}"),
            "Command { cla: 00, ins: A4, p1: 09, p2: 04, data: 3F00D003, le: Some(256) }"
        );
    }

    #[test]
    fn from_bytes_all_cases() {
        for raw in [
            &hex!("01 20 00 01")[..],
            &hex!("00 B0 00 00 0C"),
            &hex!("00 B0 00 00 00"),
            &hex!("01 A4 04 0C 08 80 25 00 00 01 FF 01 00"),
            &hex!("00 A4 09 04 04 3F 00 D0 03 00"),
        ] {
            let cmd = Command::from_bytes(raw).unwrap();
            assert_eq!(bytes(&cmd), raw);
        }
        assert_eq!(
            Command::from_bytes(&hex!("00 B0 00 00 00")).unwrap().le(),
            Some(256)
        );
        assert_eq!(
            Command::from_bytes(&hex!("00 A4 09 04 04 3F 00 D0 03"))
                .unwrap()
                .case(),
            Case::Case3
        );
    }

    #[test]
    fn from_bytes_rejects_malformed() {
        assert_eq!(Command::from_bytes(&[]), Err(ApduError::CommandTooShort(0)));
        assert_eq!(
            Command::from_bytes(&[0, 0xA4, 0]),
            Err(ApduError::CommandTooShort(3))
        );
        assert_eq!(
            Command::from_bytes(&hex!("00 A4 04 00 00 00 02 3F 00")),
            Err(ApduError::ExtendedLength)
        );
        assert_eq!(
            Command::from_bytes(&hex!("00 A4 04 00 04 3F 00")),
            Err(ApduError::CommandLengthMismatch { lc: 4, len: 7 })
        );
        assert_eq!(
            Command::from_bytes(&hex!("00 A4 04 00 01 3F 00 00")),
            Err(ApduError::CommandLengthMismatch { lc: 1, len: 8 })
        );
    }

    #[test]
    fn chain_empty_data() {
        let cmds = chain(0x00, 0xCA, 0x01, 0x02, &[], None, 255).unwrap();
        assert_eq!(cmds.len(), 1);
        assert_eq!(bytes(&cmds[0]), hex!("00 CA 01 02"));
        let cmds = chain(0x00, 0xCA, 0x01, 0x02, &[], Some(256), 255).unwrap();
        assert_eq!(bytes(&cmds[0]), hex!("00 CA 01 02 00"));
    }

    #[test]
    fn chain_255_bytes_is_one_unchained_command() {
        let data = vec![0x42; 255];
        let cmds = chain(0x00, 0x2A, 0x80, 0x86, &data, Some(256), 255).unwrap();
        assert_eq!(cmds.len(), 1);
        assert_eq!(cmds[0].cla(), 0x00);
        assert_eq!(cmds[0].data(), &data[..]);
        assert_eq!(cmds[0].le(), Some(256));
        let raw = bytes(&cmds[0]);
        assert_eq!(&raw[..5], &hex!("00 2A 80 86 FF"));
        assert_eq!(raw.last(), Some(&0x00));
        assert_eq!(raw.len(), 4 + 1 + 255 + 1);
    }

    #[test]
    fn chain_256_bytes() {
        let data: Vec<u8> = (0..=255).collect();
        let cmds = chain(0x01, 0x2A, 0x80, 0x86, &data, None, 255).unwrap();
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[0].cla(), 0x11);
        assert_eq!(cmds[0].data(), &data[..255]);
        assert_eq!(cmds[0].le(), None);
        assert_eq!(cmds[1].cla(), 0x01);
        assert_eq!(bytes(&cmds[1]), hex!("01 2A 80 86 01 FF"));
    }

    #[test]
    fn chain_600_bytes() {
        let data: Vec<u8> = (0..600).map(|i| (i % 251) as u8).collect();
        let cmds = chain(0x00, 0x2A, 0x80, 0x86, &data, Some(256), 255).unwrap();
        let sizes: Vec<usize> = cmds.iter().map(|c| c.data().len()).collect();
        assert_eq!(sizes, [255, 255, 90]);
        let clas: Vec<u8> = cmds.iter().map(Command::cla).collect();
        assert_eq!(clas, [0x10, 0x10, 0x00]);
        let les: Vec<Option<u16>> = cmds.iter().map(Command::le).collect();
        assert_eq!(les, [None, None, Some(256)]);
        assert_eq!(
            cmds.iter().flat_map(|c| c.data().to_vec()).collect::<Vec<_>>(),
            data
        );
        for cmd in &cmds[..2] {
            assert_eq!(cmd.case(), Case::Case3);
        }
        assert_eq!(cmds[2].case(), Case::Case4);
    }

    #[test]
    fn chain_pso_decipher_spec_4_3() {
        // docs/card-spec.md §4.3: 0x81 ‖ 256-byte cryptogram = 257 bytes.
        let mut data = vec![0x81];
        data.extend((0..256).map(|i| i as u8));
        let cmds = chain(0x00, 0x2A, 0x80, 0x86, &data, Some(256), 255).unwrap();
        assert_eq!(cmds.len(), 2);
        let first = bytes(&cmds[0]);
        assert_eq!(&first[..6], &hex!("10 2A 80 86 FF 81"));
        assert_eq!(first.len(), 4 + 1 + 255);
        assert_eq!(bytes(&cmds[1]), hex!("00 2A 80 86 02 FE FF 00"));
    }

    #[test]
    fn chain_rejects_bad_parameters() {
        assert_eq!(
            chain(0, 0x2A, 0, 0, &[1], None, 0),
            Err(ApduError::InvalidChunkSize(0))
        );
        assert_eq!(
            chain(0, 0x2A, 0, 0, &[1], None, 256),
            Err(ApduError::InvalidChunkSize(256))
        );
        assert_eq!(
            chain(0, 0x2A, 0, 0, &[1], Some(0), 255),
            Err(ApduError::InvalidLe(0))
        );
        assert_eq!(
            chain(0, 0x2A, 0, 0, &[], Some(300), 255),
            Err(ApduError::InvalidLe(300))
        );
    }

    #[test]
    fn chain_small_chunks() {
        let cmds = chain(0x00, 0xD6, 0x00, 0x00, &[1, 2, 3, 4, 5], None, 2).unwrap();
        let sizes: Vec<usize> = cmds.iter().map(|c| c.data().len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
    }
}

//! A second PKCS#11 program on the same card: the test binary run again with [`ROLE`] = `peer`,
//! loading the built module through the `cryptoki` crate, driven line by line on its stdin
//! (`login`, `sign`, `logout`, `finalize`), answering `ok` or `err …` on its stdout.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cpx_testkit::Failed;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectClass;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

use crate::common::{find_one, module_path};

/// Environment: the role of a re-run test binary.
pub const ROLE: &str = "CPX_SHARED_CARD_ROLE";
const MODULE: &str = "CPX_SHARED_CARD_MODULE";
const READER: &str = "CPX_SHARED_CARD_READER";
/// How long one step of the peer may take (a hang guard).
const STEP: Duration = Duration::from_secs(30);

/// The parent's handle on a running peer.
pub struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    replies: mpsc::Receiver<String>,
}

impl Peer {
    /// Start a peer on the card in `reader` (it opens a read-write session there).
    pub fn start(reader: &str) -> Result<Peer, Failed> {
        let mut child = Command::new(std::env::current_exe()?)
            .env(ROLE, "peer")
            .env(MODULE, module_path()?)
            .env(READER, reader)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut peer = Peer {
            child,
            stdin,
            replies,
        };
        peer.expect_ok("start")?;
        Ok(peer)
    }

    fn expect_ok(&mut self, what: &str) -> Result<(), Failed> {
        match self.replies.recv_timeout(STEP) {
            Ok(r) if r == "ok" => Ok(()),
            Ok(r) => Err(format!("peer {what}: {r}").into()),
            Err(e) => Err(format!("peer {what}: no answer ({e})").into()),
        }
    }

    /// Send one command and wait for its `ok`.
    pub fn ask(&mut self, command: &str) -> Result<(), Failed> {
        let stdin = self.stdin.as_mut().ok_or("peer finished")?;
        writeln!(stdin, "{command}")?;
        stdin.flush()?;
        self.expect_ok(command)
    }

    /// End the peer (its stdin closed) and check it exited cleanly.
    pub fn finish(mut self) -> Result<(), Failed> {
        drop(self.stdin.take());
        let out = crate::wait_output(self.child, STEP)?;
        if !out.status.success() {
            return Err(format!("peer exited with {}", out.status).into());
        }
        Ok(())
    }
}

/// The peer process itself.
pub fn main() -> ExitCode {
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("err {e:?}");
            ExitCode::FAILURE
        }
    }
}

fn serve() -> Result<(), Failed> {
    let module = std::env::var(MODULE)?;
    let reader = std::env::var(READER)?;
    let p11 = Pkcs11::new(module)?;
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let slot = crate::common::slot_of(&p11, &reader)?;
    let session = p11.open_rw_session(slot)?;
    println!("ok");
    let mut session = Some(session);
    let mut p11 = Some(p11);
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        if line.trim() == "finalize" {
            session = None;
            let r = p11.take().map(|p| p.finalize());
            match r {
                Some(Err(e)) => println!("err {e}"),
                _ => println!("ok"),
            }
            std::io::stdout().flush()?;
            continue;
        }
        let r: Result<(), Failed> = (|| {
            let s = session.as_ref().ok_or("finalized")?;
            match line.trim() {
                "login" => s.login(UserType::User, Some(&AuthPin::new(crate::PIN.into())))?,
                "logout" => s.logout()?,
                "sign" => {
                    let key = find_one(s, ObjectClass::PRIVATE_KEY, "CPS_PRIV_AUT")?;
                    let mut di = vec![
                        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                        0x01, 0x05, 0x00, 0x04, 0x20,
                    ];
                    di.extend_from_slice(&[0x11; 32]);
                    s.sign(&Mechanism::RsaPkcs, key, &di)?;
                }
                other => return Err(format!("unknown command {other:?}").into()),
            }
            Ok(())
        })();
        match r {
            Ok(()) => println!("ok"),
            Err(e) => println!("err {e:?}"),
        }
        std::io::stdout().flush()?;
    }
    Ok(())
}

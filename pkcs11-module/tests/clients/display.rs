//! A virtual X display for the browsers (Xvfb), a "user" who types the PIN into their dialog
//! (xdotool), and screenshots (xwd + ImageMagick). Headless browsers cannot show the PIN
//! dialog NSS asks for, and hang on it: the login needs a display.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cpx_testkit::Failed;

use crate::support::{PIN, Proc, STEP, read_text, run, run_status, temp_dir, utf8, wait_until};

/// The `CPX_PKCS11_LOG` filter the browsers run the module with: its debug log, and the APDU
/// trace (PINs masked) from which [`PinTrace`] reads what reached the card.
pub const MODULE_LOG: &str = "debug,cpx::apdu=trace";

/// How long a PIN dialog may take to get the keyboard focus.
const FOCUS_WAIT: Duration = Duration::from_secs(30);

/// How long after Enter a dialog still showing, with nothing of a login in the module's log,
/// is taken as not having received the PIN (keys lost): then, and only then, it is typed again.
/// A dialog takes the PIN once and closes (Chromium's and Firefox's both), so keys still queued
/// in a slow browser cannot submit twice.
const RETYPE_AFTER: Duration = Duration::from_secs(10);

/// How many times the PIN is typed into one dialog at most (see [`RETYPE_AFTER`]).
const MAX_ATTEMPTS: u32 = 3;

/// What the module logged of the PIN's way to the card, from the browser's log (the module runs
/// with [`MODULE_LOG`]). The APDU trace is the card's side: a VERIFY carrying a PIN is in it
/// only if it was sent, with the card's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinTrace {
    /// The card's status word for each VERIFY carrying a PIN, in order (`9000`, `63C2`), or
    /// `?` while the answer is not logged yet.
    pub verifies: Vec<String>,
    /// The module's C_Login failures (log lines): a PIN refused by the module or the card
    /// (`→ CKR_PIN_…`), a login already done.
    pub failed: Vec<String>,
    /// The module's successful logins.
    pub logins: usize,
}

impl PinTrace {
    /// Reads the module's lines in `log` (env_logger's `[time LEVEL target] message`).
    pub fn parse(log: &str) -> Self {
        let mut trace = Self::default();
        // The VERIFY waiting for its answer, per reader: its index in `verifies`.
        let mut pending: HashMap<&str, usize> = HashMap::new();
        for line in log.lines() {
            if let Some((_, message)) = line.split_once(" cpx::apdu] ") {
                if let Some((reader, command)) = message.rsplit_once(" > ") {
                    let bytes: Vec<&str> = command.split_whitespace().collect();
                    // INS 20 with masked data (Command::trace): a PIN went out. The empty
                    // VERIFY the module sends to read the tries left carries none.
                    if bytes.get(1) == Some(&"20") && bytes.contains(&"**") {
                        pending.insert(reader, trace.verifies.len());
                        trace.verifies.push("?".to_string());
                    }
                } else if let Some((reader, answer)) = message.rsplit_once(" < ")
                    && let Some(at) = pending.remove(reader)
                {
                    let bytes: Vec<&str> = answer.split_whitespace().collect();
                    trace.verifies[at] = bytes[bytes.len().saturating_sub(2)..].concat();
                }
            } else if line.contains("] C_Login: ") {
                // The module logs a failed call (ffi::guard); a successful one below.
                trace.failed.push(line.to_string());
            } else if line.contains(": user logged in") {
                trace.logins += 1;
            }
        }
        trace
    }

    /// How many PIN submissions the module has seen an outcome of, or started sending.
    fn progress(&self) -> usize {
        self.verifies.len() + self.failed.len() + self.logins
    }

    /// The card's refusal of a PIN, or the module's, if any.
    fn refusal(&self) -> Option<String> {
        if let Some(sw) = self.verifies.iter().find(|sw| *sw != "9000" && *sw != "?") {
            return Some(format!("the card answered {sw} to the PIN"));
        }
        self.failed
            .iter()
            .find(|line| line.contains("→ CKR_PIN"))
            .map(|line| format!("the module refused the PIN: {line}"))
    }
}

/// The user's side of a login, as [`Display::answer_pin_dialogs`] saw it.
#[derive(Debug, Clone)]
pub struct PinDialogs {
    /// How many times a PIN dialog showed (a dialog closed and shown again counts twice).
    pub prompts: usize,
    /// What reached the card.
    pub trace: PinTrace,
}

impl PinDialogs {
    /// One card, one PIN dialog, and the PIN reached the card once and was accepted.
    pub fn assert_one_accepted_pin(&self, browser: &str) {
        eprintln!("{browser}: PIN trace {:?}", self.trace);
        assert_eq!(self.prompts, 1, "one card, one PIN dialog");
        assert_eq!(self.trace.verifies, ["9000"], "VERIFY answers: {:?}", self.trace);
    }
}

/// One PIN dialog being answered.
struct Dialog {
    /// When Enter was last pressed in it.
    entered: Instant,
    /// [`PinTrace::progress`] then.
    progress: usize,
    /// How many times the PIN was typed into it.
    attempts: u32,
}

/// A running Xvfb on a display number it chose itself (`-displayfd`: no collision with another
/// X server or a parallel test); dropping it stops it.
#[derive(Debug)]
pub struct Display {
    _proc: Proc,
    dir: tempfile::TempDir,
    /// `:N`.
    pub name: String,
}

impl Display {
    /// Starts Xvfb (1280×800) and waits until it has printed its display number.
    pub fn start() -> Result<Self, Failed> {
        let dir = temp_dir("xvfb")?;
        let number = dir.path().join("display");
        let mut cmd = Command::new("Xvfb");
        cmd.args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
            // No auto-repeat: the server repeats a key the fake keyboard holds down, and on a
            // loaded machine xdotool can be descheduled between press and release for longer
            // than the repeat delay: "1234" would reach the card as "11234" and spend a try.
            "-r",
        ])
        .stdin(Stdio::null())
        .stdout(File::create(&number)?)
        .stderr(File::create(dir.path().join("xvfb.log"))?);
        let proc = Proc::spawn("Xvfb", &mut cmd)?;
        let mut name = String::new();
        wait_until("Xvfb to start", Duration::from_secs(30), || {
            let text = read_text(&number);
            if text.ends_with('\n') {
                name = format!(":{}", text.trim());
            }
            Ok(!name.is_empty())
        })?;
        Ok(Self {
            _proc: proc,
            dir,
            name,
        })
    }

    /// Runs xdotool on this display; its output, and whether it succeeded (a search that finds
    /// nothing "fails").
    pub fn xdotool(&self, args: &[&str]) -> Result<(bool, String), Failed> {
        run_status("xdotool", args, &[("DISPLAY", &self.name)])
    }

    /// [`Display::xdotool`], an error unless it succeeds.
    fn xdotool_ok(&self, args: &[&str]) -> Result<(), Failed> {
        let (ok, out) = self.xdotool(args)?;
        if !ok {
            return Err(format!("xdotool {}: {out}", args.join(" ")).into());
        }
        Ok(())
    }

    /// The visible windows whose title matches `pattern` (a regular expression).
    pub fn windows(&self, pattern: &str) -> Result<Vec<String>, Failed> {
        let deadline = Instant::now() + FOCUS_WAIT;
        loop {
            let (_, out) = self.xdotool(&["search", "--onlyvisible", "--name", pattern])?;
            // A window the browser destroys while xdotool walks the tree ends xdotool with an X
            // error before it has seen every window: that list could miss a dialog that shows.
            if !out.contains("X Error") {
                return Ok(out
                    .lines()
                    .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
                    .map(str::to_string)
                    .collect());
            }
            if Instant::now() > deadline {
                return Err(format!("xdotool search kept failing:\n{out}").into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The top-level window that has the keyboard focus, if any.
    fn focused(&self) -> Result<Option<String>, Failed> {
        let (ok, out) = self.xdotool(&["getwindowfocus"])?;
        Ok(ok.then(|| out.trim().to_string()))
    }

    /// Gives `window` (titled `pattern`) the keyboard focus and waits until the server says it
    /// has it: keys sent before go to another window. No window manager runs, so focus, not
    /// activate; asked again on every poll, as the browser may move the focus itself. False
    /// when the window closed meanwhile.
    fn focus(&self, window: &str, pattern: &str) -> Result<bool, Failed> {
        let deadline = Instant::now() + FOCUS_WAIT;
        loop {
            if self.focused()?.as_deref() == Some(window) {
                return Ok(true);
            }
            if !self.windows(pattern)?.iter().any(|w| w == window) {
                return Ok(false);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "PIN dialog {window} did not get the keyboard focus within {FOCUS_WAIT:?} \
                     (focus: {:?})",
                    self.focused()?
                )
                .into());
            }
            // Not --sync: xdotool's own wait has no bound we choose; the poll above is the wait.
            self.xdotool(&["windowfocus", window])?;
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types `secret` (the PIN) into `window` (titled `pattern`), then Enter, each only while
    /// the window has the focus: the field is emptied first (a previous attempt may have left
    /// keys in it), and Enter is held back if the focus left during the typing (some keys went
    /// elsewhere: the field is typed again). The text goes to xdotool in a private file, not in
    /// its arguments. False when the window closed meanwhile (nothing was entered).
    fn enter_pin(&self, window: &str, pattern: &str, secret: &str) -> Result<bool, Failed> {
        let pin_file = self.dir.path().join("pin");
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&pin_file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, secret.as_bytes()))?;
        let result = (|| {
            for _ in 0..MAX_ATTEMPTS {
                if !self.focus(window, pattern)? {
                    return Ok(false);
                }
                self.xdotool_ok(&["key", "--delay", "50", "ctrl+a", "BackSpace"])?;
                self.xdotool_ok(&["type", "--delay", "50", "--file", utf8(&pin_file)])?;
                if self.focused()?.as_deref() == Some(window) {
                    self.xdotool_ok(&["key", "Return"])?;
                    return Ok(true);
                }
                eprintln!("PIN dialog {window} lost the focus while the PIN was typed: again");
            }
            Err(format!("PIN dialog {window} kept losing the keyboard focus").into())
        })();
        let _ = std::fs::remove_file(&pin_file);
        result
    }

    /// The user's side of a login: until `done` holds (at most [`STEP`]), answer each PIN
    /// dialog (a window titled `dialog`) with the card's PIN. Fails when the browser exits,
    /// when the card or the module refuses the PIN, or when more than `max_prompts` dialogs
    /// come. A dialog is typed into again only while it still shows [`RETYPE_AFTER`] after
    /// Enter and the module's log shows nothing of a login since (the keys were lost): a PIN
    /// the dialog may have taken is never typed twice. What reached the card is judged from
    /// the module's APDU trace in `browser_log` (the browser runs it with [`MODULE_LOG`]).
    pub fn answer_pin_dialogs(
        &self,
        browser: &mut Proc,
        browser_log: &Path,
        dialog: &str,
        max_prompts: usize,
        done: impl FnMut() -> Result<bool, Failed>,
    ) -> Result<PinDialogs, Failed> {
        self.answer_dialogs(browser, browser_log, dialog, max_prompts, PIN, done)
    }

    /// [`Display::answer_pin_dialogs`], typing `text` into the dialogs instead of the card's PIN
    /// (a PIN-pad login: what a browser that asks anyway gets, the PIN being typed on the pad).
    pub fn answer_dialogs(
        &self,
        browser: &mut Proc,
        browser_log: &Path,
        dialog: &str,
        max_prompts: usize,
        text: &str,
        mut done: impl FnMut() -> Result<bool, Failed>,
    ) -> Result<PinDialogs, Failed> {
        let deadline = Instant::now() + STEP;
        let mut prompts = 0;
        let mut open: HashMap<String, Dialog> = HashMap::new();
        loop {
            if done()? {
                return Ok(PinDialogs {
                    prompts,
                    trace: PinTrace::parse(&read_text(browser_log)),
                });
            }
            if !browser.running() {
                return Err(format!("{} exited:\n{}", browser.name, read_text(browser_log)).into());
            }
            let trace = PinTrace::parse(&read_text(browser_log));
            if let Some(refusal) = trace.refusal() {
                return Err(format!(
                    "{}: {refusal} ({prompts} PIN dialogs, VERIFY answers {:?}); its log:\n{}",
                    browser.name,
                    trace.verifies,
                    read_text(browser_log)
                )
                .into());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not log in within {STEP:?} ({prompts} PIN dialogs, VERIFY answers \
                     {:?}); its log:\n{}",
                    browser.name,
                    trace.verifies,
                    read_text(browser_log)
                )
                .into());
            }
            let visible = self.windows(dialog)?;
            // A dialog that closed and shows again, even under the same window id, is a new
            // prompt.
            open.retain(|window, _| visible.contains(window));
            for window in visible {
                match open.entry(window) {
                    Entry::Vacant(entry) => {
                        prompts += 1;
                        if prompts > max_prompts {
                            return Err(format!(
                                "{}: {prompts} PIN dialogs (VERIFY answers {:?}); its log:\n{}",
                                browser.name,
                                trace.verifies,
                                read_text(browser_log)
                            )
                            .into());
                        }
                        let window = entry.key().clone();
                        let progress = trace.progress();
                        if self.enter_pin(&window, dialog, text)? {
                            eprintln!("{}: PIN dialog {window} answered", browser.name);
                            entry.insert(Dialog {
                                entered: Instant::now(),
                                progress,
                                attempts: 1,
                            });
                        }
                    }
                    Entry::Occupied(mut entry) => {
                        let window = entry.key().clone();
                        let d = entry.get_mut();
                        if d.entered.elapsed() < RETYPE_AFTER
                            || trace.progress() != d.progress
                            // Read again: typing into another dialog above may have taken time.
                            || PinTrace::parse(&read_text(browser_log)).progress() != d.progress
                        {
                            continue;
                        }
                        if d.attempts >= MAX_ATTEMPTS {
                            return Err(format!(
                                "PIN dialog {window} still shows after the PIN was typed \
                                 {MAX_ATTEMPTS} times, and no login reached the module"
                            )
                            .into());
                        }
                        eprintln!(
                            "{}: PIN dialog {window} still shows {RETYPE_AFTER:?} after Enter and \
                             no PIN reached the module: typing it again",
                            browser.name
                        );
                        d.attempts += 1;
                        if self.enter_pin(&window, dialog, text)? {
                            d.entered = Instant::now();
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Opens `url` in the browser window whose class matches `class`, as a user would: Ctrl+L
    /// (the address bar), the URL, Enter — each only while that window has the keyboard focus
    /// (no window manager runs: it is given the focus and the server is asked until it has it).
    /// The address bar is typed again, from empty, when the focus left during the typing.
    pub fn open_url(&self, class: &str, url: &str) -> Result<(), Failed> {
        let (_, out) = self.xdotool(&["search", "--onlyvisible", "--class", class])?;
        let window = out
            .lines()
            .rfind(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("no visible {class} window: {out}"))?
            .to_string();
        for _ in 0..MAX_ATTEMPTS {
            wait_until("the browser window to get the keyboard focus", FOCUS_WAIT, || {
                if self.focused()?.as_deref() == Some(window.as_str()) {
                    return Ok(true);
                }
                self.xdotool(&["windowfocus", &window])?;
                Ok(false)
            })?;
            // The address bar selects its whole text when it takes the focus: typing replaces it.
            self.xdotool_ok(&["key", "--delay", "50", "ctrl+l"])?;
            self.xdotool_ok(&["type", "--delay", "20", url])?;
            if self.focused()?.as_deref() == Some(window.as_str()) {
                self.xdotool_ok(&["key", "Return"])?;
                return Ok(());
            }
            eprintln!("browser window {window} lost the focus while the URL was typed: again");
        }
        Err(format!("browser window {window} kept losing the keyboard focus").into())
    }

    /// Best effort, for the screenshot only: in the browser window whose class matches
    /// `class`, find `text` (Ctrl+F), so the page scrolls to it and highlights it. Its sleeps
    /// are cosmetic (the find bar opens, the page scrolls): no verdict depends on them.
    pub fn find_in_page(&self, class: &str, text: &str) {
        let result = (|| -> Result<(), Failed> {
            let (_, out) = self.xdotool(&["search", "--onlyvisible", "--class", class])?;
            let window = out.lines().last().ok_or("no browser window")?.to_string();
            self.xdotool(&["windowfocus", "--sync", &window])?;
            self.xdotool(&["key", "ctrl+f"])?;
            std::thread::sleep(Duration::from_millis(300));
            self.xdotool(&["type", "--delay", "10", text])?;
            self.xdotool(&["key", "Return"])?;
            std::thread::sleep(Duration::from_millis(700));
            Ok(())
        })();
        if let Err(e) = result {
            eprintln!("find in page (cosmetic): {}", e.message().unwrap_or("?"));
        }
    }

    /// A PNG of the window titled `pattern` alone (a browser's dialog), once it has drawn itself:
    /// polls (at most `within`) until the picture is not black any more (mapped, not painted
    /// yet), then keeps the last one. Taken from the window itself (`xwd -id`): with no window
    /// manager, the whole-screen picture shows the browsers' dialogs black. When the window is
    /// gone, the whole screen instead. Cosmetic: no verdict depends on the picture.
    pub fn screenshot_window(&self, pattern: &str, path: &Path, within: Duration) -> Result<(), Failed> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let deadline = Instant::now() + within;
        loop {
            let Some(window) = self.windows(pattern)?.into_iter().next() else {
                return self.screenshot(path);
            };
            let (ok, _) = run_status(
                "sh",
                &[
                    "-c",
                    r#"xwd -id "$2" -silent -display "$1" | convert xwd:- "png:$3""#,
                    "screenshot",
                    &self.name,
                    &window,
                    utf8(path),
                ],
                &[],
            )?;
            let mean = if ok {
                run("convert", &[utf8(path), "-format", "%[fx:mean]", "info:"], &[])
                    .ok()
                    .and_then(|m| m.trim().parse::<f64>().ok())
                    .unwrap_or(0.0)
            } else {
                0.0
            };
            if mean > 0.05 {
                eprintln!("screenshot of {pattern:?}: {}", path.display());
                return Ok(());
            }
            if Instant::now() > deadline {
                // The window never drew (or closed while captured): the whole screen instead.
                return self.screenshot(path);
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Writes a PNG of the whole screen to `path` and checks it is a real picture.
    pub fn screenshot(&self, path: &Path) -> Result<(), Failed> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        run(
            "sh",
            &[
                "-c",
                r#"xwd -root -silent -display "$1" | convert xwd:- "png:$2""#,
                "screenshot",
                &self.name,
                utf8(path),
            ],
            &[],
        )?;
        let size = std::fs::metadata(path)?.len();
        assert!(
            size > 10_000,
            "{}: {size} bytes, not a screenshot",
            path.display()
        );
        eprintln!("screenshot: {}", path.display());
        Ok(())
    }
}

/// target/ci-artifacts/<name>.png, next to the profile directory the module was built in (CI
/// keeps this directory).
pub fn artifact(so: &Path, name: &str) -> Result<PathBuf, Failed> {
    let target = so
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot locate the target directory")?;
    Ok(target.join("ci-artifacts").join(format!("{name}.png")))
}

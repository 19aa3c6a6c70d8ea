//! A virtual X display for the browsers (Xvfb), a "user" who types the PIN into their dialog
//! (xdotool), and screenshots (xwd + ImageMagick). Headless browsers cannot show the PIN
//! dialog NSS asks for, and hang on it (test-harness.md §5): the login needs a display.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cpx_testkit::Failed;

use crate::support::{PIN, Proc, STEP, read_text, run, run_status, temp_dir, utf8, wait_until};

/// A running Xvfb on a display number it chose itself (`-displayfd`: no collision with another
/// X server or a parallel test); dropping it stops it.
#[derive(Debug)]
pub struct Display {
    _proc: Proc,
    _dir: tempfile::TempDir,
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
        ])
        .stdin(Stdio::null())
        .stdout(File::create(&number)?)
        .stderr(File::create(dir.path().join("xvfb.log"))?);
        let proc = Proc::spawn("Xvfb", &mut cmd)?;
        let mut name = String::new();
        wait_until("Xvfb to start", Duration::from_secs(20), || {
            let text = read_text(&number);
            if text.ends_with('\n') {
                name = format!(":{}", text.trim());
            }
            Ok(!name.is_empty())
        })?;
        Ok(Self {
            _proc: proc,
            _dir: dir,
            name,
        })
    }

    /// Runs xdotool on this display; its output, and whether it succeeded (a search that finds
    /// nothing "fails").
    pub fn xdotool(&self, args: &[&str]) -> Result<(bool, String), Failed> {
        run_status("xdotool", args, &[("DISPLAY", &self.name)])
    }

    /// The visible windows whose title matches `pattern` (a regular expression).
    pub fn windows(&self, pattern: &str) -> Result<Vec<String>, Failed> {
        let (_, out) = self.xdotool(&["search", "--onlyvisible", "--name", pattern])?;
        Ok(out
            .lines()
            .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_string)
            .collect())
    }

    /// Types `text` and Enter into `window` after giving it the keyboard focus (no window
    /// manager runs, so focus, not activate).
    pub fn type_into(&self, window: &str, text: &str) -> Result<(), Failed> {
        let (ok, out) = self.xdotool(&["windowfocus", "--sync", window])?;
        if !ok {
            return Err(format!("xdotool windowfocus {window}: {out}").into());
        }
        // The dialog maps before its text field takes keys.
        std::thread::sleep(Duration::from_millis(300));
        for args in [&["type", "--delay", "20", text][..], &["key", "Return"][..]] {
            let (ok, out) = self.xdotool(args)?;
            if !ok {
                return Err(format!("xdotool {}: {out}", args[0]).into());
            }
        }
        Ok(())
    }

    /// The user's side of a login: until `done` holds (at most [`STEP`]), answer each new PIN
    /// dialog (a window titled `dialog`) with the card's PIN. Fails when the browser exits,
    /// or when more than `max_prompts` dialogs come (a refused PIN would loop). Returns how
    /// many dialogs were answered.
    pub fn answer_pin_dialogs(
        &self,
        browser: &mut Proc,
        browser_log: &Path,
        dialog: &str,
        max_prompts: usize,
        mut done: impl FnMut() -> Result<bool, Failed>,
    ) -> Result<usize, Failed> {
        let deadline = Instant::now() + STEP;
        let mut answered = HashSet::new();
        loop {
            if done()? {
                return Ok(answered.len());
            }
            if !browser.running() {
                return Err(format!("{} exited:\n{}", browser.name, read_text(browser_log)).into());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not log in within {STEP:?} ({} PIN dialogs answered); its log:\n{}",
                    browser.name,
                    answered.len(),
                    read_text(browser_log)
                )
                .into());
            }
            for window in self.windows(dialog)? {
                if answered.insert(window.clone()) {
                    if answered.len() > max_prompts {
                        return Err(format!("{} PIN dialogs: the PIN is refused?", answered.len()).into());
                    }
                    eprintln!("{}: PIN dialog {window} answered", browser.name);
                    self.type_into(&window, PIN)?;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Best effort, for the screenshot only: in the browser window whose class matches
    /// `class`, find `text` (Ctrl+F), so the page scrolls to it and highlights it.
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

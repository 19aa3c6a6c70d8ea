//! The data-driven runner: a plan is a list of rows (official ID, what, expected return code, a
//! step) and unreported setup steps, executed in order against one card; every mismatch is
//! collected and reported at the end as the official report would show it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Instant;

use cpx_testkit::Failed;
use cryptoki_sys::*;

pub use crate::ctx::{AUTH_CERT, BAD_SESSION, Ctx, PIN, SIG_CERT, ok, text};

/// What a step answers: the return code of the call the row is about, or why it could not be
/// judged (a setup call failed, or a value check after CKR_OK failed).
pub type StepResult = Result<CK_RV, String>;

/// A step of the plan.
pub type StepFn = Box<dyn Fn(&mut Ctx) -> StepResult>;

/// One row of the official plan (docs/card-spec.md §6.1).
pub struct Row {
    /// The official test ID (repeated when the official program reports a check several times).
    pub id: u32,
    /// What the row does, as the report shows it.
    pub what: Cow<'static, str>,
    /// The expected return code.
    pub expect: CK_RV,
    /// A module bug known to break this row: reported as KNOWN instead of failing the run.
    pub known: Option<&'static str>,
    step: StepFn,
}

/// A plan entry: a reported row, or a setup call that must succeed (CKR_OK) and is not a row.
pub enum Item {
    /// A reported row.
    Row(Row),
    /// An unreported prerequisite.
    Setup(&'static str, StepFn),
}

/// A row.
pub fn row(
    id: u32,
    what: impl Into<Cow<'static, str>>,
    expect: CK_RV,
    step: impl Fn(&mut Ctx) -> StepResult + 'static,
) -> Item {
    Item::Row(Row {
        id,
        what: what.into(),
        expect,
        known: None,
        step: Box::new(step),
    })
}

/// A setup step.
pub fn setup(what: &'static str, step: impl Fn(&mut Ctx) -> StepResult + 'static) -> Item {
    Item::Setup(what, Box::new(step))
}

impl Item {
    /// Mark the row as broken by a known module bug (see the final report of the test). No row
    /// needs it today; it stays for the next bug found, so that the plan keeps running.
    #[allow(dead_code)]
    pub fn known(self, reason: &'static str) -> Item {
        match self {
            Item::Row(r) => Item::Row(Row {
                known: Some(reason),
                ..r
            }),
            s => s,
        }
    }
}

/// The card a plan runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gen {
    /// CPS3, contact (IAS-ECC).
    Cps3,
    /// CPS4 (ChipDoc).
    Cps4,
    /// CPS3 through its contactless interface.
    Cl,
}

impl Gen {
    /// The emulator image.
    pub fn stem(self) -> &'static str {
        match self {
            Gen::Cps3 => "cps3-doctor",
            Gen::Cps4 => "cps4-doctor",
            Gen::Cl => "cps3-contactless",
        }
    }

    /// The name in the summary line.
    pub fn name(self) -> &'static str {
        match self {
            Gen::Cps3 => "CPS3",
            Gen::Cps4 => "CPS4",
            Gen::Cl => "CPS3 contactless",
        }
    }
}

/// What one card's run found.
#[derive(Debug, Default)]
pub struct Report {
    /// Rows run.
    pub rows: usize,
    /// Distinct official IDs among them.
    pub ids: usize,
    /// Rows with the expected code (and checks).
    pub passed: usize,
    /// Mismatches of rows marked known.
    pub known: Vec<String>,
    /// Mismatches, failed setups, and known rows that passed (their mark must go).
    pub failures: Vec<String>,
}

/// Run `plan` in order; every row is reported, nothing stops the run.
pub fn run(ctx: &mut Ctx, plan: Vec<Item>) -> Report {
    let verbose = std::env::var_os("CPX_CONFORMANCE_VERBOSE").is_some();
    let mut report = Report::default();
    let mut seen: HashMap<u32, usize> = HashMap::new();
    let mut last_id = 0;
    for item in plan {
        ctx.detail = None;
        match item {
            Item::Setup(what, step) => {
                let r = step(ctx);
                if !matches!(r, Ok(CKR_OK)) {
                    let got = describe(&r);
                    report.failures.push(format!(
                        "setup after row {last_id} ({what}): {got}{}",
                        detail(ctx)
                    ));
                }
            }
            Item::Row(row) => {
                let n = seen.entry(row.id).or_insert(0);
                *n += 1;
                let name = if *n > 1 {
                    format!("row {}#{}", row.id, n)
                } else {
                    format!("row {}", row.id)
                };
                last_id = row.id;
                let r = (row.step)(ctx);
                report.rows += 1;
                let pass = matches!(r, Ok(rv) if rv == row.expect);
                let line = format!(
                    "{name} ({}): expected {}, got {}{}",
                    row.what,
                    rv_name(row.expect),
                    describe(&r),
                    detail(ctx)
                );
                if verbose {
                    let status = match (pass, row.known) {
                        (true, _) => "OK",
                        (false, Some(_)) => "KNOWN",
                        (false, None) => "KO",
                    };
                    println!(
                        "  {:>4} {status:<5} {} → {}{}",
                        row.id,
                        row.what,
                        describe(&r),
                        detail(ctx)
                    );
                }
                match (pass, row.known) {
                    (true, None) => report.passed += 1,
                    (true, Some(reason)) => {
                        report.passed += 1;
                        report.failures.push(format!(
                            "{name} ({}) is marked known ({reason}) but passed: remove the mark",
                            row.what
                        ));
                    }
                    (false, Some(reason)) => report.known.push(format!("{line} [known: {reason}]")),
                    (false, None) => report.failures.push(line),
                }
            }
        }
    }
    report.ids = seen.len();
    report
}

fn describe(r: &StepResult) -> String {
    match r {
        Ok(rv) => rv_name(*rv),
        Err(e) => format!("a failed check: {e}"),
    }
}

fn detail(ctx: &Ctx) -> String {
    ctx.detail.as_ref().map(|d| format!(" [{d}]")).unwrap_or_default()
}

/// Serialises the plans: C_Initialize/C_Finalize are process-global, so two cards' plans in the
/// same process would finalise each other's module. Each card is its own Trial (its own line in
/// the test output); libtest may start them on parallel threads, and this lock makes them take
/// turns instead.
static PLAN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Run `kind`'s plan against a fresh emulated card: the Trial body.
pub fn run_card(kind: Gen, plan: impl FnOnce(Gen) -> Vec<Item>) -> Result<(), Failed> {
    let _turn = PLAN_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let p11 = crate::raw::load(&crate::common::module_path()?)?;
    // A previous plan that stopped early may have left the module initialised.
    let _ = p11.finalize();
    // The previous plan's cards (its own and the mute card of row 1201) gone from PC/SC, not
    // merely pulled out: C_Initialize would otherwise record them, and row 121 would see their
    // removal as an event of this plan.
    crate::common::wait_alone()?;
    let (lease, card) = cpx_testkit::insert_card(cpx_testkit::emulated(kind.stem())?)?;
    let mut ctx = Ctx::new(p11, lease, card);
    let started = Instant::now();
    crate::raw::take_observed();
    let mut report = run(&mut ctx, plan(kind));
    let _ = ctx.finalize();
    // Issue 14: every code any row made the module answer is one PKCS#11 2.40 §5 lists for the
    // function (or a deviation `rv_lists` names with its reason), whatever the row expected.
    let mut outside: Vec<String> = Vec::new();
    for (function, rv) in crate::raw::take_observed() {
        if !crate::common::rv_lists::allowed(function, rv)
            && crate::common::rv_lists::known_deviation(function, rv).is_none()
        {
            let line = format!("{function} answered {} (not in its PKCS#11 §5 list)", rv_name(rv));
            if !outside.contains(&line) {
                outside.push(line);
            }
        }
    }
    report.failures.extend(outside);
    println!(
        "{}: {} rows, {} passed, {} known ({} IDs, {:.1} s)",
        kind.name(),
        report.rows,
        report.passed,
        report.known.len(),
        report.ids,
        started.elapsed().as_secs_f64()
    );
    for k in &report.known {
        println!("  KNOWN {k}");
    }
    if report.failures.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}: {} problem(s):\n  {}",
        kind.name(),
        report.failures.len(),
        report.failures.join("\n  ")
    )
    .into())
}

/// The name of a return code.
pub fn rv_name(rv: CK_RV) -> String {
    let name = match rv {
        CKR_OK => "CKR_OK",
        CKR_ARGUMENTS_BAD => "CKR_ARGUMENTS_BAD",
        CKR_ATTRIBUTE_READ_ONLY => "CKR_ATTRIBUTE_READ_ONLY",
        CKR_ATTRIBUTE_SENSITIVE => "CKR_ATTRIBUTE_SENSITIVE",
        CKR_ATTRIBUTE_TYPE_INVALID => "CKR_ATTRIBUTE_TYPE_INVALID",
        CKR_ATTRIBUTE_VALUE_INVALID => "CKR_ATTRIBUTE_VALUE_INVALID",
        CKR_BUFFER_TOO_SMALL => "CKR_BUFFER_TOO_SMALL",
        CKR_CANT_LOCK => "CKR_CANT_LOCK",
        CKR_CRYPTOKI_ALREADY_INITIALIZED => "CKR_CRYPTOKI_ALREADY_INITIALIZED",
        CKR_CRYPTOKI_NOT_INITIALIZED => "CKR_CRYPTOKI_NOT_INITIALIZED",
        CKR_DATA_INVALID => "CKR_DATA_INVALID",
        CKR_DATA_LEN_RANGE => "CKR_DATA_LEN_RANGE",
        CKR_DEVICE_ERROR => "CKR_DEVICE_ERROR",
        CKR_DEVICE_REMOVED => "CKR_DEVICE_REMOVED",
        CKR_ENCRYPTED_DATA_INVALID => "CKR_ENCRYPTED_DATA_INVALID",
        CKR_ENCRYPTED_DATA_LEN_RANGE => "CKR_ENCRYPTED_DATA_LEN_RANGE",
        CKR_FUNCTION_FAILED => "CKR_FUNCTION_FAILED",
        CKR_FUNCTION_NOT_SUPPORTED => "CKR_FUNCTION_NOT_SUPPORTED",
        CKR_FUNCTION_NOT_PARALLEL => "CKR_FUNCTION_NOT_PARALLEL",
        CKR_RANDOM_SEED_NOT_SUPPORTED => "CKR_RANDOM_SEED_NOT_SUPPORTED",
        CKR_GENERAL_ERROR => "CKR_GENERAL_ERROR",
        CKR_KEY_FUNCTION_NOT_PERMITTED => "CKR_KEY_FUNCTION_NOT_PERMITTED",
        CKR_KEY_HANDLE_INVALID => "CKR_KEY_HANDLE_INVALID",
        CKR_KEY_TYPE_INCONSISTENT => "CKR_KEY_TYPE_INCONSISTENT",
        CKR_MECHANISM_INVALID => "CKR_MECHANISM_INVALID",
        CKR_MECHANISM_PARAM_INVALID => "CKR_MECHANISM_PARAM_INVALID",
        CKR_NO_EVENT => "CKR_NO_EVENT",
        CKR_OBJECT_HANDLE_INVALID => "CKR_OBJECT_HANDLE_INVALID",
        CKR_OPERATION_ACTIVE => "CKR_OPERATION_ACTIVE",
        CKR_OPERATION_NOT_INITIALIZED => "CKR_OPERATION_NOT_INITIALIZED",
        CKR_PIN_INCORRECT => "CKR_PIN_INCORRECT",
        CKR_PIN_LEN_RANGE => "CKR_PIN_LEN_RANGE",
        CKR_PIN_LOCKED => "CKR_PIN_LOCKED",
        CKR_SESSION_HANDLE_INVALID => "CKR_SESSION_HANDLE_INVALID",
        CKR_SESSION_PARALLEL_NOT_SUPPORTED => "CKR_SESSION_PARALLEL_NOT_SUPPORTED",
        CKR_SESSION_READ_ONLY => "CKR_SESSION_READ_ONLY",
        CKR_SESSION_READ_ONLY_EXISTS => "CKR_SESSION_READ_ONLY_EXISTS",
        CKR_SESSION_READ_WRITE_SO_EXISTS => "CKR_SESSION_READ_WRITE_SO_EXISTS",
        CKR_SIGNATURE_INVALID => "CKR_SIGNATURE_INVALID",
        CKR_SIGNATURE_LEN_RANGE => "CKR_SIGNATURE_LEN_RANGE",
        CKR_SLOT_ID_INVALID => "CKR_SLOT_ID_INVALID",
        CKR_TEMPLATE_INCOMPLETE => "CKR_TEMPLATE_INCOMPLETE",
        CKR_TOKEN_NOT_PRESENT => "CKR_TOKEN_NOT_PRESENT",
        CKR_TOKEN_NOT_RECOGNIZED => "CKR_TOKEN_NOT_RECOGNIZED",
        CKR_USER_ALREADY_LOGGED_IN => "CKR_USER_ALREADY_LOGGED_IN",
        CKR_USER_ANOTHER_ALREADY_LOGGED_IN => "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
        CKR_USER_NOT_LOGGED_IN => "CKR_USER_NOT_LOGGED_IN",
        CKR_USER_PIN_NOT_INITIALIZED => "CKR_USER_PIN_NOT_INITIALIZED",
        CKR_USER_TYPE_INVALID => "CKR_USER_TYPE_INVALID",
        crate::raw::NULL_ENTRY => "a NULL function-list entry",
        _ => return format!("0x{rv:08X}"),
    };
    name.to_owned()
}

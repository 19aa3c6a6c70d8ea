//! Driving the whole `pkcs11-tool` runs: cold and warm, cpx beside OpenSC in turn (so that a
//! burst of load from other processes falls on both), and the `-I` start-up baseline.

use std::path::Path;

use cpx_testkit::Failed;

use crate::ops::CardModel;
use crate::report::{Impl, Phase};
use crate::tool_runs::{Bench, ToolRecord, ToolRun};

/// The modules to compare on `card`: cpx everywhere, OpenSC on the CPS3 (it has no CPS4 driver).
fn modules(card: CardModel, cpx: &Path) -> Vec<(Impl, &Path)> {
    let mut v = vec![(Impl::Cpx, cpx)];
    if card == CardModel::Cps3 {
        v.push((Impl::OpenSc, Path::new(crate::OPENSC_PKCS11)));
    }
    v
}

/// Every run of [`ToolRun::all`] `iterations` times per phase and module, and `-I`; the records
/// go to `out`. cpx's cache is `tmp/tool-cache-<card>` (emptied before each cold run; the warm
/// ones follow the last cold run of the same command, which filled it), OpenSC's as the per-operation
/// benchmark configures it (`use_file_caching = no` cold, `public` warm, filled the same way).
pub fn measure(
    bench: &Bench<'_>,
    cpx: &Path,
    tmp: &Path,
    iterations: usize,
    out: &mut Vec<ToolRecord>,
) -> Result<(), Failed> {
    let card = bench.card;
    let cache = tmp.join(format!("tool-cache-{}", card.name()));
    let home = tmp.join("tool-home");
    std::fs::create_dir_all(&home)?;
    let env = |imp: Impl, phase: Phase| -> Result<Vec<(String, String)>, Failed> {
        match imp {
            Impl::OpenSc => crate::opensc_env(tmp, phase),
            _ => {
                if phase == Phase::Cold {
                    let _ = std::fs::remove_dir_all(&cache);
                }
                Ok(vec![
                    ("CPX_PKCS11_CACHE".to_owned(), cache.display().to_string()),
                    ("HOME".to_owned(), home.display().to_string()),
                ])
            }
        }
    };
    let mut record = |imp: Impl, phase: Phase, run: ToolRun, result: Result<_, String>| {
        if imp == Impl::Cpx
            && let Err(e) = &result
        {
            return Err(Failed::from(format!(
                "cpx {} {} ({phase:?}): {e}",
                card.name(),
                run.title()
            )));
        }
        out.push(ToolRecord {
            card,
            imp,
            phase,
            run,
            result,
        });
        Ok(())
    };
    for _ in 0..iterations {
        for (imp, module) in modules(card, cpx) {
            let r = bench.run(imp, module, &env(imp, Phase::Warm)?, ToolRun::Info);
            record(imp, Phase::Warm, ToolRun::Info, r)?;
        }
    }
    for &run in ToolRun::all(card) {
        for phase in [Phase::Cold, Phase::Warm] {
            if phase == Phase::Warm {
                // The previous process that fills OpenSC's cache (its failure shows below);
                // cpx's was filled by the last cold run of the same command.
                for (imp, module) in modules(card, cpx) {
                    if imp == Impl::OpenSc {
                        let _ = bench.run(imp, module, &env(imp, Phase::Warm)?, run);
                    }
                }
            }
            for _ in 0..iterations {
                for (imp, module) in modules(card, cpx) {
                    let mut r = bench.run(imp, module, &env(imp, phase)?, run);
                    if let (Impl::Cpx, Phase::Warm, Ok(sample)) = (imp, phase, &mut r) {
                        // Its start-up baseline, under the same load as the run itself.
                        let info = bench.run(imp, module, &env(imp, phase)?, ToolRun::Info);
                        sample.startup = Some(info.map_err(|e| format!("`-I`: {e}"))?.wall);
                    }
                    record(imp, phase, run, r)?;
                }
            }
        }
    }
    Ok(())
}

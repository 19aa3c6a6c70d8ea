//! The `nfc-kernel-driver` check: Linux's NFC stack (`pn533_usb` → `pn533` → `nfc`) binds the
//! usual PN533-based contactless readers (e.g. ACR122U, SCL3711) before pcscd's CCID driver can,
//! and pcscd then never sees the reader.

use super::Check;
use super::host::Host;

/// The modprobe blacklist cpx ships, inactive, as
/// /usr/share/cpx/modprobe.d/cpx-blacklist-nfc.conf (udev/README.md), written out so that the fix
/// works without the package too. `modprobe -r` also unloads the NFC core when nothing else
/// uses it.
const FIX: &str = "printf 'blacklist pn533_usb\\nblacklist pn533\\n' | sudo tee \
                   /etc/modprobe.d/cpx-blacklist-nfc.conf && sudo modprobe -r pn533_usb pn533 \
                   && sudo systemctl restart pcscd (then unplug and replug the reader; not if you \
                   use neard with this reader)";

/// The loaded kernel modules of interest, from `/proc/modules` (first column).
pub(super) fn nfc_modules(proc_modules: &str) -> Vec<&str> {
    proc_modules
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|m| matches!(*m, "pn533_usb" | "pn533" | "nfc"))
        .collect()
}

pub(super) fn check(host: &Host) -> Check {
    const ID: &str = "nfc-kernel-driver";
    let modules_file = host.sys("/proc/modules");
    let modules_text = std::fs::read_to_string(&modules_file);
    let loaded: Vec<String> = modules_text
        .as_deref()
        .map(|t| nfc_modules(t).into_iter().map(str::to_owned).collect())
        .unwrap_or_default();
    // USB interfaces bound to the driver appear as `1-2:1.0` entries in its sysfs directory.
    let driver_dir = host.sys("/sys/bus/usb/drivers/pn533_usb");
    let bound: Vec<String> = std::fs::read_dir(&driver_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(':'))
                .collect()
        })
        .unwrap_or_default();
    let mut details: Vec<String> = loaded
        .iter()
        .map(|m| format!("module {m} loaded ({})", modules_file.display()))
        .collect();
    details.extend(
        bound
            .iter()
            .map(|b| format!("USB device {b} bound to pn533_usb ({})", driver_dir.display())),
    );
    let pn533 = loaded.iter().any(|m| m.starts_with("pn533"));
    if !bound.is_empty() {
        return Check::fail(
            ID,
            format!(
                "the kernel NFC driver pn533_usb holds {} USB reader{}: pcscd cannot use it",
                bound.len(),
                if bound.len() == 1 { "" } else { "s" }
            ),
            FIX,
        )
        .details(details);
    }
    if pn533 {
        return Check::fail(
            ID,
            "the kernel NFC driver pn533 is loaded: it takes PN533 contactless readers from pcscd",
            FIX,
        )
        .details(details);
    }
    if !loaded.is_empty() {
        return Check::warn(
            ID,
            "the kernel NFC stack (nfc) is loaded: an NFC driver may take a contactless reader \
             from pcscd",
            FIX,
        )
        .details(details);
    }
    match modules_text {
        Ok(_) => Check::ok(ID, "no kernel NFC driver loaded"),
        Err(e) => Check::skip(ID, format!("cannot read {}: {e}", modules_file.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_of_interest() {
        let text = "pn533_usb 20480 0 - Live 0x0000000000000000\n\
                    pn533 45056 1 pn533_usb, Live 0x0000000000000000\n\
                    nfc 135168 1 pn533, Live 0x0000000000000000\n\
                    nfc_digital 1 0 - Live 0x0\nusbhid 65536 0 - Live 0x0\n";
        assert_eq!(nfc_modules(text), ["pn533_usb", "pn533", "nfc"]);
        assert!(nfc_modules("usbhid 65536 0 - Live 0x0\n").is_empty());
    }
}

//! Keeps the debug port open on nRF52840 revision 3 (build code F and later).
//!
//! Those dies lock the access port at every reset unless UICR.APPROTECT holds HwDisabled
//! (0x5A) AND the firmware writes SwDisable to APPROTECT.DISABLE after each reset. Without
//! this, `probe-rs run` flashes the chip but then cannot read the RTT log. Older dies are
//! open by default and read 0x5A in UICR as "protected", so they are left alone. A UICR that
//! was deliberately set to protected (PALL = 0x00) is left alone too: UICR bits can only be
//! cleared, never set, without an erase.

use nrf52840_hal::pac::{FICR, NVMC, UICR};

/// The build code letter (`AAF0` -> `F`) from which the hardened scheme applies.
const FIRST_HARDENED_BUILD: u8 = b'F';
const HW_DISABLED: u32 = 0x5A;
const PALL_ERASED: u32 = 0xFF;
/// APPROTECT.DISABLE value that opens the port (the same byte as HwDisabled).
const SW_DISABLE: u32 = 0x5A;
/// APPROTECT.DISABLE; the peripheral is missing from nrf52840-pac 0.12.
const APPROTECT_DISABLE: *mut u32 = 0x4000_0558 as *mut u32;

/// Returns true when UICR was just written: the caller must reset for it to take effect.
pub fn keep_debug_open(ficr: &FICR, uicr: &UICR, nvmc: &NVMC) -> bool {
    // FICR.INFO.VARIANT packs four ASCII characters, e.g. "AAF0"; the third is the build code.
    let build = (ficr.info.variant.read().bits() >> 8) as u8;
    if build < FIRST_HARDENED_BUILD {
        return false;
    }
    let pall = uicr.approtect.read().bits() & 0xFF;
    let written = pall == PALL_ERASED;
    if written {
        nvmc.config.write(|w| w.wen().wen());
        while nvmc.ready.read().ready().is_busy() {}
        // SAFETY: only clears bits of PALL (0xFF -> 0x5A); the other bits stay erased.
        uicr.approtect
            .write(|w| unsafe { w.bits(!PALL_ERASED | HW_DISABLED) });
        while nvmc.ready.read().ready().is_busy() {}
        nvmc.config.write(|w| w.wen().ren());
        while nvmc.ready.read().ready().is_busy() {}
    }
    // SAFETY: a write-only register of this chip revision; SwDisable opens the port until
    // the next reset.
    unsafe { APPROTECT_DISABLE.write_volatile(SW_DISABLE) };
    written
}

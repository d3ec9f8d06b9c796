//! The second-stage bootloader: the boot ROM loads the first 256 bytes of flash into SRAM and
//! runs them to set the QSPI flash up for execute-in-place. The Pico's W25Q16JV is driven by
//! the W25Q080 variant (the same one the rp-pico board crate uses). memory.x places `.boot2`.

#[link_section = ".boot2"]
#[no_mangle]
#[used]
pub static BOOT2_FIRMWARE: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

//! The boards sdedge builds firmware for: target, memory, clock and how to run or flash.

use anyhow::{bail, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// qemu-system-arm with semihosting; instruction counts through -icount.
    Qemu {
        machine: &'static str,
        cpu: &'static str,
    },
    /// A real chip behind a debug probe (probe-rs).
    ProbeRs { chip: &'static str },
}

#[derive(Debug, Clone, Copy)]
pub struct Board {
    pub name: &'static str,
    /// Cargo package in `boards/`.
    pub package: &'static str,
    pub target: &'static str,
    pub flash_bytes: u64,
    pub ram_bytes: u64,
    pub runner: Runner,
    pub describe: &'static str,
}

pub const BOARDS: &[Board] = &[
    Board {
        name: "qemu-mps2-an386",
        package: "sdedge-qemu-mps2-an386",
        target: "thumbv7em-none-eabihf",
        // memory.x cuts QEMU's memory to an STM32F411's, so CI catches what would not fit.
        flash_bytes: 512 * 1024,
        ram_bytes: 128 * 1024,
        runner: Runner::Qemu {
            machine: "mps2-an386",
            cpu: "cortex-m4",
        },
        describe: "QEMU mps2-an386, Cortex-M4F (memory cut to 512 KiB flash / 128 KiB RAM)",
    },
    Board {
        name: "nucleo-f411re",
        package: "sdedge-nucleo-f411re",
        target: "thumbv7em-none-eabihf",
        flash_bytes: 512 * 1024,
        ram_bytes: 128 * 1024,
        runner: Runner::ProbeRs {
            chip: "STM32F411RETx",
        },
        describe: "ST NUCLEO-F411RE, STM32F411RE Cortex-M4F",
    },
    Board {
        name: "rp-pico",
        package: "sdedge-rp-pico",
        target: "thumbv6m-none-eabi",
        flash_bytes: 2048 * 1024 - 256,
        ram_bytes: 256 * 1024,
        runner: Runner::ProbeRs { chip: "RP2040" },
        describe: "Raspberry Pi Pico, RP2040 Cortex-M0+ (no FPU)",
    },
    Board {
        name: "nrf52840-dk",
        package: "sdedge-nrf52840-dk",
        target: "thumbv7em-none-eabihf",
        flash_bytes: 1024 * 1024,
        ram_bytes: 256 * 1024,
        runner: Runner::ProbeRs {
            chip: "nRF52840_xxAA",
        },
        describe: "Nordic nRF52840-DK, nRF52840 Cortex-M4F",
    },
];

pub fn find(name: &str) -> Result<&'static Board> {
    match BOARDS.iter().find(|b| b.name == name) {
        Some(b) => Ok(b),
        None => bail!(
            "--board {name}: unknown board (known: {})",
            BOARDS.iter().map(|b| b.name).collect::<Vec<_>>().join(", ")
        ),
    }
}

//! The device loop under QEMU (mps2-an386, Cortex-M4F): firmware built with the committed
//! model's bundle and real Fashion-MNIST test images, every result compared with the host
//! simulation, latency and memory read back from the defmt log and the ELF.

use std::time::Duration;

use sdedge::boards;
use sdedge::data::Split;
use sdedge::device;
use sdedge::firmware;
use sdedge_tests::committed_split;

const QEMU: &str = "qemu-mps2-an386";

#[test]
fn qemu_is_bit_exact_with_the_host_on_500_test_images() {
    let split = committed_split();
    let out = tempfile::tempdir().unwrap();
    let r = device::run(
        QEMU,
        &split.bundle,
        "fashion-mnist",
        Split::Test,
        500,
        out.path(),
    )
    .expect("run on QEMU");
    assert_eq!(r.inputs, 500);
    assert!(
        r.mismatches.is_empty(),
        "{} inputs differ, first: {:?}",
        r.mismatches.len(),
        r.mismatches.first()
    );
    assert_eq!(r.matching, 500);
    assert!(r.accuracy > 0.85, "accuracy {}", r.accuracy);

    let l = &r.latency;
    assert_eq!(l.unit, "instructions");
    assert_eq!(l.segments.len(), 3);
    for s in &l.segments {
        eprintln!(
            "segment {}: {} MACs, {:.2} instructions/MAC",
            s.segment, s.macs, s.per_mac
        );
        // A reference int8 kernel costs a few instructions per MAC (CMSIS-NN: 2-10, plain C:
        // ~7); far outside this range means the clock or the conversion is wrong.
        assert!(s.per_mac > 1.0 && s.per_mac < 40.0, "{s:?}");
    }
    assert!(l.exits[0].taken > 0);
    assert!(l.average < l.all_segments);
    assert!(l.speedup > 1.2, "speed-up {}", l.speedup);

    // The committed model fits the STM32F411-sized memory the QEMU board is linked with.
    let m = l.memory.as_ref().expect("memory from the ELF");
    assert!(
        m.flash_total <= 512 * 1024 && m.ram_total <= 128 * 1024,
        "{m:?}"
    );
    assert_eq!(m.elf.arena as usize, split.report.arena_bytes);
    let stack = m.stack_bytes.expect("stack high-water mark");
    assert!(stack > 64 && stack < 16 * 1024, "stack {stack}");

    // `sdedge report` on the saved raw log gives the same figures.
    let (log, elf) = device::read_log(&r.log, Some(&r.elf)).unwrap();
    let again = device::latency(&log, elf.as_deref()).unwrap();
    assert_eq!(again.average, l.average);
    assert_eq!(again.segments.len(), l.segments.len());
}

#[test]
fn a_corrupt_bundle_on_the_device_is_an_error_not_a_hang() {
    let split = committed_split();
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(&split.bundle).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let corrupt = dir.path().join("corrupt.sde");
    std::fs::write(&corrupt, &bytes).unwrap();
    let board = boards::find(QEMU).unwrap();
    // firmware::build embeds the file as is (sdedge build would refuse it on the host).
    let fw = firmware::build(board, &corrupt, &vec![0i8; 2 * 784], dir.path()).unwrap();
    let err = device::execute(board, &fw, Duration::from_secs(30))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sdedge-error") && err.contains("ChecksumMismatch"),
        "{err}"
    );
}

#[test]
fn a_model_too_big_for_the_board_is_refused_at_build_time_with_numbers() {
    let split = committed_split();
    let board = boards::find("nucleo-f411re").unwrap();
    // 700 embedded test images (549 KB) plus the bundle cannot fit 512 KiB of flash.
    let inputs = vec![0i8; 700 * 784];
    let dir = tempfile::tempdir().unwrap();
    let e = device::build(board, &split.bundle, &inputs, dir.path())
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("does not fit nucleo-f411re"), "{e}");
    assert!(
        e.contains("flash needs at least") && e.contains("the board has 524288"),
        "{e}"
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing built"
    );
}

/// Builds the QEMU firmware with `fault` compiled in and runs it.
fn run_with_fault(fault: firmware::InjectFault, timeout: Duration) -> String {
    let split = committed_split();
    let dir = tempfile::tempdir().unwrap();
    let board = boards::find(QEMU).unwrap();
    let fw = firmware::build_with_fault(
        board,
        &split.bundle,
        &vec![0i8; 784],
        dir.path(),
        Some(fault),
    )
    .unwrap();
    device::execute(board, &fw, timeout)
        .expect_err("a faulting firmware must fail the run")
        .to_string()
}

#[test]
fn a_hardfault_on_the_device_ends_the_run_with_a_failure() {
    let err = run_with_fault(firmware::InjectFault::HardFault, Duration::from_secs(30));
    assert!(
        err.contains("exited with") && err.contains("sdedge-error hardfault pc="),
        "{err}"
    );
}

#[test]
fn a_panic_on_the_device_ends_the_run_with_a_failure() {
    let err = run_with_fault(firmware::InjectFault::Panic, Duration::from_secs(30));
    assert!(
        err.contains("exited with") && err.contains("sdedge-error panic"),
        "{err}"
    );
}

#[test]
fn a_hung_device_is_stopped_by_the_timeout() {
    let err = run_with_fault(firmware::InjectFault::Hang, Duration::from_secs(3));
    assert!(err.contains("did not finish within 3 s"), "{err}");
}

#[test]
fn report_refuses_another_boards_elf_and_flags_a_cut_log() {
    let split = committed_split();
    let dir = tempfile::tempdir().unwrap();
    let r = device::run(
        QEMU,
        &split.bundle,
        "fashion-mnist",
        Split::Test,
        20,
        &dir.path().join("qemu"),
    )
    .expect("run on QEMU");
    let (log, _) = device::read_log(&r.log, Some(&r.elf)).unwrap();
    assert!(log.is_complete(), "{:?}", log.incompleteness());

    // The ELF of another board's firmware (same model) does not describe this log.
    let nucleo = boards::find("nucleo-f411re").unwrap();
    let other = device::build(
        nucleo,
        &split.bundle,
        &vec![0i8; 784],
        &dir.path().join("nucleo"),
    )
    .unwrap();
    let err = format!(
        "{:#}",
        device::read_log(&r.log, Some(&other.elf)).unwrap_err()
    );
    assert!(
        err.contains("does not belong to the log")
            && err.contains("firmware for nucleo-f411re, the log is from qemu-mps2-an386"),
        "{err}"
    );

    // A log cut short reads, but says it is incomplete.
    let text = std::fs::read_to_string(&r.log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cut = dir.path().join("cut.txt");
    std::fs::write(&cut, lines[..lines.len() / 2].join("\n")).unwrap();
    let (log, _) = device::read_log(&cut, Some(&r.elf)).unwrap();
    let why = log.incompleteness().expect("a cut log is incomplete");
    assert!(why.contains("of 20 inputs have a result"), "{why}");
    assert!(!device::latency(&log, None).unwrap().complete);

    // A text file that is no device log, and an ELF argument that is no ELF, are named.
    let readme = sdedge_tests::repo_root().join("README.md");
    let err = format!("{:#}", device::read_log(&readme, None).unwrap_err());
    assert!(err.contains("not an sdedge device log"), "{err}");
    let err = format!("{:#}", device::read_log(&r.log, Some(&readme)).unwrap_err());
    assert!(err.contains("README.md: not an ELF file"), "{err}");
}

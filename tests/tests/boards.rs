//! Every real board's firmware builds with the committed model (flashing needs the hardware,
//! see each board's README), and the ELF shows it fits the chip's flash and RAM.

use sdedge::boards::{self, Runner};
use sdedge::data::Split;
use sdedge::device;
use sdedge::firmware;
use sdedge_tests::committed_split;

#[test]
fn real_boards_build_and_the_committed_model_fits_them() {
    let split = committed_split();
    let bundle = std::fs::read(&split.bundle).unwrap();
    let (inputs, _) = device::inputs(&bundle, "fashion-mnist", Split::Test, 20).unwrap();
    let out = tempfile::tempdir().unwrap();
    for board in boards::BOARDS {
        if matches!(board.runner, Runner::Qemu { .. }) {
            continue; // built and run by the device tests
        }
        let fw = device::build(board, &split.bundle, &inputs, out.path())
            .unwrap_or_else(|e| panic!("{}: {e:#}", board.name));
        let m = firmware::memory(&std::fs::read(&fw.elf).unwrap()).unwrap();
        eprintln!(
            "{}: flash {} of {}, static RAM {} of {} (.text {}, runtime functions {})",
            board.name,
            m.flash,
            board.flash_bytes,
            m.ram_static,
            board.ram_bytes,
            m.text,
            m.runtime_text
        );
        // The bundle and the inputs are in flash; the arena is in RAM.
        assert!(m.rodata as usize >= bundle.len() + inputs.len());
        assert!(
            m.flash <= board.flash_bytes,
            "{}: flash {}",
            board.name,
            m.flash
        );
        assert!(
            m.ram_static <= board.ram_bytes,
            "{}: RAM {}",
            board.name,
            m.ram_static
        );
        assert_eq!(m.arena as usize, split.report.arena_bytes, "{}", board.name);
        // The flashable images match the ELF's load image.
        let (_, image) = firmware::flash_image(&std::fs::read(&fw.elf).unwrap()).unwrap();
        assert_eq!(std::fs::read(&fw.bin).unwrap(), image, "{}", board.name);
        let hex = std::fs::read_to_string(&fw.hex).unwrap();
        assert!(hex.ends_with(":00000001FF\n"), "{}", board.name);
    }
}

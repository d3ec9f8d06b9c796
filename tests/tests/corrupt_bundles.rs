//! A truncated or corrupted bundle is an error, never a panic or an out-of-bounds read.
//! Mutations are re-sealed with a valid checksum so that they reach the record validation and
//! the executor, not just the checksum test.

use sdedge_runtime::format::{self, CHECKSUM_START, HEADER_LEN};
use sdedge_runtime::{Error, Model, NoClock, Options};
use sdedge_tests::committed_split;

fn reseal(b: &mut [u8]) {
    let crc = format::CHECKSUM.checksum(&b[CHECKSUM_START..]);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn valid() -> Vec<u8> {
    std::fs::read(&committed_split().bundle).unwrap()
}

#[test]
fn every_truncation_is_an_error() {
    let b = valid();
    for len in 0..b.len() {
        let r = Model::parse(&b[..len]);
        assert!(r.is_err(), "prefix of {len} bytes parsed");
    }
    // And a truncation whose header is patched to claim the shorter length, re-sealed.
    for len in [HEADER_LEN, HEADER_LEN + 100, b.len() / 2, b.len() - 1] {
        let mut t = b[..len].to_vec();
        t[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        reseal(&mut t);
        assert!(
            Model::parse(&t).is_err(),
            "re-sealed prefix of {len} bytes parsed"
        );
    }
}

#[test]
fn a_flipped_byte_fails_the_checksum() {
    let b = valid();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..200 {
        let mut m = b.clone();
        let at = CHECKSUM_START + (rng.next() as usize) % (b.len() - CHECKSUM_START);
        m[at] ^= 1 << (rng.next() % 8);
        assert_eq!(
            Model::parse(&m).err(),
            Some(Error::ChecksumMismatch),
            "byte {at}"
        );
    }
}

#[test]
fn resealed_mutations_never_panic() {
    let b = valid();
    let model = Model::parse(&b).unwrap();
    let input = vec![0i8; model.input().unwrap().len()];
    let data_start = u32::from_le_bytes(b[32..36].try_into().unwrap()) as usize;
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let (mut parsed, mut ran) = (0, 0);
    for i in 0..6_000 {
        let mut m = b.clone();
        // Mostly the header and tables (where a bad value changes control flow), sometimes
        // the weights; 1 to 4 bytes at a time, random values or boundary values.
        for _ in 0..1 + rng.next() % 4 {
            let region = if i % 8 == 0 { m.len() } else { data_start };
            let at = 8 + (rng.next() as usize) % (region - 8);
            m[at] = match rng.next() % 4 {
                0 => 0,
                1 => 0xFF,
                2 => m[at].wrapping_add(1),
                _ => rng.next() as u8,
            };
        }
        reseal(&mut m);
        if let Ok(model) = Model::parse(&m) {
            parsed += 1;
            let size = model.arena_size();
            if size <= 1 << 20 {
                let mut arena = vec![0u8; size];
                let opts = Options {
                    run_all: true,
                    ..Options::default()
                };
                if model
                    .run(&input, &mut arena, &opts, &mut NoClock, |_| {})
                    .is_ok()
                {
                    ran += 1;
                }
            }
        }
    }
    eprintln!("{parsed} mutated bundles parsed, {ran} ran");
    // Some mutations (e.g. in weights or thresholds) are legitimately valid bundles.
    assert!(ran > 0);
}

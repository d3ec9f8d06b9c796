//! Waits for the host to attach to RTT before the first frame.
//!
//! probe-rs switches defmt's RTT channel to blocking mode when it attaches, shortly after it
//! starts the core; from then on no frame is lost (a full buffer makes the firmware wait, and
//! frames are only written between inputs, outside the timed segments). Frames written
//! before that go to defmt-rtt's 1 KiB buffer and are dropped once it is full. Without a host
//! the wait gives up after two seconds.

use crate::Clock;

pub fn wait_for_host(clock: &mut impl Clock, hz: u32) {
    let start = clock.now();
    let timeout = hz.saturating_mul(2);
    while !defmt_rtt::in_blocking_mode() && clock.now().wrapping_sub(start) < timeout {}
}

//! Moving between the programs of the packet path (`ebpf_common::Stage`): the one jump helper,
//! and the one way to hand something to the stage jumped to.
//!
//! A tail call fails only when the stage's slot of the JUMP array is empty (a loader fault, or
//! a reload in progress). Like Cilium's DROP_MISSED_TAIL_CALL, that is counted on its own
//! (`drop_missed_tail_call`) and the packet dropped: never passed on half handled, never
//! counted as something else.

use aya_ebpf::{bindings::xdp_action, maps::PerCpuArray, programs::XdpContext};
use ebpf_common::{Stage, counter};

use crate::maps::{JUMP, count};

/// Continues in `stage`'s program; returns (the verdict for the packet) only if the tail call
/// failed.
#[inline(always)]
pub fn jump(ctx: &XdpContext, stage: Stage) -> u32 {
    // SAFETY: `ctx` is this program's context and JUMP a program array: the helper either jumps or
    // returns (an empty slot).
    unsafe { JUMP.tail_call(ctx, stage.slot()) };
    count(counter::DROP_MISSED_TAIL_CALL);
    xdp_action::XDP_DROP
}

/// A per-CPU value one stage leaves for the next (XDP runs each packet to completion on one
/// CPU, so nothing else runs between the two): armed by [`Handoff::put`], consumed by
/// [`Handoff::take`]. A stage finds nothing when it was not reached by that hand-over.
#[repr(C)]
pub struct Slot<T> {
    armed: u32,
    _pad: u32,
    value: T,
}

/// A one-entry per-CPU array holding one [`Slot`] (declare it with `#[map]`: not pinned, it
/// never outlives a packet).
#[repr(transparent)]
pub struct Handoff<T>(PerCpuArray<Slot<T>>);

impl<T: 'static> Handoff<T> {
    pub const fn new() -> Self {
        Handoff(PerCpuArray::with_max_entries(1, 0))
    }

    #[inline(always)]
    fn slot(&self) -> Option<&'static mut Slot<T>> {
        // SAFETY: `p` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
        // program run; per-CPU, so no other CPU uses it.
        self.0.get_ptr_mut(0).map(|p| unsafe { &mut *p })
    }

    /// Arms the hand-off and returns its value to fill in place (field by field: a whole `T`
    /// built on the stack first may not fit the caller's frame).
    #[inline(always)]
    pub fn put(&self) -> Option<&'static mut T> {
        let slot = self.slot()?;
        slot.armed = 1;
        Some(&mut slot.value)
    }

    /// The value, if armed (without consuming it).
    #[inline(always)]
    pub fn peek(&self) -> Option<&'static mut T> {
        let slot = self.slot()?;
        if slot.armed == 0 {
            return None;
        }
        Some(&mut slot.value)
    }

    /// The value, if armed; disarmed.
    #[inline(always)]
    pub fn take(&self) -> Option<&'static mut T> {
        let slot = self.slot()?;
        if slot.armed == 0 {
            return None;
        }
        slot.armed = 0;
        Some(&mut slot.value)
    }

    /// Disarms it (the stage it was for was not reached).
    #[inline(always)]
    pub fn cancel(&self) {
        if let Some(slot) = self.slot() {
            slot.armed = 0;
        }
    }
}

/// A one-entry per-CPU array used as scratch space by the stage that declares it (the BPF
/// stack is 512 bytes for the whole call chain): larger temporaries live there.
#[repr(transparent)]
pub struct Scratch<T>(PerCpuArray<T>);

impl<T: 'static> Scratch<T> {
    pub const fn new() -> Self {
        Scratch(PerCpuArray::with_max_entries(1, 0))
    }

    /// This CPU's slot (always present).
    #[inline(always)]
    pub fn get(&self) -> Option<&'static mut T> {
        // SAFETY: `p` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
        // program run; per-CPU, so no other CPU uses it.
        self.0.get_ptr_mut(0).map(|p| unsafe { &mut *p })
    }
}

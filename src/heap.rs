//! The release Wasm module's heap allocator: one free list per power-of-two size class.
//!
//! The SDK's heap is small and its allocation pattern steady (token strings, records of a few
//! hundred bytes, the effect queue), so a general-purpose allocator buys nothing here but
//! bytes in the module. This one rounds every request up to a power of two (at least 8 bytes,
//! at least its alignment), hands out a freed block of that class when there is one, and
//! otherwise cuts a new block, aligned to its own size, from the top of the heap, growing the
//! Wasm memory when the top reaches its end. Freed blocks go back on their class's list; they
//! are never split or merged, so the heap holds at most, per class, the most blocks of that
//! class ever live at once (plus alignment padding). Single-threaded (no `atomics`), so no lock.
//!
//! The logic is [`Heap`], generic over where new pages come from, and tested natively
//! (`tests` below) on a plain buffer; [`WasmHeap`] is the global allocator over `memory.grow`.
use core::alloc::Layout;

/// Size classes: 2^3 (8 bytes) … 2^30 (a larger request fails: the Wasm memory could not hold it).
const CLASSES: usize = 28;
/// A Wasm page.
pub const PAGE: usize = 65_536;

/// The heap state: the head of each class's free list, and the bump region `top..end`.
#[derive(Default)]
pub struct Heap {
    free: [usize; CLASSES],
    top: usize,
    end: usize,
}

impl Heap {
    /// An empty heap; its first allocation asks `grow` for pages.
    pub const fn new() -> Heap {
        Heap {
            free: [0; CLASSES],
            top: 0,
            end: 0,
        }
    }

    /// The class of `layout`, or `None` when it exceeds the largest class.
    fn class(layout: Layout) -> Option<usize> {
        let size = layout.size().max(layout.align()).max(8);
        let class = (usize::BITS - (size - 1).leading_zeros()) as usize - 3;
        (class < CLASSES).then_some(class)
    }

    /// A block for `layout` (null when memory cannot grow). `grow(pages)` adds that many pages
    /// of memory and returns the address where they start, or `None`.
    ///
    /// # Safety
    /// Every address `grow` returns must be the start of `pages * PAGE` bytes owned by this
    /// heap alone, and every block freed must have come from this heap with the same layout.
    pub unsafe fn alloc(
        &mut self,
        layout: Layout,
        grow: impl FnOnce(usize) -> Option<usize>,
    ) -> *mut u8 {
        let Some(class) = Self::class(layout) else {
            return core::ptr::null_mut();
        };
        let head = self.free[class];
        if head != 0 {
            // SAFETY: a freed block of this class holds the next block's address in its first word.
            self.free[class] = unsafe { *(head as *const usize) };
            return head as *mut u8;
        }
        let size = 8usize << class;
        let fits = |top: usize, end: usize| {
            let at = top.checked_add(size - 1)? & !(size - 1);
            (at.checked_add(size)? <= end).then_some(at)
        };
        let at = match fits(self.top, self.end) {
            Some(at) => at,
            None => {
                // Enough for the block and its alignment padding, in a region that continues
                // the current one or starts a new one.
                let pages = (2 * size).div_ceil(PAGE);
                let Some(start) = grow(pages) else {
                    return core::ptr::null_mut();
                };
                if start != self.end {
                    self.top = start;
                }
                self.end = start + pages * PAGE;
                match fits(self.top, self.end) {
                    Some(at) => at,
                    None => return core::ptr::null_mut(),
                }
            }
        };
        self.top = at + size;
        at as *mut u8
    }

    /// Returns `ptr`'s block to its class's free list.
    ///
    /// # Safety
    /// `ptr` came from [`Heap::alloc`] of this heap with this `layout` and is not used again.
    pub unsafe fn dealloc(&mut self, ptr: *mut u8, layout: Layout) {
        if let Some(class) = Self::class(layout) {
            // SAFETY: the block is ours again and at least 8 bytes, aligned to its size.
            unsafe { *(ptr as *mut usize) = self.free[class] };
            self.free[class] = ptr as usize;
        }
    }
}

/// The global allocator of the release Wasm module: a [`Heap`] over `memory.grow`.
#[cfg(target_arch = "wasm32")]
#[derive(Default)]
pub struct WasmHeap(core::cell::UnsafeCell<Heap>);

#[cfg(target_arch = "wasm32")]
impl WasmHeap {
    /// An empty heap.
    pub const fn new() -> WasmHeap {
        WasmHeap(core::cell::UnsafeCell::new(Heap::new()))
    }
}

// SAFETY: the module is single-threaded (built without `atomics`), so the heap is never
// touched from two threads.
#[cfg(target_arch = "wasm32")]
unsafe impl Sync for WasmHeap {}

#[cfg(target_arch = "wasm32")]
// SAFETY: blocks come from pages only this heap grows, are aligned to their size (at least the
// layout's alignment) and are handed out once until freed.
unsafe impl core::alloc::GlobalAlloc for WasmHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded; `memory.grow` hands out fresh pages no one else uses.
        unsafe {
            (*self.0.get()).alloc(layout, |pages| {
                let old = core::arch::wasm32::memory_grow(0, pages);
                (old != usize::MAX).then(|| old * PAGE)
            })
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: single-threaded; the caller passes a block of ours with its layout.
        unsafe { (*self.0.get()).dealloc(ptr, layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A heap over `pages` pages of a plain buffer, handed out as `grow` asks.
    struct Arena {
        buf: Vec<u64>,
        used: usize,
        grows: usize,
    }

    impl Arena {
        fn new(pages: usize) -> Arena {
            Arena {
                buf: std::vec![0; pages * PAGE / 8],
                used: 0,
                grows: 0,
            }
        }
        fn alloc(&mut self, heap: &mut Heap, layout: Layout) -> *mut u8 {
            let base = self.buf.as_mut_ptr() as usize;
            let cap = self.buf.len() * 8;
            let (used, grows) = (&mut self.used, &mut self.grows);
            // SAFETY: the arena's pages are handed out once each, to this heap only.
            unsafe {
                heap.alloc(layout, |pages| {
                    (*used + pages * PAGE <= cap).then(|| {
                        *grows += 1;
                        let start = base + *used;
                        *used += pages * PAGE;
                        start
                    })
                })
            }
        }
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn blocks_are_aligned_disjoint_and_keep_their_contents() {
        let mut arena = Arena::new(64);
        let mut heap = Heap::new();
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..20_000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if live.len() > 40 || (seed & 3 == 0 && !live.is_empty()) {
                let (ptr, l, fill) = live.swap_remove((seed >> 8) as usize % live.len());
                // SAFETY: `ptr` is a live block of `l.size()` bytes.
                let bytes = unsafe { core::slice::from_raw_parts(ptr, l.size()) };
                assert!(bytes.iter().all(|b| *b == fill), "block changed while live");
                // SAFETY: freed once, with its layout.
                unsafe { heap.dealloc(ptr, l) };
            } else {
                let size = 1 + (seed >> 16) as usize % 3_000;
                let l = layout(size, 1 << ((seed >> 40) % 5));
                let ptr = arena.alloc(&mut heap, l);
                assert!(!ptr.is_null());
                assert_eq!(ptr as usize % l.align(), 0);
                let fill = step as u8;
                // SAFETY: a fresh block of at least `size` bytes.
                unsafe { core::ptr::write_bytes(ptr, fill, size) };
                live.push((ptr, l, fill));
            }
        }
    }

    #[test]
    fn a_freed_block_is_reused_and_a_steady_pattern_stops_growing() {
        let mut arena = Arena::new(16);
        let mut heap = Heap::new();
        let a = arena.alloc(&mut heap, layout(100, 8));
        // SAFETY: freed once, with its layout.
        unsafe { heap.dealloc(a, layout(100, 8)) };
        assert_eq!(
            arena.alloc(&mut heap, layout(120, 4)),
            a,
            "same class: same block"
        );
        let used = arena.used;
        for _ in 0..10_000 {
            let b = arena.alloc(&mut heap, layout(700, 8));
            let c = arena.alloc(&mut heap, layout(30, 1));
            // SAFETY: freed once each, with their layouts.
            unsafe {
                heap.dealloc(c, layout(30, 1));
                heap.dealloc(b, layout(700, 8));
            }
        }
        assert_eq!(arena.used, used, "a steady pattern takes no new pages");
    }

    #[test]
    fn large_and_overaligned_blocks_and_exhaustion() {
        let mut arena = Arena::new(8);
        let mut heap = Heap::new();
        let big = arena.alloc(&mut heap, layout(PAGE + 1, 8));
        assert!(!big.is_null());
        assert_eq!(big as usize % (2 * PAGE), 0, "aligned to its class");
        let odd = arena.alloc(&mut heap, layout(16, 4096));
        assert_eq!(odd as usize % 4096, 0);
        // More than the arena holds: null, not a panic, and the heap still works.
        assert!(arena.alloc(&mut heap, layout(8 * PAGE, 8)).is_null());
        assert!(!arena.alloc(&mut heap, layout(64, 8)).is_null());
        assert!(Heap::class(layout(1 << 31, 8)).is_none());
    }
}

//! The claim of `Args` and `Value`: a call's arguments and result of up to three words each,
//! and up to two arguments, allocate nothing; a larger value or a third argument does.
//!
//! This test binary counts allocations with a global allocator of its own (it loads no
//! plugin, so the rule that host and plugins share the system allocator is not in play), per
//! thread, so the test runner's own allocations on other threads do not count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use hotswap_runtime::{Args, Value, args};

struct Counting;

thread_local! {
    // A const initialiser and no destructor: using it never allocates.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to `System`, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded from the caller.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// What a plugin's `invoke_func` does with `add`'s arguments and result.
fn add(mut args: Args) -> Value {
    Value::new(args.take::<i64>(0).unwrap() + args.take::<i64>(1).unwrap())
}

#[test]
fn a_call_with_two_small_arguments_and_a_small_result_allocates_nothing() {
    let n = allocations(|| {
        let sum = add(args![std::hint::black_box(40_i64), 2_i64]).downcast::<i64>().unwrap();
        assert_eq!(sum, 42);
    });
    assert_eq!(n, 0);
    let text = String::from("moved, not copied");
    let n = allocations(move || {
        let mut args = args![text, 7_u8];
        let back = Value::new(args.take::<String>(0).unwrap()).downcast::<String>().unwrap();
        assert_eq!(back, "moved, not copied");
    });
    assert_eq!(n, 0, "a String is three words: held inline");
}

#[test]
fn a_third_argument_or_a_larger_value_allocates() {
    assert_eq!(allocations(|| drop(args![1_i64, 2_i64, 3_i64])), 1, "the vector for the third");
    assert_eq!(allocations(|| drop(Value::new([0_u64; 4]))), 1, "four words: boxed");
}

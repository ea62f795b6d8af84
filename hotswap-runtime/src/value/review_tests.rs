//! Unit tests of `Args`' drops under panics, and of zero-sized and over-aligned values.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// Counts its drops; `PANIC` makes the drop panic after counting.
struct Dropped<const PANIC: bool>(Arc<AtomicUsize>);

impl<const PANIC: bool> Drop for Dropped<PANIC> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        if PANIC {
            panic!("refused");
        }
    }
}

/// Drops `args` inside `catch_unwind`; returns whether it panicked.
fn drop_caught(args: Args) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(args))).is_err()
}

#[test]
fn a_panicking_argument_does_not_leak_the_others() {
    let drops = Arc::new(AtomicUsize::new(0));
    let ok = || Dropped::<false>(Arc::clone(&drops));
    let bad = || Dropped::<true>(Arc::clone(&drops));
    // The first inline argument panics: the second is still dropped.
    assert!(drop_caught(crate::args![bad(), ok()]));
    assert_eq!(drops.swap(0, Ordering::SeqCst), 2, "inline: every argument dropped once");
    // A spilled argument panics: the inline ones and the other spilled ones are dropped.
    assert!(drop_caught(crate::args![ok(), ok(), bad(), ok()]));
    assert_eq!(drops.swap(0, Ordering::SeqCst), 4, "spilled: every argument dropped once");
    // Two panicking arguments: the second panic, during unwinding, is logged, not an abort.
    assert!(drop_caught(crate::args![bad(), ok(), bad(), ok()]));
    assert_eq!(drops.swap(0, Ordering::SeqCst), 4, "two panics: every argument dropped once");
    // Taken arguments are not dropped again.
    let mut args = crate::args![ok(), bad(), ok()];
    drop(args.take::<Dropped<true>>(1).map(std::mem::forget));
    assert!(args.take::<u8>(0).is_err(), "a wrong take leaves the argument");
    assert!(!drop_caught(args));
    assert_eq!(drops.swap(0, Ordering::SeqCst), 2);
}

#[test]
fn zero_sized_and_over_aligned_values() {
    let drops = Arc::new(AtomicUsize::new(0));
    struct Zst;
    #[repr(align(16))]
    struct Wide(u8);
    #[repr(align(8))]
    struct Full([u8; 24]);
    let zst = Value::new(Zst);
    assert!(!zst.info.boxed);
    assert!(zst.downcast::<Zst>().is_ok());
    let wide = Value::new(Wide(9));
    assert!(wide.info.boxed, "align 16 does not fit the word-aligned slot");
    assert_eq!(wide.downcast_ref::<Wide>().unwrap().0, 9);
    assert_eq!(wide.downcast_ref::<Wide>().unwrap() as *const Wide as usize % 16, 0);
    assert_eq!(wide.downcast::<Wide>().unwrap().0, 9);
    let full = Value::new(Full([3; 24]));
    assert!(!full.info.boxed);
    assert_eq!(full.downcast::<Full>().unwrap().0, [3; 24]);
    let big = Value::new(u128::MAX);
    assert_eq!(*big.downcast_ref::<u128>().unwrap(), u128::MAX);
    assert_eq!(big.downcast::<u128>().unwrap(), u128::MAX);
    // A value made on one thread, dropped on another.
    let value = Value::new(Dropped::<false>(Arc::clone(&drops)));
    std::thread::spawn(move || drop(value)).join().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    // A value of a value of args, a wrong downcast then drop.
    let nested = Value::new(Value::new(crate::args![Dropped::<false>(Arc::clone(&drops))]));
    assert!(nested.downcast::<Args>().is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

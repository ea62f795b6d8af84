//! Unit tests of `Value` and `Args`: inline and boxed storage, drops, ties, and `LiveData` read across copies.

use super::*;

/// What a plugin's copy of this crate builds for its own `LiveData`: the same declaration,
/// hence the same layout, under another `TypeId`.
#[repr(C)]
struct PluginLiveData {
    type_name: String,
    plugin: String,
    written_by: String,
    bytes: Vec<u8>,
}

/// A type that shares `LiveData`'s name but not its layout.
struct Impostor {
    bytes: Vec<u8>,
}

/// A value of `T` that poses as a `LiveData` named `name` and tagged `shared`.
fn posing<T: Any + Send>(inner: T, type_name: fn() -> &'static str, shared: u64) -> Value {
    let info = Box::leak(Box::new(TypeInfo { type_name, shared, ..TypeInfo::of::<T>(0) }));
    // SAFETY: `info` is `T`'s but for the name and tag.
    unsafe { Value::with_info(inner, info) }
}

fn made_elsewhere<T: Any + Send>(inner: T, shared: u64) -> Value {
    posing(inner, std::any::type_name::<LiveData>, shared)
}

fn plugin_data() -> PluginLiveData {
    PluginLiveData { type_name: "LiveJob".into(), plugin: "jobs".into(), written_by: "1".into(), bytes: b"{}".to_vec() }
}

#[test]
fn live_data_of_a_copy_with_the_same_fingerprint_is_read_by_name() {
    let value = made_elsewhere(plugin_data(), SHARED_TAG);
    assert_eq!(value.downcast_ref::<LiveData>().unwrap().plugin, "jobs");
    let data = value.downcast::<LiveData>().unwrap();
    assert_eq!((data.type_name.as_str(), data.bytes.as_slice()), ("LiveJob", b"{}".as_slice()));
}

#[test]
fn the_same_name_from_another_fingerprint_or_no_tag_is_a_mismatch_not_a_reinterpretation() {
    for shared in [0, SHARED_TAG ^ 1] {
        let value = made_elsewhere(Impostor { bytes: vec![1] }, shared);
        let error = value.downcast_ref::<LiveData>().unwrap_err();
        assert_eq!(error.found, "hotswap_runtime::live::data::LiveData");
        let back = value.downcast::<LiveData>().unwrap_err();
        assert_eq!(back.expected, back.found, "same name, refused all the same");
    }
    assert_eq!(made_elsewhere(Impostor { bytes: vec![2] }, 0).downcast::<Impostor>().unwrap().bytes, [2]);
}

#[test]
fn only_live_data_is_matched_by_name() {
    // A runtime type other than LiveData, named right and tagged right: still refused.
    let value = posing(plugin_data(), std::any::type_name::<TypeMismatch>, SHARED_TAG);
    assert!(value.downcast_ref::<TypeMismatch>().is_err());
    let data =
        LiveData { type_name: String::new(), plugin: String::new(), written_by: String::new(), bytes: Vec::new() };
    assert_eq!(Value::new(data).info.shared, SHARED_TAG);
    assert_eq!(Value::new(String::new()).info.shared, 0);
}

#[test]
fn a_value_taken_out_of_a_value_keeps_the_outer_ones_library() {
    let library: Arc<dyn Any + Send + Sync> = Arc::new("the library");
    let outer = Value::new(Value::new(5_u8)).keep_alive(Arc::clone(&library));
    let inner = outer.downcast::<Value>().unwrap();
    assert!(inner.keep_alive.as_ref().is_some_and(|l| Arc::ptr_eq(l, &library)));
    let args = Value::new(crate::args![1_u8, 2_u8]).keep_alive(Arc::clone(&library));
    let args = args.downcast::<Args>().unwrap();
    assert!(args.inline.iter().flatten().all(|v| v.keep_alive.is_some()));
    assert_eq!(Arc::strong_count(&library), 4);
}

use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts its drops in the counter it points to; `PAD` words make it inline or boxed.
struct Counted<const PAD: usize>(Arc<AtomicUsize>, [usize; PAD]);

impl<const PAD: usize> Drop for Counted<PAD> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counted_drops<const PAD: usize>() -> (bool, usize, usize) {
    let drops = Arc::new(AtomicUsize::new(0));
    let value = Value::new(Counted::<PAD>(Arc::clone(&drops), [7; PAD]));
    let boxed = value.info.boxed;
    drop(value);
    let dropped = drops.load(Ordering::SeqCst);
    let taken = Value::new(Counted::<PAD>(Arc::clone(&drops), [7; PAD])).downcast::<Counted<PAD>>().unwrap();
    assert_eq!(taken.1, [7; PAD]);
    let after_take = drops.load(Ordering::SeqCst) - dropped;
    drop(taken);
    (boxed, dropped, after_take)
}

#[test]
fn small_values_are_inline_large_ones_boxed_and_each_is_dropped_once() {
    // One word of Arc plus PAD words.
    assert_eq!(counted_drops::<2>(), (false, 1, 0), "3 words: inline, dropped once, moved out without a drop");
    assert_eq!(counted_drops::<3>(), (true, 1, 0), "4 words: boxed, dropped once, moved out without a drop");
    for (value, boxed) in [
        (Value::new(5_i64), false),
        (Value::new(String::from("five")), false),
        (Value::new(()), false),
        (Value::new(5_u128), align_of::<u128>() > align_of::<usize>()),
        (Value::new([5_u64; 4]), true),
    ] {
        assert_eq!(value.info.boxed, boxed, "{}", value.type_name());
    }
    assert!(Value::new(5_i64).info.drop_in_maker.is_none(), "nothing to run for an inline value without drop glue");
    assert_eq!(Value::new(String::from("five")).downcast::<String>().unwrap(), "five");
    assert_eq!(Value::new([5_u64; 4]).downcast::<[u64; 4]>().unwrap(), [5; 4]);
    assert_eq!(*Value::new(5_u128).downcast_ref::<u128>().unwrap(), 5);
}

/// Panics when dropped; `PAD` words make it inline or boxed.
struct PanicsOnDrop<const PAD: usize>([usize; PAD]);

impl<const PAD: usize> Drop for PanicsOnDrop<PAD> {
    fn drop(&mut self) {
        panic!("drop refused");
    }
}

#[test]
fn a_panicking_drop_is_raised_as_the_droppers_panic_naming_the_type() {
    for (payload, boxed) in [
        (std::panic::catch_unwind(|| drop(Value::new(PanicsOnDrop([0; 1])))), false),
        (std::panic::catch_unwind(|| drop(Value::new(PanicsOnDrop([0; 8])))), true),
    ] {
        let message = crate::private::take_panic_message(payload.unwrap_err());
        assert!(
            message.contains("PanicsOnDrop") && message.ends_with("panicked when dropped: drop refused"),
            "boxed {boxed}: {message}"
        );
    }
}

#[test]
fn more_arguments_than_the_inline_ones_keep_their_order() {
    let mut args = Args::new();
    for i in 0..7_i64 {
        args.push(i);
    }
    args.push(String::from("last"));
    assert_eq!(args.len(), 8);
    assert_eq!(args.take::<String>(7).unwrap(), "last");
    assert_eq!(args.take::<i64>(5).unwrap(), 5);
    assert!(matches!(args.take::<i64>(5), Err(ArgError::Missing { index: 5, len: 8 })));
    assert!(matches!(args.get::<i64>(8), Err(ArgError::Missing { index: 8, len: 8 })));
    assert!(matches!(args.take::<String>(4), Err(ArgError::WrongType { index: 4, .. })));
    assert_eq!((0..5).map(|i| *args.get::<i64>(i).unwrap()).sum::<i64>(), 10, "a refused take leaves the argument");
    assert_eq!(
        format!("{args:?}"),
        "[Some(Value<i64>), Some(Value<i64>), Some(Value<i64>), Some(Value<i64>), Some(Value<i64>), None, Some(Value<i64>), None]"
    );
    let library: Arc<dyn Any + Send + Sync> = Arc::new("the library");
    let args = Value::new(args).keep_alive(Arc::clone(&library)).downcast::<Args>().unwrap();
    assert_eq!(Arc::strong_count(&library), 7, "each argument left is tied, spilled ones included");
    drop(args);
    assert_eq!(Arc::strong_count(&library), 1);
}

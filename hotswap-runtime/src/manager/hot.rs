//! [`HotFn`]: a typed handle on a live function that follows reloads.
//!
//! A [`LiveFn`] stays on the generation it was fetched from. A `HotFn` is fetched once from
//! the manager and each call runs the function of the generation serving at that moment.
//! The cost on the call path is one `ArcSwap` load of the handle's cache and one atomic read
//! of the published generation number: nothing is written to memory shared between threads,
//! so calls scale across cores. After a reload, the first call on the handle looks the
//! function up in the new generation (a hash lookup, once per reload per handle).
//!
//! A call in flight keeps the library it started in mapped until it returns (the cache entry
//! it runs holds a [`LiveFn`]), so it finishes on the code it started on. Between calls the
//! handle keeps the library of the last generation it ran mapped, until its next call after a
//! reload or its drop.
//!
//! While a `HotFn` exists, a reload whose generation lacks the function, or has it with
//! another signature, is refused at stage `vault set-up`: a handle the host holds never finds
//! its function missing. (A handle fetched while a reload that lacks the function is being
//! built can still find it missing; `call` then panics, naming the function.)

use std::any::Any;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

use arc_swap::ArcSwapOption;

use super::Inner;
use crate::live::handle::sealed::{Sealed, Token};
use crate::live::{LiveError, LiveFn, LiveHandle};
use crate::vault::Vault;

/// A check a reload must pass for a `HotFn` of some signature to keep working.
pub(crate) struct Contract {
    pub name: String,
    pub check: fn(&Vault, &str) -> Result<(), LiveError>,
}

/// The contracts of every `HotFn` alive (dropped handles leave dead weak references, which
/// are pruned as they are found).
pub(crate) type Contracts = Mutex<Vec<Weak<Contract>>>;

/// The contracts a reload must check now.
pub(crate) fn live_contracts(contracts: &Contracts) -> Vec<Arc<Contract>> {
    let mut list = contracts.lock().unwrap_or_else(|e| e.into_inner());
    list.retain(|c| c.strong_count() > 0);
    list.iter().filter_map(Weak::upgrade).collect()
}

struct Resolved<F> {
    generation: u64,
    func: LiveFn<F>,
}

struct Shared<F> {
    inner: Arc<Inner>,
    contract: Arc<Contract>,
    cache: ArcSwapOption<Resolved<F>>,
}

/// A typed handle on live function `name` that follows reloads: each call runs the function
/// of the generation serving when the call starts. Fetched with
/// [`PluginManager::hot_fn`](crate::PluginManager::hot_fn); cheap to clone (clones share one
/// cache). Called like a [`LiveFn`], through the handle: `add.call((2, 3))`.
///
/// No safe method hands out the function pointer or anything else in the plugin's memory.
///
/// ```no_run
/// # fn f(manager: &hotswap_runtime::PluginManager) -> Result<(), hotswap_runtime::LiveError> {
/// let add = manager.hot_fn::<fn(i64, i64) -> i64>("live_add")?;
/// assert_eq!(add.call((2, 3)), 5);
/// manager.reload().ok(); // the next call runs the new generation's `live_add`
/// println!("{}", add.call((2, 3)));
/// # Ok(()) }
/// ```
pub struct HotFn<F: Copy + 'static> {
    shared: Arc<Shared<F>>,
}

impl<F: Copy + Any> HotFn<F> {
    pub(crate) fn new(inner: Arc<Inner>, name: &str) -> Result<Self, LiveError> {
        let contract =
            Arc::new(Contract { name: name.to_string(), check: |vault, name| vault.live_func::<F>(name).map(|_| ()) });
        let shared = Shared { inner, contract, cache: ArcSwapOption::empty() };
        // Resolve now, so a wrong name or signature is an error here, not a panic later.
        let guard = shared.inner.current.load();
        let Some(generation) = guard.as_ref() else {
            return Err(LiveError::UnknownFunction { name: name.to_string(), known: Vec::new() });
        };
        let func = generation.vault().live_func::<F>(name)?;
        shared.cache.store(Some(Arc::new(Resolved { generation: generation.number(), func })));
        drop(guard);
        let contracts = &shared.inner.hot_contracts;
        contracts.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::downgrade(&shared.contract));
        Ok(HotFn { shared: Arc::new(shared) })
    }

    /// Calls the function of the generation serving now with a tuple of arguments:
    /// `add.call((2, 3))`. A panic in the plugin is raised again as the host's own panic.
    #[inline]
    pub fn call<Args>(&self, args: Args) -> <Self as crate::LiveCall<Args>>::Output
    where
        Self: crate::LiveCall<Args>,
    {
        crate::LiveCall::call(self, args)
    }

    /// The live function's name.
    pub fn name(&self) -> &str {
        &self.shared.contract.name
    }

    #[cold]
    #[inline(never)]
    fn resolve(&self) -> Arc<Resolved<F>> {
        let shared = &self.shared;
        let generation = shared
            .inner
            .current
            .load_full()
            .unwrap_or_else(|| panic!("live function `{}`: no generation is loaded", shared.contract.name));
        let func = generation
            .vault()
            .live_func::<F>(&shared.contract.name)
            .unwrap_or_else(|e| panic!("HotFn `{}`: {e}", shared.contract.name));
        let resolved = Arc::new(Resolved { generation: generation.number(), func });
        shared.cache.store(Some(Arc::clone(&resolved)));
        resolved
    }
}

impl<F: Copy + 'static> Clone for HotFn<F> {
    fn clone(&self) -> Self {
        HotFn { shared: Arc::clone(&self.shared) }
    }
}

impl<F: Copy + 'static> std::fmt::Debug for HotFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HotFn<{}>({})", std::any::type_name::<F>(), self.shared.contract.name)
    }
}

impl<F: Copy + 'static> Sealed for HotFn<F> {}

impl<F: Copy + Any> LiveHandle for HotFn<F> {
    type Fn = F;

    #[inline]
    fn with_fn<R>(&self, _: Token, body: impl FnOnce(&LiveFn<F>) -> R) -> R {
        let shared = &*self.shared;
        let cached = shared.cache.load();
        if let Some(resolved) = cached.as_ref()
            && resolved.generation == shared.inner.published.load(Ordering::Acquire)
        {
            // `cached` holds the entry, whose `LiveFn` keeps the library mapped, until
            // the call returns.
            return body(&resolved.func);
        }
        drop(cached);
        let resolved = self.resolve();
        body(&resolved.func)
    }
}

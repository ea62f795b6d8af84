//! Migrating live data between versions, both ways, in the spirit of Erlang's `code_change`:
//! a live type that changed its shape in a way serde's defaults cannot bridge (a field renamed,
//! a unit changed) implements [`LiveMigrate`], and the runtime calls it whenever a value
//! written by one build is read or written by another.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

use super::{LiveError, LiveType};

/// How a live type's values move between versions, up and down. Implemented by the plugin
/// next to the type; `hotswap-build`'s generated code finds it (no registration).
///
/// - **Up** ([`LiveMigrate::migrate`]): when this build reads a value another build wrote
///   (its envelope's `written_by` differs from this build's version stamp), the value, as the
///   JSON object the envelope holds, goes through `migrate` first, then through serde.
/// - **Down** ([`LiveMigrate::migrate_down`]): each time this build writes a value
///   ([`LiveData::new`](crate::LiveData::new), [`LiveData::update`](crate::LiveData::update)),
///   the fields an older build reads are computed from this version's fields and written beside
///   them in the envelope. After a rollback the older build, which cannot know this version's
///   shape, reads those fields and keeps this version's own as unknown fields; when this
///   version reads the envelope again, its `migrate` up from the older build sees both.
///
/// Without an implementation, nothing is migrated: unknown fields are kept, and a value serde
/// cannot read is refused with [`LiveError::Decode`] naming the type, the field and both
/// versions.
///
/// Version stamps are `<crate version>+<hashes>` for builds made by `cargo xtask build`; compare
/// the part before `+` ([`crate_version`]).
///
/// ```
/// use hotswap_runtime::live::{LiveMigrate, crate_version};
/// use hotswap_runtime::{LiveData, LiveType};
/// use serde_json::{Map, Value, json};
///
/// // Version 2 of `LiveAccount`: `name` became `holder`, `balance` (units) `balance_cents`.
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct LiveAccount { holder: String, balance_cents: u64 }
/// # impl LiveType for LiveAccount {
/// #     const NAME: &'static str = "LiveAccount"; const PLUGIN: &'static str = "bank"; const VERSION: &'static str = "2.0.0";
/// #     fn migrations() -> Option<hotswap_runtime::live::Migrations> { hotswap_runtime::live::Migrations::of::<Self>() }
/// # }
///
/// impl LiveMigrate for LiveAccount {
///     fn migrate(from_version: &str, mut value: Value) -> Result<Value, String> {
///         if crate_version(from_version).starts_with("1.") {
///             let units = value["balance"].as_u64().ok_or("no `balance`")?;
///             value["holder"] = value["name"].take();
///             value["balance_cents"] = json!(units * 100);
///         }
///         Ok(value)
///     }
///     fn migrate_down(value: &Value) -> Result<Map<String, Value>, String> {
///         let cents = value["balance_cents"].as_u64().ok_or("no `balance_cents`")?;
///         Ok(Map::from_iter([("name".into(), value["holder"].clone()), ("balance".into(), json!(cents / 100))]))
///     }
/// }
///
/// let data = LiveData { type_name: "LiveAccount".into(), plugin: "bank".into(), written_by: "1.0.0".into(),
///     bytes: br#"{"name":"ann","balance":12}"#.to_vec() };
/// let account: LiveAccount = data.decode()?;
/// assert_eq!((account.holder.as_str(), account.balance_cents), ("ann", 1200));
/// let written = LiveData::new(&account)?;
/// let fields: Value = serde_json::from_slice(&written.bytes).unwrap();
/// assert_eq!((fields["name"].as_str(), fields["balance"].as_u64()), (Some("ann"), Some(12)));
/// # Ok::<(), hotswap_runtime::LiveError>(())
/// ```
pub trait LiveMigrate: LiveType {
    /// Returns `value`, written by the build stamped `from_version`, in this version's shape.
    /// An error refuses the read ([`LiveError::Migrate`]); the envelope is left untouched.
    fn migrate(from_version: &str, value: Json) -> Result<Json, String>;

    /// The fields older builds read, computed from this version's `value`; written beside this
    /// version's fields (a name this version uses itself is never overwritten). Default: none.
    fn migrate_down(value: &Json) -> Result<Map<String, Json>, String> {
        let _ = value;
        Ok(Map::new())
    }
}

/// A live type's migrations, as the generated [`LiveType::migrations`] returns them.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    up: fn(&str, Json) -> Result<Json, String>,
    down: fn(&Json) -> Result<Map<String, Json>, String>,
}

impl Migrations {
    /// The migrations of `T`.
    pub fn of<T: LiveMigrate>() -> Option<Self> {
        Some(Migrations { up: T::migrate, down: T::migrate_down })
    }
}

/// The crate version of a version stamp: `1.2.0` for `1.2.0+g1a2b3c4.h5d6e7f`.
pub fn crate_version(stamp: &str) -> &str {
    stamp.split_once('+').map_or(stamp, |(version, _)| version)
}

/// Reads `bytes`, written by `written_by`, as this build's `T`: migrated up first when another
/// build wrote them, then deserialised; a failure names the field.
pub(crate) fn read<T: LiveType + DeserializeOwned>(bytes: &[u8], written_by: &str) -> Result<T, LiveError> {
    let decode = |field: Option<String>, message: String| LiveError::Decode {
        type_name: T::NAME.to_string(),
        written_by: written_by.to_string(),
        reader: T::VERSION.to_string(),
        field,
        message,
    };
    let mut value: Json = serde_json::from_slice(bytes).map_err(|e| decode(None, e.to_string()))?;
    if written_by != T::VERSION
        && let Some(migrations) = T::migrations()
    {
        value = (migrations.up)(written_by, value).map_err(|message| LiveError::Migrate {
            type_name: T::NAME.to_string(),
            written_by: written_by.to_string(),
            reader: T::VERSION.to_string(),
            message,
        })?;
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        // serde names a missing field in its message; for any other error the path does.
        let field = match message.strip_prefix("missing field `").and_then(|m| m.split_once('`')) {
            Some((name, _)) if path == "." => Some(name.to_string()),
            _ if path != "." => Some(path),
            _ => None,
        };
        decode(field, message)
    })
}

/// Adds the fields older builds read to `fields`, this version's encoding of a `T`, without
/// overwriting any of this version's own (`known`).
pub(crate) fn write_down<T: LiveType>(fields: &mut Map<String, Json>, known: Option<&[&str]>) -> Result<(), LiveError> {
    let Some(migrations) = T::migrations() else { return Ok(()) };
    let own = Json::Object(fields.clone());
    let down = (migrations.down)(&own).map_err(|message| LiveError::Encode {
        type_name: T::NAME.to_string(),
        message: format!("migrate_down: {message}"),
    })?;
    for (name, value) in down {
        let mine = known.map_or_else(|| own.get(&name).is_some(), |k| k.contains(&name.as_str()));
        if !mine {
            fields.insert(name, value);
        }
    }
    Ok(())
}

/// Used by generated code to find out, at compile time, whether a live type implements
/// [`LiveMigrate`] (as the other probes on [`LiveProbe`](super::LiveProbe)).
pub trait ProbeMigrate {
    /// The type's migrations.
    fn probe_migrate(&self) -> Option<Migrations>;
}
impl<T: LiveMigrate> ProbeMigrate for super::LiveProbe<T> {
    fn probe_migrate(&self) -> Option<Migrations> {
        Migrations::of::<T>()
    }
}
/// Fallback when the type does not implement [`LiveMigrate`].
pub trait ProbeNoMigrate {
    /// None.
    fn probe_migrate(&self) -> Option<Migrations> {
        None
    }
}
impl<T> ProbeNoMigrate for &super::LiveProbe<T> {}

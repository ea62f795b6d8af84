//! Live data: a value of a live type carried across generations as serialised bytes, keeping
//! the fields a later (or earlier) version does not know.

use serde::de::{self, DeserializeOwned, Visitor};

use super::{LiveError, LiveType};

/// A value of a live type, serialised so that it can outlive the generation that made it.
///
/// Made in plugin code with [`LiveData::new`]; kept by the host as plain data (it can be
/// cloned, stored, or serialised itself); read back by whatever generation is current with
/// [`LiveData::decode`] (in plugin code) or [`Vault::decode_live`](crate::Vault::decode_live);
/// written back after a change with [`LiveData::update`].
///
/// **Schema evolution.** The bytes are a JSON object of the type's fields. A version that
/// reads the envelope ignores fields it does not know (unless its type says
/// `#[serde(deny_unknown_fields)]`), and [`LiveData::update`] keeps them in the envelope, as
/// protocol buffers keep unknown fields: so a field that v2 removed and v3 added back still
/// holds v1's value in v3, next to v2's changes. A field a version adds needs
/// `#[serde(default)]` to read envelopes written before it existed. Any other change serde
/// cannot read (a field's type changed, say `u32` to `String`) is a [`LiveError::Decode`]
/// naming both versions, and the envelope is left untouched for a build that can read it.
///
/// ```
/// use hotswap_runtime::{LiveData, LiveError, LiveType};
///
/// // What hotswap-build generates for a live type of plugin `jobs`, by hand here.
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct LiveJob { id: u64 }
/// impl LiveType for LiveJob {
///     const NAME: &'static str = "LiveJob";
///     const PLUGIN: &'static str = "jobs";
///     const VERSION: &'static str = "1.0.0";
/// }
///
/// let data = LiveData::new(&LiveJob { id: 7 })?;
/// assert_eq!((data.type_name.as_str(), data.written_by.as_str()), ("LiveJob", "1.0.0"));
/// let job: LiveJob = data.decode()?;
/// assert_eq!(job.id, 7);
/// # Ok::<(), LiveError>(())
/// ```
//
// `repr(C)` with std fields only: its layout is fixed by the compiler and std the ABI
// fingerprint pins, which is what lets `Value::downcast` recognise the plugin's copy of this
// type (see `value::shared_runtime_type`). Add no field of another crate's type.
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LiveData {
    /// The live type's name.
    pub type_name: String,
    /// The plugin that wrote it.
    pub plugin: String,
    /// The version stamp of the build that wrote it last.
    pub written_by: String,
    /// The value, as a JSON object; fields unknown to the last writer included.
    pub bytes: Vec<u8>,
}

impl LiveData {
    /// Serialises `value` into a fresh envelope. To write back a value read from an
    /// envelope, use [`LiveData::update`] on that envelope instead, which keeps the fields
    /// this version does not know.
    pub fn new<T: LiveType + serde::Serialize>(value: &T) -> Result<Self, LiveError> {
        let encode =
            |e: serde_json::Error| LiveError::Encode { type_name: T::NAME.to_string(), message: e.to_string() };
        let bytes = if T::migrations().is_none() {
            serde_json::to_vec(value).map_err(encode)?
        } else {
            let mut new = serde_json::to_value(value).map_err(encode)?;
            if let serde_json::Value::Object(fields) = &mut new {
                super::migrate::write_down::<T>(fields, None)?;
            }
            serde_json::to_vec(&new).map_err(encode)?
        };
        Ok(LiveData {
            type_name: T::NAME.to_string(),
            plugin: T::PLUGIN.to_string(),
            written_by: T::VERSION.to_string(),
            bytes,
        })
    }

    /// Reads the value as this build's `T`. Fields `T` does not know are ignored here and kept
    /// in the envelope.
    pub fn decode<T: LiveType + DeserializeOwned>(&self) -> Result<T, LiveError> {
        self.check_type::<T>()?;
        super::migrate::read::<T>(&self.bytes, &self.written_by)
    }

    /// Replaces the value with `value`, keeping every field of the old value that `T` does
    /// not know, and stamps the envelope with this build's version.
    ///
    /// Unknown fields are kept at the top level of a struct with named fields; a nested
    /// struct is written whole by its new value, and a live type that is an enum, a tuple
    /// struct or uses `#[serde(flatten)]` is written whole too (its fields are not known by
    /// name).
    ///
    /// ```
    /// use hotswap_runtime::{LiveData, LiveError, LiveType};
    ///
    /// # macro_rules! live { ($t:ident, $v:literal) => {
    /// #     impl LiveType for $t { const NAME: &'static str = "LiveItem"; const PLUGIN: &'static str = "items"; const VERSION: &'static str = $v; }
    /// # } }
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct ItemV1 { id: u32, note: String }
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct ItemV2 { id: u32 }                     // `note` removed
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct ItemV3 { id: u32, note: String }       // and added back
    /// # live!(ItemV1, "1"); live!(ItemV2, "2"); live!(ItemV3, "3");
    ///
    /// let mut data = LiveData::new(&ItemV1 { id: 1, note: "fragile".into() })?;
    /// let mut item: ItemV2 = data.decode()?;
    /// item.id += 10;
    /// data.update(&item)?;                          // v2 writes back what it changed
    /// let item: ItemV3 = data.decode()?;
    /// assert_eq!((item.id, item.note.as_str()), (11, "fragile"));
    /// # Ok::<(), LiveError>(())
    /// ```
    pub fn update<T: LiveType + serde::Serialize + DeserializeOwned>(&mut self, value: &T) -> Result<(), LiveError> {
        self.check_type::<T>()?;
        let encode =
            |e: serde_json::Error| LiveError::Encode { type_name: T::NAME.to_string(), message: e.to_string() };
        let mut new = serde_json::to_value(value).map_err(encode)?;
        let known = field_names::<T>();
        if let serde_json::Value::Object(fields) = &mut new {
            // The fields older builds read, fresh from this value (see `LiveMigrate`).
            super::migrate::write_down::<T>(fields, known)?;
        }
        if let (Some(known), serde_json::Value::Object(fields)) = (known, &mut new) {
            // An old value that is not an object (the type was an enum, say) has no field to keep.
            if let Ok(serde_json::Value::Object(old)) = serde_json::from_slice::<serde_json::Value>(&self.bytes) {
                for (name, value) in old {
                    if !known.contains(&name.as_str()) && !fields.contains_key(&name) {
                        fields.insert(name, value);
                    }
                }
            }
        }
        self.bytes = serde_json::to_vec(&new).map_err(encode)?;
        self.plugin = T::PLUGIN.to_string();
        self.written_by = T::VERSION.to_string();
        Ok(())
    }

    fn check_type<T: LiveType>(&self) -> Result<(), LiveError> {
        if self.type_name != T::NAME {
            return Err(LiveError::WrongType { expected: T::NAME.to_string(), found: self.type_name.clone() });
        }
        Ok(())
    }
}

/// The field names `T`'s `Deserialize` asks for, when `T` is a struct with named fields: the
/// list serde's derive hands to `deserialize_struct` (renames and aliases included).
fn field_names<T: DeserializeOwned>() -> Option<&'static [&'static str]> {
    let mut found = None;
    let _ = T::deserialize(FieldProbe(&mut found));
    found
}

/// A deserializer that records the field list of a struct and then stops.
struct FieldProbe<'a>(&'a mut Option<&'static [&'static str]>);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field probe stopped")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Stop
    }
}

impl<'de> de::Deserializer<'de> for FieldProbe<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = Some(fields);
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    macro_rules! live {
        ($t:ident, $v:literal) => {
            impl LiveType for $t {
                const NAME: &'static str = "LiveItem";
                const PLUGIN: &'static str = "items";
                const VERSION: &'static str = $v;
            }
        };
    }

    #[derive(Serialize, Deserialize)]
    struct V1 {
        id: u32,
        name: String,
        priority: u8,
        note: String,
    }
    #[derive(Serialize, Deserialize)]
    struct V2 {
        id: u32,
        name: String,
        priority: u8,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        owner: Option<String>,
    }
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "UPPERCASE")]
    struct Renamed {
        id: u32,
    }
    #[derive(Serialize, Deserialize)]
    enum AsEnum {
        Item { id: u32 },
    }
    live!(V1, "1");
    live!(V2, "2");
    live!(Renamed, "r");
    live!(AsEnum, "e");

    fn v1() -> LiveData {
        LiveData::new(&V1 { id: 1, name: "alpha".into(), priority: 1, note: "keep me".into() }).unwrap()
    }

    fn object(data: &LiveData) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_slice(&data.bytes).unwrap()
    }

    #[test]
    fn field_names_are_the_ones_serde_derive_asks_for() {
        assert_eq!(field_names::<V1>().unwrap(), ["id", "name", "priority", "note"]);
        assert_eq!(field_names::<Renamed>().unwrap(), ["ID"]);
        assert_eq!(field_names::<AsEnum>(), None);
        assert_eq!(field_names::<u32>(), None);
    }

    #[test]
    fn an_update_keeps_unknown_fields_and_restamps_the_envelope() {
        let mut data = v1();
        let mut item: V2 = data.decode().unwrap();
        item.priority = 11;
        data.update(&item).unwrap();
        assert_eq!(data.written_by, "2");
        let fields = object(&data);
        assert_eq!(fields["priority"], 11);
        assert_eq!(fields["note"], "keep me", "unknown to v2, kept: {fields:?}");
        assert!(!fields.contains_key("owner"), "skipped by v2 and not resurrected");
        let back: V1 = data.decode().unwrap();
        assert_eq!((back.priority, back.note.as_str()), (11, "keep me"));
    }

    #[test]
    fn a_known_field_the_writer_skips_is_not_resurrected_from_the_old_value() {
        let mut data = v1();
        let mut item: V2 = data.decode().unwrap();
        item.owner = Some("bob".into());
        data.update(&item).unwrap();
        item.owner = None;
        data.update(&item).unwrap();
        assert!(!object(&data).contains_key("owner"), "v2 knows `owner` and cleared it");
        assert_eq!(object(&data)["note"], "keep me");
    }

    #[test]
    fn an_enum_is_written_whole_and_a_wrong_type_is_refused() {
        let mut data = LiveData::new(&AsEnum::Item { id: 1 }).unwrap();
        data.update(&AsEnum::Item { id: 2 }).unwrap();
        assert_eq!(data.bytes, br#"{"Item":{"id":2}}"#);
        let mut other = v1();
        let before = other.clone();
        other.type_name = "LiveOther".into();
        let error = other.update(&item_v2()).unwrap_err();
        assert!(matches!(error, LiveError::WrongType { .. }), "{error}");
        assert_eq!(other.bytes, before.bytes, "untouched");
    }

    fn item_v2() -> V2 {
        V2 { id: 1, name: "a".into(), priority: 0, owner: None }
    }
}

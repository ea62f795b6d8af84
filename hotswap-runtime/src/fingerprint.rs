//! Saying why a plugin's ABI fingerprint differs from the host's.
//!
//! A fingerprint is a list of `key value` fields joined by `; ` (see
//! [`abi::FINGERPRINT`](crate::abi::FINGERPRINT)). The refusal names the fields that differ and
//! the fix for each, then gives both fingerprints whole.

/// The reason given for refusing a plugin whose fingerprint is `plugin` in a host whose
/// fingerprint is `host`.
pub(crate) fn mismatch_reason(plugin: &str, host: &str) -> String {
    let (plugin_fields, host_fields) = (fields(plugin), fields(host));
    let field =
        |fields: &[(&'static str, String)], key: &str| fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
    let mut causes = Vec::new();
    if let (Some(p), Some(h)) = (field(&plugin_fields, "panic"), field(&host_fields, "panic"))
        && p != h
    {
        causes.push(if p == "abort" {
            "the plugin was built with `panic = \"abort\"` (its first panic would kill the host); build it with \
                 `panic = \"unwind\"`, the default (look for `panic` in the Cargo profile and in RUSTFLAGS)"
                .to_string()
        } else {
            format!("the plugin was built with panic strategy `{p}`, the host with `{h}`; build both with `unwind`")
        });
    }
    if let (Some(p), Some(h)) = (field(&plugin_fields, "debug_assertions"), field(&host_fields, "debug_assertions"))
        && p != h
    {
        let profile = |assertions: &str| if assertions == "on" { "a dev (debug)" } else { "a release" };
        causes.push(format!(
            "the plugin is {} build and the host {} build (debug assertions {p}, the host's {h}); build both with \
                 the same profile (`--debug` matches a dev host)",
            profile(&p),
            profile(&h)
        ));
    }
    if let (Some(p), Some(h)) = (field(&plugin_fields, "cfg"), field(&host_fields, "cfg"))
        && p != h
    {
        causes.push(format!(
            "the plugin was compiled with other `cfg` values than the host (cfg {p}, the host's {h}): a `--cfg` \
                 (such as `tokio_unstable`), `-C target-feature` or `-C target-cpu` in RUSTFLAGS or a cargo \
                 configuration on one side only; build both with the same flags"
        ));
    }
    let toolchain_differs = ["rustc", "target", "hotswap-runtime", "hotswap-abi", "layout"]
        .iter()
        .any(|key| field(&plugin_fields, key) != field(&host_fields, key));
    if toolchain_differs || causes.is_empty() {
        causes.push("rebuild the plugin with the host's toolchain and hotswap-runtime".to_string());
    }
    format!(
        "ABI fingerprint mismatch: {}. The plugin was built with [{plugin}], the host with [{host}]",
        causes.join("; and ")
    )
}

/// The `key value` fields of a fingerprint, for the keys this runtime knows.
fn fields(fingerprint: &str) -> Vec<(&'static str, String)> {
    const KEYS: [&str; 8] =
        ["rustc", "target", "hotswap-runtime", "hotswap-abi", "layout", "cfg", "panic", "debug_assertions"];
    fingerprint
        .split("; ")
        .filter_map(|part| {
            let (key, value) = part.split_once(' ')?;
            KEYS.iter().find(|k| **k == key).map(|k| (*k, value.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::mismatch_reason;

    const DEV: &str = "rustc 1.90.0 (abc); target x86_64-unknown-linux-gnu; hotswap-runtime 0.1.0 (source 1); layout 5; cfg 00000000000000aa; panic unwind; debug_assertions on";

    fn with(from: &str, to: &str) -> String {
        assert!(DEV.contains(from));
        DEV.replace(from, to)
    }

    #[test]
    fn this_build_describes_its_panic_strategy_and_assertions_as_compiled() {
        let host = crate::abi::FINGERPRINT;
        assert!(host.contains(if cfg!(panic = "unwind") { "; panic unwind" } else { "; panic abort" }), "{host}");
        let assertions = if cfg!(debug_assertions) { "; debug_assertions on" } else { "; debug_assertions off" };
        assert!(host.ends_with(assertions), "{host}");
        assert_eq!(host.matches("panic").count(), 1, "the panic strategy is given once: {host}");
    }

    #[test]
    fn a_release_plugin_in_a_dev_host_and_the_reverse_are_told_to_use_one_profile() {
        let release = with("debug_assertions on", "debug_assertions off");
        for (plugin, host, plugin_is, host_is) in [
            (release.as_str(), DEV, "a release", "a dev (debug)"),
            (DEV, release.as_str(), "a dev (debug)", "a release"),
        ] {
            let reason = mismatch_reason(plugin, host);
            assert!(reason.starts_with("ABI fingerprint mismatch: "), "{reason}");
            assert!(
                reason.contains(&format!("the plugin is {plugin_is} build and the host {host_is} build")),
                "{reason}"
            );
            assert!(reason.contains("build both with the same profile (`--debug` matches a dev host)"), "{reason}");
            assert!(!reason.contains("toolchain"), "only the profile differs: {reason}");
            assert!(reason.contains(plugin) && reason.contains(host), "{reason}");
        }
    }

    #[test]
    fn a_panic_abort_plugin_is_told_why_and_how_to_fix_it() {
        let reason = mismatch_reason(&with("panic unwind", "panic abort"), DEV);
        assert!(reason.contains("`panic = \"abort\"` (its first panic would kill the host)"), "{reason}");
        assert!(!reason.contains("same profile") && !reason.contains("toolchain"), "{reason}");
    }

    #[test]
    fn other_cfg_values_are_told_to_use_the_same_flags() {
        let reason = mismatch_reason(&with("cfg 00000000000000aa", "cfg 00000000000000bb"), DEV);
        assert!(reason.contains("other `cfg` values than the host") && reason.contains("tokio_unstable"), "{reason}");
        assert!(!reason.contains("toolchain") && !reason.contains("same profile"), "{reason}");
    }

    #[test]
    fn another_toolchain_and_an_unknown_layout_get_the_rebuild_advice() {
        let reason = mismatch_reason(&with("rustc 1.90.0", "rustc 1.91.0"), DEV);
        assert!(reason.contains("rebuild the plugin with the host's toolchain"), "{reason}");
        let reason = mismatch_reason("rustc 0.0.0 (fake); target none", DEV);
        assert!(reason.contains("rebuild the plugin with the host's toolchain"), "{reason}");
        assert!(!reason.contains("same profile"), "{reason}");
    }
}

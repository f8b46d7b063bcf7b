//! What to do about a library that does not load: the loader's reasons
//! (ktstr_plugin_api::host and the contained call) mapped to a fix.

use ktstr_plugin_api::ABI_VERSION;

/// The fix for a load error `reason`, by what the loader said.
pub fn for_load_error(reason: &str) -> String {
    let major = ABI_VERSION.split('.').next().unwrap_or("1");
    let rebuild = format!(
        "depend on `ktstr-plugin-api = \"{major}.0\"`, run `cargo update -p ktstr-plugin-api` \
         and rebuild"
    );
    let table: [(&str, String); 10] = [
        (
            "cannot open the library",
            "build it as a cdylib (`[lib] crate-type = [\"cdylib\"]`) for x86-64 Linux; \
             `file PATH` and `ldd PATH` show what it is and what it lacks"
                .into(),
        ),
        (
            "not a ktstr plugin",
            "call `ktstr_plugin_api::export_plugins!(YourType, …)` once at the crate root".into(),
        ),
        ("incompatible plugin ABI", rebuild.clone()),
        ("ABI version string is unreadable", rebuild.clone()),
        ("unknown", format!("{rebuild}, or update ktstr")),
        (
            "panicked",
            "fix the panic in the function it names; call that function from a unit test \
             of the crate to see the backtrace"
                .into(),
        ),
        (
            "crashed with",
            "manifest() or a static constructor crashes: call manifest() from a unit test, \
             under a debugger if needed"
                .into(),
        ),
        (
            "did not answer within",
            "manifest() or a static constructor hangs: keep them free of I/O, locks and waits"
                .into(),
        ),
        (
            "invalid plugin name",
            "rename the plugin in its Manifest: letters, digits, `-`, `_` and `.`".into(),
        ),
        ("exports no plugin", "list your plugin types in export_plugins!(…)".into()),
    ];
    if reason.contains("does not carry exactly") {
        return "build the manifest with Manifest::payload, Manifest::extractor or \
                Manifest::scheduler, which set the one section its kind needs"
            .into();
    }
    table
        .iter()
        .find(|(needle, _)| reason.contains(needle))
        .map(|(_, fix)| fix.clone())
        .unwrap_or(rebuild)
}

#[cfg(test)]
mod tests {
    use super::for_load_error;

    #[test]
    fn each_loader_reason_gets_its_own_fix() {
        assert!(for_load_error("cannot open the library: invalid ELF header").contains("cdylib"));
        assert!(for_load_error("not a ktstr plugin (no abi_stable root module; …)")
            .contains("export_plugins!"));
        assert!(for_load_error("incompatible plugin ABI: built against 9.0.0")
            .contains("cargo update -p ktstr-plugin-api"));
        assert!(for_load_error("crashed with SIGSEGV").contains("unit test"));
        assert!(for_load_error("did not answer within 5 s").contains("hangs"));
        assert!(for_load_error("manifest of `x` says kind payload but does not carry exactly")
            .contains("Manifest::payload"));
    }
}

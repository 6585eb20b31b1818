//! Any text as a hook's NotificationMetadata: parsing never panics, a refusal names a key or
//! says the text is not a JSON object, and the hook is pinhook's exactly when the text is a JSON
//! object with the key "pin".
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinhook::config::{HookConfig, Owner};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = HookConfig::parse(Some(text)) {
        let message = error.to_string();
        assert!(message.contains("NotificationMetadata") || message.contains("no NotificationMetadata"), "{message}");
    }
    let with_pin = serde_json::from_str::<serde_json::Value>(text)
        .is_ok_and(|v| v.as_object().is_some_and(|o| o.contains_key("pin")));
    match HookConfig::owner(Some(text)) {
        Owner::Pinhook(config) => {
            assert!(with_pin, "{text:?} taken for pinhook's");
            assert_eq!(config, HookConfig::parse(Some(text)));
        }
        Owner::Other(why) => assert!(!with_pin && !why.is_empty(), "{text:?}: {why}"),
    }
    let _ = HookConfig::on_failure_lenient(Some(text));
    let _ = HookConfig::pool_lenient(Some(text));
});

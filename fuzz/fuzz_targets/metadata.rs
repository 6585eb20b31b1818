//! Any text as a hook's NotificationMetadata: reading it never panics, the hook is pinhook's
//! exactly when the text is a JSON object with the key "pin", another tool's hook says why, and
//! pinhook's unusable metadata names the key that is wrong.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinhook::config::HookMetadata;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let with_pin = serde_json::from_str::<serde_json::Value>(text)
        .is_ok_and(|v| v.as_object().is_some_and(|o| o.contains_key("pin")));
    match HookMetadata::parse(Some(text)) {
        HookMetadata::Pinhook(_) => assert!(with_pin, "{text:?} taken for pinhook's"),
        HookMetadata::Unusable(unusable) => {
            assert!(with_pin, "{text:?} taken for pinhook's");
            let message = unusable.error.to_string();
            assert!(message.contains("NotificationMetadata key") || message.contains("which is required"), "{message}");
        }
        HookMetadata::Foreign(why) => assert!(!with_pin && !why.is_empty(), "{text:?}: {why}"),
    }
});

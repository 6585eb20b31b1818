//! Any text as a hook's NotificationMetadata: parsing never panics, and a refusal names a key
//! or says the text is not a JSON object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinhook::config::HookConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = HookConfig::parse(Some(text)) {
        let message = error.to_string();
        assert!(message.contains("NotificationMetadata") || message.contains("no NotificationMetadata"), "{message}");
    }
    let _ = HookConfig::on_failure_lenient(Some(text));
    let _ = HookConfig::pool_lenient(Some(text));
});

#![doc = include_str!("../README.md")]

use crate::profile::Profile;

impl Profile {
    /// The whole profile as pretty-printed JSON (the layout the crate README documents, versioned
    /// by `schema_version`): every fact found, as the test vectors (`test-vectors/expected/`)
    /// record them. Field order is stable: it follows the struct definitions. The `holder` is
    /// [`Profile::holder_summary`], the layout `cpx status --json` shows too: one holder layout.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail (no maps, no non-string keys); keep a JSON answer
        // anyway rather than panic.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            format!(
                "{{\"schema_version\": {}, \"error\": {:?}}}",
                self.schema_version,
                e.to_string()
            )
        })
    }
}

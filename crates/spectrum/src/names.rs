//! `names!`: the name and `Display` of a choice enum, written once.

/// `as_str` (the name printed by `convmat svd --json` and Python) and `Display` for a choice enum.
macro_rules! names {
    ($(#[$doc:meta])* $ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            $(#[$doc])*
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

//! The small closed vocabularies of the product: thread modes, participant roles, and the door
//! a message came in through.

macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            #[allow(dead_code)]
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and printed form.
            #[allow(dead_code)]
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::kinds::UnknownValue;
            fn from_str(s: &str) -> Result<Self, $crate::domain::kinds::UnknownValue> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::domain::kinds::UnknownValue {
                        what: stringify!($name),
                        expected: &[$($text),+],
                    }),
                }
            }
        }
    };
}

pub(crate) use vocabulary;

vocabulary!(
    /// How much a thread's notifications may carry.
    Mode {
        /// Content-free notifications with a link; email replies are not filed.
        Secure => "secure",
        /// Notifications carry the message and a signed reply address.
        Convenience => "convenience",
    }
);

vocabulary!(
    /// What a participant is in a thread.
    Role {
        /// Someone at the practice.
        Staff => "staff",
        /// A patient or client.
        Recipient => "recipient",
    }
);

vocabulary!(
    /// The door a message came in through.
    Via {
        Cli => "cli",
        Api => "api",
        Smtp => "smtp",
        Imap => "imap",
        Web => "web",
    }
);

/// A word that is not one of a vocabulary's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected one of: {}", expected.join(", "))]
pub struct UnknownValue {
    pub what: &'static str,
    pub expected: &'static [&'static str],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for m in Mode::ALL {
            assert_eq!(m.as_str().parse::<Mode>().unwrap(), *m);
        }
        for v in Via::ALL {
            assert_eq!(v.as_str().parse::<Via>().unwrap(), *v);
        }
        let err = "Secure".parse::<Mode>().unwrap_err();
        assert_eq!(err.to_string(), "expected one of: secure, convenience");
    }
}

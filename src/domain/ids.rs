//! Identifiers of threads, participants, messages and notifications.
//!
//! Ids are random 63-bit integers rather than database sequences: they reveal nothing about how
//! many threads a practice has, they can be chosen before the row exists (so they can go into the
//! additional authenticated data of the row's own ciphertext), and several instances sharing one
//! PostgreSQL database never collide. They print as 16 lower-case hex digits.

use std::fmt;
use std::str::FromStr;

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl $name {
            /// A fresh random id from the operating system's generator.
            pub fn random() -> Self {
                Self(random_positive_i64())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:016x}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:016x})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                parse_hex_id(s).map(Self)
            }
        }
    };
}

define_id!(
    /// A secure message thread.
    ThreadId
);
define_id!(
    /// One person's membership of one thread; reply tokens are bound to it.
    ParticipantId
);
define_id!(
    /// One message posted into a thread.
    MessageId
);
define_id!(
    /// One notification in the outbox.
    NotificationId
);
define_id!(
    /// One person in the practice's directory.
    PersonId
);
define_id!(
    /// One API key (the public half of `sp_<id>_<secret>`).
    ApiKeyId
);
define_id!(
    /// One webhook subscription.
    WebhookId
);

/// The text given is not an id of the form Sealpost prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id (expected 16 hexadecimal digits)")]
pub struct InvalidId;

fn parse_hex_id(s: &str) -> Result<i64, InvalidId> {
    if s.is_empty() || s.len() > 16 {
        return Err(InvalidId);
    }
    let v = u64::from_str_radix(s, 16).map_err(|_| InvalidId)?;
    i64::try_from(v).map_err(|_| InvalidId)
}

fn random_positive_i64() -> i64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the operating system's random generator is unavailable");
    // Clear the sign bit; zero is reserved so that no id is ever the default value.
    let v = i64::from_be_bytes(b) & i64::MAX;
    if v == 0 { 1 } else { v }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_round_trips() {
        for _ in 0..100 {
            let id = ThreadId::random();
            assert!(id.0 > 0);
            let s = id.to_string();
            assert_eq!(s.len(), 16);
            assert_eq!(s.parse::<ThreadId>().unwrap(), id);
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!("".parse::<ThreadId>().is_err());
        assert!("xyz".parse::<ThreadId>().is_err());
        assert!("ffffffffffffffff".parse::<ThreadId>().is_err());
        assert!("00000000000000001".parse::<ThreadId>().is_err());
    }
}

//! How each kind of setting is read, wherever it came from. A value from the file may be a
//! TOML string, number, boolean or list; the same value from the environment is always text.
//! Every reader here takes both, normalises the way the setting needs (trimmed, lower-cased,
//! "" for none) and explains a bad value in words the admin can act on; the config crate adds
//! the key, and [`super::Settings::from_sources`] where it came from.

use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserializer;
use serde::de::{self, Error as _, SeqAccess, Visitor};

use crate::domain::kinds::UnknownValue;

/// A scalar as text: strings as they are, numbers and booleans written out.
struct Text;

impl<'de> Visitor<'de> for Text {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, a whole number or true/false")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Err(E::custom(format!("{v} is not a whole number")))
    }
    /// No value (a default of none).
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(d.deserialize_any(Text)?.unwrap_or_default())
}

/// A list as text items: a TOML array of strings, or one string separated by commas or white
/// space (as the environment carries it).
struct Items<T>(PhantomData<T>);

impl<'de, T: From<String>> Visitor<'de> for Items<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of strings")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|s| T::from(s.to_owned()))
            .collect())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        self.visit_str(&v)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<Item>()? {
            out.push(T::from(item.0));
        }
        Ok(out)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
}

/// One item of a list: a string, nothing else.
struct Item(String);

impl<'de> de::Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Item, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Item;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
                Ok(Item(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Item, E> {
                Ok(Item(v))
            }
        }
        d.deserialize_any(V)
    }
}

fn items<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(Items::<String>(PhantomData))
}

/// Text without surrounding white space.
pub fn trimmed<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(text(d)?.trim().to_owned())
}

/// Text as it is (a user name may have spaces that matter).
pub fn verbatim<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    text(d)
}

/// A host or domain name: trimmed, lower case.
pub fn lower<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(text(d)?.trim().to_ascii_lowercase())
}

/// A lower-case name that may be left empty for none.
pub fn optional_lower<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Some(text(d)?.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()))
}

/// Text that may be left empty for none.
pub fn optional_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Some(text(d)?).filter(|s| !s.is_empty()))
}

/// A phrase: runs of white space (line breaks included) become one space.
pub fn phrase<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(text(d)?.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A URL without its trailing slash.
pub fn url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(text(d)?.trim().trim_end_matches('/').to_owned())
}

/// A path that must be given.
pub fn path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    let v = text(d)?;
    if v.trim().is_empty() {
        return Err(D::Error::custom("must not be empty"));
    }
    Ok(PathBuf::from(v.trim()))
}

/// A path that may be left empty for none.
pub fn optional_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    let v = text(d)?;
    Ok((!v.trim().is_empty()).then(|| PathBuf::from(v.trim())))
}

/// A whole number of the field's type.
pub fn number<'de, D: Deserializer<'de>, T: FromStr>(d: D) -> Result<T, D::Error> {
    let v = text(d)?;
    v.trim()
        .parse()
        .map_err(|_| D::Error::custom(format!("'{v}' is not a whole number in range")))
}

/// Seconds, from a number of seconds or a duration such as `90s`, `30m`, `1h 30m`.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = text(d)?;
    let v = v.trim();
    v.parse::<u64>()
        .or_else(|_| humantime::parse_duration(v).map(|d| d.as_secs()))
        .map_err(|_| {
            D::Error::custom(format!(
                "'{v}' is not a duration such as 3600, 90s, 30m or 1h"
            ))
        })
}

/// true/false, yes/no, on/off, 1/0.
pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = text(d)?;
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(D::Error::custom(format!("'{v}' is not true or false"))),
    }
}

/// One word of a closed vocabulary (`imap.tls`, `policy.default_mode`, …).
pub fn word<'de, D: Deserializer<'de>, T: FromStr<Err = UnknownValue>>(
    d: D,
) -> Result<T, D::Error> {
    let v = text(d)?;
    v.trim()
        .parse()
        .map_err(|e: UnknownValue| D::Error::custom(format!("'{v}': {e}")))
}

/// A value with its own parser whose error already says what is wrong (a mailbox).
pub fn parsed<'de, D: Deserializer<'de>, T: FromStr<Err = String>>(d: D) -> Result<T, D::Error> {
    text(d)?.parse().map_err(D::Error::custom)
}

/// An address and port to listen on.
pub fn listen_address<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let v = text(d)?;
    v.trim().parse().map_err(|_| {
        D::Error::custom(format!(
            "'{v}' is not an address:port such as 127.0.0.1:2525"
        ))
    })
}

/// DNS resolvers: `IP` (port 53) or `IP:port`.
pub fn resolvers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    items(d)?
        .iter()
        .map(|s| {
            s.parse::<SocketAddr>()
                .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| {
                    D::Error::custom(format!(
                        "'{s}' is not an IP address or IP:port of a DNS resolver"
                    ))
                })
        })
        .collect()
}

/// A list of lower-case names.
pub fn lower_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(items(d)?.iter().map(|s| s.to_ascii_lowercase()).collect())
}

/// A list of values with their own parser (networks).
pub fn parsed_list<'de, D: Deserializer<'de>, T: FromStr<Err = String>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    items(d)?
        .iter()
        .map(|s| s.parse().map_err(D::Error::custom))
        .collect()
}

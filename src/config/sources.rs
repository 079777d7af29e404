//! Where settings come from: the file (`--config`, `$SEALPOST_CONFIG` or the system path),
//! then `SEALPOST_<SECTION>__<KEY>` variables, layered over the built-in defaults; every key
//! given is checked against the known ones first, so an unknown one is named with its origin.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::*;

/// Finds and reads the configuration: `--config`, else `$SEALPOST_CONFIG`, else
/// [`SYSTEM_CONFIG`] when it exists, else built-in defaults; then the environment on top.
pub fn load(cli_path: Option<&Path>) -> Result<Loaded, ConfigError> {
    let env: Env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let chosen = match cli_path {
        Some(p) => Some((p.to_owned(), Origin::Default)),
        None => env
            .iter()
            .find(|(k, _)| k == CONFIG_ENV)
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (PathBuf::from(v), Origin::Env(k.clone())))
            .or_else(|| {
                Path::new(SYSTEM_CONFIG)
                    .exists()
                    .then(|| (PathBuf::from(SYSTEM_CONFIG), Origin::Default))
            }),
    };
    let file = match chosen {
        Some((path, origin)) => {
            let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
                key: "configuration file".into(),
                origin: match origin {
                    Origin::Env(v) => Origin::Env(v),
                    _ => Origin::File(path.clone()),
                },
                message: format!("cannot read {}: {e}", path.display()),
            })?;
            Some((path, text))
        }
        None => None,
    };
    let settings =
        Settings::from_sources(file.as_ref().map(|(p, t)| (p.as_path(), t.as_str())), &env)?;
    Ok(Loaded {
        settings,
        file: file.map(|(p, _)| p),
    })
}

/// Which source set each key (the environment overrides the file).
type Origins = HashMap<String, Origin>;

impl Settings {
    /// Builds settings from an optional file `(path, text)` and the environment, then validates.
    ///
    /// The layers are the config crate's: the built-in defaults, then the file, then
    /// `SEALPOST_<SECTION>__<KEY>` variables, deserialised into the typed sections (each key's
    /// reader is in [`de`]). Before that, every key given is checked against the keys the
    /// defaults have, so an unknown one is named exactly, with where it came from.
    pub fn from_sources(file: Option<(&Path, &str)>, env: &Env) -> Result<Settings, ConfigError> {
        let defaults = Settings::defaults(env);
        let known = known_keys(&defaults);
        let mut origins = Origins::new();
        if let Some((path, text)) = file {
            file_keys(path, text, &known, &mut origins)?;
        }
        let overrides = env_overrides(env, &known, &mut origins)?;

        // A setting nobody set is reported against the file when there is one: that is where
        // the admin has to add it.
        let origin_of = |key: &str| -> Origin {
            match (origins.get(key), file) {
                (Some(o), _) => o.clone(),
                (None, Some((path, _))) => Origin::File(path.to_owned()),
                (None, None) => Origin::Default,
            }
        };
        let mut s = layered(&defaults, file.map(|(_, text)| text), overrides).map_err(|e| {
            let (key, message) = explain(e);
            // "auth.trusted_relays[0]" is the setting auth.trusted_relays.
            let key = key.split('[').next().unwrap_or_default().to_owned();
            ConfigError {
                origin: origin_of(&key),
                key,
                message,
            }
        })?;
        s.derive_from_data_dir(&origins, env);

        if file.is_some() && !origins.contains_key("smtp.reply_domain") {
            return Err(ConfigError {
                key: "smtp.reply_domain".into(),
                origin: origin_of("smtp.reply_domain"),
                message: "missing: set the domain that routes reply mail to Sealpost".into(),
            });
        }
        s.validate().map_err(|(key, message)| ConfigError {
            origin: origin_of(key),
            key: key.to_owned(),
            message,
        })?;
        Ok(s)
    }

    /// The paths that follow `general.data_dir` unless given explicitly (and the keyring
    /// systemd hands over as a credential, when there is one).
    fn derive_from_data_dir(&mut self, origins: &Origins, env: &Env) {
        if !origins.contains_key("database.url") {
            self.database.url = format!(
                "sqlite://{}",
                self.general.data_dir.join("sealpost.db").display()
            );
        }
        if !origins.contains_key("keys.path") {
            self.keys.path = match lookup(env, "CREDENTIALS_DIRECTORY") {
                Some(dir) if Path::new(dir).join("keyring").exists() => {
                    Path::new(dir).join("keyring")
                }
                _ => self.general.data_dir.join("keyring.json"),
            };
        }
        if !origins.contains_key("outbound.spool_dir") {
            self.outbound.spool_dir = self.general.data_dir.join("spool");
        }
    }
}

/// Checks that the file is TOML made of `[section]`s of known keys, and records them as set
/// by the file.
fn file_keys(
    path: &Path,
    text: &str,
    known: &std::collections::HashSet<String>,
    origins: &mut Origins,
) -> Result<(), ConfigError> {
    let origin = Origin::File(path.to_owned());
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|sp| text[..sp.start.min(text.len())].lines().count().max(1))
            .unwrap_or(0);
        ConfigError {
            key: format!("line {line}"),
            origin: origin.clone(),
            message: format!("not valid TOML: {}", e.message().trim()),
        }
    })?;
    for (section, value) in &table {
        let toml::Value::Table(keys) = value else {
            return Err(ConfigError {
                key: section.clone(),
                origin,
                message: "expected a [section] of settings".into(),
            });
        };
        for key in keys.keys() {
            let name = format!("{section}.{key}");
            if !known.contains(&name) {
                return Err(ConfigError {
                    key: name,
                    origin,
                    message: "unknown setting".into(),
                });
            }
            origins.insert(name, origin.clone());
        }
    }
    Ok(())
}

/// The `SEALPOST_<SECTION>__<KEY>` variables, each checked against the known keys and
/// recorded as set by the environment.
fn env_overrides(
    env: &Env,
    known: &std::collections::HashSet<String>,
    origins: &mut Origins,
) -> Result<config::Map<String, String>, ConfigError> {
    let mut overrides = config::Map::new();
    for (var, value) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if var == CONFIG_ENV {
            continue;
        }
        let origin = Origin::Env(var.clone());
        let Some((section, key)) = rest.split_once("__") else {
            return Err(ConfigError {
                key: var.clone(),
                origin,
                message: "unknown setting; overrides are named SEALPOST_<SECTION>__<KEY>".into(),
            });
        };
        let name = format!("{}.{}", section.to_lowercase(), key.to_lowercase());
        if !known.contains(&name) {
            return Err(ConfigError {
                key: name,
                origin,
                message: "unknown setting".into(),
            });
        }
        overrides.insert(var.clone(), value.clone());
        origins.insert(name, origin);
    }
    Ok(overrides)
}

/// The defaults, the file and the overrides layered and read into the typed sections.
fn layered(
    defaults: &Settings,
    file: Option<&str>,
    overrides: config::Map<String, String>,
) -> Result<Settings, config::ConfigError> {
    let mut builder = config::Config::builder().add_source(config::Config::try_from(defaults)?);
    if let Some(text) = file {
        builder = builder.add_source(config::File::from_str(text, config::FileFormat::Toml));
    }
    builder
        .add_source(
            config::Environment::with_prefix("SEALPOST")
                .prefix_separator("_")
                .separator("__")
                .source(Some(overrides)),
        )
        .build()?
        .try_deserialize()
}

/// Every `section.key` there is: the keys of the defaults (a key that is none by default is
/// there too, as a null).
fn known_keys(defaults: &Settings) -> std::collections::HashSet<String> {
    let value = serde_json::to_value(defaults).expect("settings always serialise");
    let mut keys = std::collections::HashSet::new();
    if let serde_json::Value::Object(sections) = value {
        for (section, fields) in sections {
            if let serde_json::Value::Object(fields) = fields {
                keys.extend(fields.keys().map(|k| format!("{section}.{k}")));
            }
        }
    }
    keys
}

/// A deserialisation error as (key, what is wrong).
fn explain(e: config::ConfigError) -> (String, String) {
    match e {
        config::ConfigError::At { error, key, .. } => {
            let (inner, message) = explain(*error);
            (key.filter(|k| !k.is_empty()).unwrap_or(inner), message)
        }
        config::ConfigError::Type {
            unexpected,
            expected,
            key,
            ..
        } => (
            key.unwrap_or_default(),
            format!("expected {expected}, not {unexpected}"),
        ),
        other => (String::new(), other.to_string()),
    }
}

pub(super) fn lookup<'a>(env: &'a Env, name: &str) -> Option<&'a str> {
    env.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

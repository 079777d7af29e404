//! `person …`: the practice's directory.

use anyhow::{Context, bail};
use serde_json::json;

use sealpost::app;
use sealpost::clock;
use sealpost::config::Settings;
use sealpost::domain::consent::CONVENIENCE_WARNING;
use sealpost::domain::{Address, PersonKind};
use sealpost::store::{Consent, PersonDetails, Store};

use crate::args::*;
use crate::cli::*;
use crate::output::{print, print_json};
use sealpost::http::api::Person;

pub(crate) async fn person(settings: &Settings, cmd: PersonCommand) -> anyhow::Result<()> {
    let store = app::open_store(settings).await?;
    let result = person_command(&store, cmd).await;
    store.close().await;
    result
}

pub(crate) async fn person_command(store: &Store, cmd: PersonCommand) -> anyhow::Result<()> {
    let parse = |a: &str| Address::parse(a).map_err(|e| anyhow::anyhow!("{a}: {e}"));
    let address = match cmd {
        PersonCommand::Consent {
            address,
            convenience,
            text,
            by,
        } => {
            let convenience = match convenience.to_ascii_lowercase().as_str() {
                "yes" | "true" => true,
                "no" | "false" => false,
                other => bail!("--convenience {other}: expected yes or no"),
            };
            let text = text.unwrap_or_else(|| CONVENIENCE_WARNING.to_owned());
            if text.trim().is_empty() || sealpost::domain::text::has_hidden_characters(&text) {
                bail!("--text: expected the plain text the person was shown");
            }
            let address = parse(&address)?;
            store
                .set_consent(Consent {
                    address: address.clone(),
                    convenience,
                    text,
                    by: format!("cli:{}", decided_by(by)?),
                })
                .await?;
            address
        }
        PersonCommand::Show { address } => parse(&address)?,
        PersonCommand::Add { address, fields } => {
            let address = parse(&address)?;
            if store.person(&address).await?.is_some() {
                bail!("{address} is already in the directory; use `person update`");
            }
            let kind = fields.kind.as_deref().unwrap_or("patient");
            let base = PersonDetails::new(kind.parse().map_err(|e| anyhow::anyhow!("{e}"))?);
            let details = fields.apply(base)?;
            let p = store.put_person(&address, &details).await?;
            return print(&Person::from(p));
        }
        PersonCommand::Update { address, fields } => {
            let address = parse(&address)?;
            let Some(existing) = store.person(&address).await? else {
                bail!("{address} is not in the directory; use `person add`");
            };
            let details = fields.apply(existing.details)?;
            let p = store.put_person(&address, &details).await?;
            return print(&Person::from(p));
        }
        PersonCommand::List { kind } => {
            let kind = kind
                .map(|k| k.parse::<PersonKind>().map_err(|e| anyhow::anyhow!("{e}")))
                .transpose()?;
            for p in store.people(kind).await? {
                print(&Person::from(p))?;
            }
            return Ok(());
        }
        PersonCommand::Remove { address } => {
            let address = parse(&address)?;
            store.remove_person(&address).await?;
            return print_json(json!({"removed": address.as_str()}));
        }
        PersonCommand::Passcode { address, clear, by } => {
            let address = parse(&address)?;
            let by = by.trim();
            if by.is_empty() {
                bail!("--by: say who sets the passcode");
            }
            let passcode = if clear {
                None
            } else {
                let mut text = String::new();
                std::io::stdin()
                    .read_line(&mut text)
                    .context("cannot read the passcode from standard input")?;
                Some(text.trim_end_matches(['\r', '\n']).to_owned())
            };
            store
                .set_passcode(&address, passcode.as_deref(), &format!("cli:{by}"))
                .await?;
            // Then the person as the directory now has them (never the passcode).
            address
        }
        PersonCommand::Unlock { address, by } => {
            let address = parse(&address)?;
            let by = by.trim();
            if by.is_empty() {
                bail!("--by: say who unlocks");
            }
            store.unlock_person(&address, &format!("cli:{by}")).await?;
            address
        }
    };
    let Some(p) = store.person(&address).await? else {
        bail!("{address} is not in the directory");
    };
    print(&Person::from(p))
}

impl PersonFields {
    /// `details` with the options given applied and checked.
    fn apply(self, mut d: PersonDetails) -> anyhow::Result<PersonDetails> {
        use sealpost::domain::person;
        if let Some(kind) = self.kind {
            d.kind = kind.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let check = |r: Result<Option<String>, String>| r.map_err(|e| anyhow::anyhow!(e));
        if let Some(v) = self.name {
            d.name = check(person::text("name", &v))?;
        }
        if let Some(v) = self.title {
            d.title = check(person::text("title", &v))?;
        }
        if let Some(v) = self.practice {
            d.practice = check(person::text("practice", &v))?;
        }
        if let Some(v) = self.birth_date {
            d.birth_date = check(person::birth_date(&v, &clock::Clock::system().today()))?;
        }
        if let Some(v) = self.mobile {
            d.mobile = check(person::mobile(&v))?;
        }
        if let Some(v) = self.notifications {
            d.notifications = v == "on";
        }
        if let Some(v) = self.status {
            d.status = v.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        d.check().map_err(|e| anyhow::anyhow!(e))?;
        Ok(d)
    }
}

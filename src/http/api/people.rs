//! `/v1/people`: the directory, and each person's consent to convenience mode.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiJson, ApiQuery, ApiState, Caller};
use crate::clock;
use crate::domain::consent::CONVENIENCE_WARNING;
use crate::domain::{Address, PersonKind, person};
use crate::http::problem::Problem;
use crate::store::{Consent, PersonDetails, PersonView};

/// A person in the directory.
#[derive(Debug, Serialize, ToSchema)]
pub struct Person {
    #[schema(example = "535c746b4a70e873")]
    pub person_id: String,
    #[schema(example = "jane@example.net")]
    pub address: String,
    /// patient, staff or colleague.
    #[schema(example = "patient")]
    pub kind: String,
    pub name: Option<String>,
    pub title: Option<String>,
    pub practice: Option<String>,
    /// YYYY-MM-DD.
    pub birth_date: Option<String>,
    /// E.164.
    pub mobile: Option<String>,
    /// false: opted out; their notifications are recorded as suppressed.
    pub notifications: bool,
    /// registered, invited or locked.
    pub status: String,
    /// Agreed to convenience mode (content by email); null when never asked.
    pub convenience: Option<bool>,
    pub convenience_at: Option<String>,
    pub convenience_text: Option<String>,
    pub convenience_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<PersonView> for Person {
    fn from(p: PersonView) -> Person {
        let d = p.details;
        Person {
            person_id: p.id.to_string(),
            address: p.address.to_string(),
            kind: d.kind.as_str().to_owned(),
            name: d.name,
            title: d.title,
            practice: d.practice,
            birth_date: d.birth_date,
            mobile: d.mobile,
            notifications: d.notifications,
            status: d.status.as_str().to_owned(),
            convenience: p.convenience,
            convenience_at: p.convenience_at.map(clock::rfc3339),
            convenience_text: p.convenience_text,
            convenience_by: p.convenience_by,
            created_at: clock::rfc3339(p.created_at),
            updated_at: clock::rfc3339(p.updated_at),
        }
    }
}

/// A new person. Fields left out are empty; `kind` defaults to patient.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPerson {
    #[schema(format = Email)]
    pub address: String,
    #[schema(value_type = Option<String>, example = "patient")]
    pub kind: Option<String>,
    pub name: Option<String>,
    pub title: Option<String>,
    pub practice: Option<String>,
    #[schema(format = Date)]
    pub birth_date: Option<String>,
    #[schema(example = "+4915112345678")]
    pub mobile: Option<String>,
    pub notifications: Option<bool>,
    #[schema(example = "registered")]
    pub status: Option<String>,
}

/// Changes to a person (JSON merge patch: a field left out stays, null clears it).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonPatch {
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub practice: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub birth_date: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub mobile: Option<Option<String>>,
    pub notifications: Option<bool>,
    pub status: Option<String>,
}

/// A field that was given (maybe as null): `Some(None)` clears it.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

/// A person's choice about convenience mode.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentChoice {
    /// true: they agreed to receive message content by ordinary email.
    pub convenience: bool,
    /// The text they were shown (default: Sealpost's warning that email is not fully
    /// protected).
    pub text: Option<String>,
}

/// A passcode for the secure web view (`web.verify = "passcode"`), or null to remove it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasscodeRequest {
    /// 6 to 128 characters; kept only as an Argon2id hash.
    #[schema(min_length = 6, max_length = 128)]
    pub passcode: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Only people of this kind: patient, staff or colleague.
    pub kind: Option<String>,
}

fn kind(value: &str) -> Result<PersonKind, Problem> {
    value
        .parse()
        .map_err(|e| Problem::invalid("kind", format!("{e}")))
}

/// The directory entry of `address`, or 404.
async fn person(state: &ApiState, address: &Address) -> Result<PersonView, Problem> {
    state
        .store
        .person(address)
        .await?
        .ok_or_else(|| Problem::not_found(format!("{address} is not in the directory")))
}

fn address(value: &str) -> Result<Address, Problem> {
    Address::parse(value).map_err(|e| Problem::invalid("address", format!("{value}: {e}")))
}

/// Applies one optional text field through its check.
fn set(
    field: &'static str,
    target: &mut Option<String>,
    value: Option<Option<String>>,
    check: impl Fn(&str) -> Result<Option<String>, String>,
) -> Result<(), Problem> {
    if let Some(value) = value {
        *target = match value {
            None => None,
            Some(v) => check(&v).map_err(|e| Problem::invalid(field, e))?,
        };
    }
    Ok(())
}

fn apply(mut d: PersonDetails, p: PersonPatch, today: &str) -> Result<PersonDetails, Problem> {
    if let Some(k) = p.kind {
        d.kind = kind(&k)?;
    }
    set("name", &mut d.name, p.name, |v| person::text("name", v))?;
    set("title", &mut d.title, p.title, |v| person::text("title", v))?;
    set("practice", &mut d.practice, p.practice, |v| {
        person::text("practice", v)
    })?;
    set("birth_date", &mut d.birth_date, p.birth_date, |v| {
        person::birth_date(v, today)
    })?;
    set("mobile", &mut d.mobile, p.mobile, person::mobile)?;
    if let Some(n) = p.notifications {
        d.notifications = n;
    }
    if let Some(s) = p.status {
        d.status = s
            .parse()
            .map_err(|e| Problem::invalid("status", format!("{e}")))?;
    }
    d.check().map_err(|e| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
            "The details do not fit the person's kind",
        )
        .detail(e)
    })?;
    Ok(d)
}

/// List the directory.
#[utoipa::path(get, path = "/v1/people", tag = "people", params(ListQuery),
    responses((status = 200, body = Vec<Person>), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<Vec<Person>>, Problem> {
    let kind = q.kind.as_deref().map(kind).transpose()?;
    let people = state.store.people(kind).await?;
    Ok(axum::Json(people.into_iter().map(Person::from).collect()))
}

/// Add a person.
#[utoipa::path(post, path = "/v1/people", tag = "people", request_body = NewPerson,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry: the same request with the same key within 24 hours gets the first answer again")),
    responses((status = 201, body = Person), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"), (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<ApiState>,
    ApiJson(new): ApiJson<NewPerson>,
) -> Result<impl IntoResponse, Problem> {
    let address = address(&new.address)?;
    if state.store.person(&address).await?.is_some() {
        return Err(Problem::conflict(
            "exists",
            format!("{address} is already in the directory; PATCH it"),
        ));
    }
    let base = PersonDetails::new(
        new.kind
            .as_deref()
            .map(kind)
            .transpose()?
            .unwrap_or(PersonKind::Patient),
    );
    let details = apply(
        base,
        PersonPatch {
            kind: None,
            name: Some(new.name),
            title: Some(new.title),
            practice: Some(new.practice),
            birth_date: Some(new.birth_date),
            mobile: Some(new.mobile),
            notifications: new.notifications,
            status: new.status,
        },
        &state.store.clock().today(),
    )?;
    let p = state.store.put_person(&address, &details).await?;
    Ok((StatusCode::CREATED, axum::Json(Person::from(p))))
}

/// One person.
#[utoipa::path(get, path = "/v1/people/{address}", tag = "people",
    params(("address" = String, Path, description = "The person's email address")),
    responses((status = 200, body = Person), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<ApiState>,
    Path(addr): Path<String>,
) -> Result<axum::Json<Person>, Problem> {
    let address = address(&addr)?;
    let p = person(&state, &address).await?;
    Ok(axum::Json(p.into()))
}

/// Change what the directory says about a person.
#[utoipa::path(patch, path = "/v1/people/{address}", tag = "people", request_body = PersonPatch,
    params(("address" = String, Path, description = "The person's email address")),
    responses((status = 200, body = Person), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<ApiState>,
    Path(addr): Path<String>,
    ApiJson(patch): ApiJson<PersonPatch>,
) -> Result<axum::Json<Person>, Problem> {
    let address = address(&addr)?;
    let existing = person(&state, &address).await?;
    let details = apply(existing.details, patch, &state.store.clock().today())?;
    Ok(axum::Json(
        state.store.put_person(&address, &details).await?.into(),
    ))
}

/// Remove a person who takes part in no thread.
#[utoipa::path(delete, path = "/v1/people/{address}", tag = "people",
    params(("address" = String, Path, description = "The person's email address")),
    responses((status = 204), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn remove(
    State(state): State<ApiState>,
    Path(addr): Path<String>,
) -> Result<StatusCode, Problem> {
    let address = address(&addr)?;
    state.store.remove_person(&address).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Record a person's choice about convenience mode (content by ordinary email).
#[utoipa::path(put, path = "/v1/people/{address}/consent", tag = "people", request_body = ConsentChoice,
    params(("address" = String, Path, description = "The person's email address")),
    responses((status = 200, body = Person), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 413, body = Problem, content_type = "application/problem+json"), (status = 415, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn consent(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(addr): Path<String>,
    ApiJson(choice): ApiJson<ConsentChoice>,
) -> Result<axum::Json<Person>, Problem> {
    let address = address(&addr)?;
    let text = match choice.text {
        Some(t) => {
            let t = t.trim();
            if t.is_empty()
                || t.chars().count() > 4000
                || crate::domain::text::has_hidden_characters(t)
                || t.chars().any(|c| c.is_control() && c != '\n')
            {
                return Err(Problem::invalid(
                    "text",
                    "expected the plain text the person was shown (up to 4000 characters)",
                ));
            }
            t.to_owned()
        }
        None => CONVENIENCE_WARNING.to_owned(),
    };
    state
        .store
        .set_consent(Consent {
            address: address.clone(),
            convenience: choice.convenience,
            text,
            by: format!("api:{}", caller.key),
        })
        .await?;
    let p = person(&state, &address).await?;
    Ok(axum::Json(p.into()))
}

/// Lift a person's lockout of the secure web view (after failed identity checks).
#[utoipa::path(post, path = "/v1/people/{address}/unlock", tag = "people",
    params(("address" = String, Path, description = "The person's email address")),
    responses((status = 200, body = Person), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn unlock(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(addr): Path<String>,
) -> Result<axum::Json<Person>, Problem> {
    let address = address(&addr)?;
    state
        .store
        .unlock_person(&address, &format!("api:{}", caller.key))
        .await?;
    let p = person(&state, &address).await?;
    Ok(axum::Json(p.into()))
}

/// Set (or, with null, remove) the passcode a person gives on the secure web view. It is
/// never shown again: only an Argon2id hash is kept.
#[utoipa::path(put, path = "/v1/people/{address}/passcode", tag = "people", request_body = PasscodeRequest,
    params(("address" = String, Path, description = "The person's email address")),
    responses((status = 204), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"), (status = 415, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn passcode(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(addr): Path<String>,
    ApiJson(req): ApiJson<PasscodeRequest>,
) -> Result<StatusCode, Problem> {
    let address = address(&addr)?;
    if let Some(p) = &req.passcode {
        let n = p.chars().count();
        if !(crate::crypto::passcode::MIN_LEN..=crate::crypto::passcode::MAX_LEN).contains(&n)
            || p.chars().any(char::is_control)
        {
            return Err(Problem::invalid(
                "passcode",
                "expected 6 to 128 characters without line breaks",
            ));
        }
    }
    state
        .store
        .set_passcode(
            &address,
            req.passcode.as_deref(),
            &format!("api:{}", caller.key),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

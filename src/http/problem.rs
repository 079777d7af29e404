//! Errors as RFC 9457 problem details (`application/problem+json`), each with a stable `type`
//! a client can branch on. The detail says what to change; it never carries message content.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::{ErrorClass, StoreError};

/// A problem, as the API answers it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A stable identifier of the kind of problem: `urn:sealpost:problem:<name>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    pub status: u16,
    /// What went wrong in this request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request field at fault, for 400 and 422.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds to wait, with 429 and 503.
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, name: &str, title: &str) -> Problem {
        Problem {
            kind: format!("urn:sealpost:problem:{name}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
            field: None,
            retry_after: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Problem {
        self.detail = Some(detail.into());
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Problem {
        self.field = Some(field.into());
        self
    }

    pub fn unauthorized() -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "A valid API key is required",
        )
        .detail("send Authorization: Bearer <key>; `sealpost apikey create` makes one")
    }

    pub fn forbidden(needed: &str) -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "The API key's scope does not allow this",
        )
        .detail(format!("this needs a key with scope {needed}"))
    }

    pub fn not_found(what: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found").detail(what)
    }

    /// 400: the request names a field with a value that cannot be used.
    pub fn invalid(field: &str, detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-field",
            "A field has an invalid value",
        )
        .field(field)
        .detail(detail)
    }

    pub fn conflict(name: &str, detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::CONFLICT,
            name,
            "The request conflicts with the current state",
        )
        .detail(detail)
    }

    pub fn unavailable() -> Problem {
        Problem {
            retry_after: Some(5),
            ..Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The database is busy; try again",
            )
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry = self.retry_after;
        let mut response = (status, axum::Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = retry {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        match (e.class(), &e) {
            (_, StoreError::PersonInUse { .. }) => {
                Problem::conflict("person-in-use", e.to_string())
            }
            (_, StoreError::AlreadyParticipant { .. }) => {
                Problem::conflict("already-participant", e.to_string())
            }
            (_, StoreError::WouldShare(_)) => Problem::conflict("not-shared", e.to_string()),
            (ErrorClass::NotFound, StoreError::NotParticipant { .. }) => {
                Problem::invalid("from", e.to_string())
            }
            (ErrorClass::NotFound, _) => Problem::not_found(e.to_string()),
            (ErrorClass::Closed, _) => Problem::conflict("closed", e.to_string()),
            (ErrorClass::Invalid, _) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable",
                "The request cannot be carried out",
            )
            .detail(e.to_string()),
            (ErrorClass::Unavailable, _) => Problem::unavailable(),
            (ErrorClass::Corrupt, _) => {
                tracing::error!(error = %e, "stored data cannot be read");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "stored-data",
                    "Stored data cannot be read",
                )
            }
        }
    }
}

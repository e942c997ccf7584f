//! The one API error type: every failure a handler can meet maps to exactly
//! one HTTP status and a stable code, rendered as
//! `{"error": {"code": "...", "message": "..."}}`. Internal details are
//! logged once here and never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::AuthError;
use crate::catalog::{BadEntry, CatalogError};
use crate::extraction::ExtractionError;
use crate::service::ServiceError;
use crate::service::tracker::TrackerError;
use crate::storage::StorageError;
use crate::workflow::WorkflowError;

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input (400).
    #[error("{message}")]
    BadRequest {
        /// Stable machine-readable code.
        code: &'static str,
        /// Human-readable detail.
        message: String,
    },
    /// A catalog with invalid entries (400 `invalid_catalog`); the body
    /// lists each of them under `error.invalid_entries`.
    #[error("{message}")]
    InvalidEntries {
        /// Human-readable detail.
        message: String,
        /// One item per invalid entry.
        entries: Vec<BadEntry>,
    },
    /// Missing or rejected credentials (401).
    #[error("{message}")]
    Unauthorized {
        /// Stable code.
        code: &'static str,
        /// Detail.
        message: String,
    },
    /// The caller lacks a role (403).
    #[error("{message}")]
    Forbidden {
        /// Stable code.
        code: &'static str,
        /// Detail.
        message: String,
    },
    /// Too many requests from this client (429).
    #[error("rate limit exceeded, retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a request may succeed.
        retry_after_secs: u64,
    },
    /// No such resource (404).
    #[error("{message}")]
    NotFound {
        /// Stable code.
        code: &'static str,
        /// Detail.
        message: String,
    },
    /// Input over a size limit (413).
    #[error("{message}")]
    TooLarge {
        /// Stable code.
        code: &'static str,
        /// Detail.
        message: String,
    },
    /// Well-formed input that cannot be processed (422).
    #[error("{message}")]
    Unprocessable {
        /// Stable code.
        code: &'static str,
        /// Detail.
        message: String,
    },
    /// The model queue is full (429).
    #[error("the service is overloaded, retry later")]
    Overloaded,
    /// A step quota is used up (429, `quota_exceeded`; the message names
    /// the quota).
    #[error("{message}")]
    QuotaExceeded {
        /// Detail naming the quota and its limit.
        message: String,
    },
    /// The model is not loaded yet (503).
    #[error("the model is still loading")]
    NotReady,
    /// A failure on our side (500); the detail is logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } | Self::InvalidEntries { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Overloaded | Self::QuotaExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::TooLarge { code, .. }
            | Self::Unprocessable { code, .. } => code,
            Self::InvalidEntries { .. } => "invalid_catalog",
            Self::Overloaded => "overloaded",
            Self::QuotaExceeded { .. } => "quota_exceeded",
            Self::RateLimited { .. } => "rate_limited",
            Self::NotReady => "not_ready",
            Self::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let status = self.status();
        let mut body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        if let Self::InvalidEntries { entries, .. } = &self {
            body["error"]["invalid_entries"] = json!(entries);
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Bearer realm=\"telos\""),
            );
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let secs = if let Self::RateLimited { retry_after_secs } = &self {
                (*retry_after_secs).max(1)
            } else {
                1
            };
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert("retry-after", v);
            }
        }
        response
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::TooManyEntries { .. } => Self::TooLarge {
                code: "catalog_too_large",
                message: e.to_string(),
            },
            CatalogError::Invalid(ref entries) => Self::InvalidEntries {
                message: e.to_string(),
                entries: entries.clone(),
            },
            CatalogError::Name(_) => Self::bad_request("invalid_catalog_name", e.to_string()),
            CatalogError::UnknownShape
            | CatalogError::Field { .. }
            | CatalogError::JsonRpc { .. }
            | CatalogError::Empty
            | CatalogError::SkillMd(_) => Self::bad_request("invalid_catalog", e.to_string()),
        }
    }
}

impl From<ExtractionError> for ApiError {
    fn from(e: ExtractionError) -> Self {
        match e {
            ExtractionError::EmptyPrompt => Self::Unprocessable {
                code: "empty_prompt",
                message: e.to_string(),
            },
            ExtractionError::Overloaded => Self::Overloaded,
            ExtractionError::Load { .. }
            | ExtractionError::Runtime(_)
            | ExtractionError::Tokenize(_)
            | ExtractionError::StaleEmbeddings(_) => Self::Internal(e.to_string()),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            // Other replicas kept appending to the workflow through every
            // retry: contention, not a failure (429, retry later).
            StorageError::Conflict { .. } => Self::Overloaded,
            StorageError::Db(_) | StorageError::NotDurable(_) | StorageError::Corrupt { .. } => {
                Self::Internal(e.to_string())
            }
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotReady => Self::NotReady,
            ServiceError::UnknownCatalog(_) => Self::NotFound {
                code: "unknown_catalog",
                message: e.to_string(),
            },
            ServiceError::TooManyInlineTools { .. } => Self::TooLarge {
                code: "too_many_tools",
                message: e.to_string(),
            },
            ServiceError::Catalog(c) => c.into(),
            ServiceError::Extraction(x) => x.into(),
            ServiceError::Storage(s) => s.into(),
            ServiceError::Task(t) => Self::Internal(t),
            ServiceError::Tracker(t) => t.into(),
        }
    }
}

impl From<TrackerError> for ApiError {
    fn from(e: TrackerError) -> Self {
        match e {
            TrackerError::UnknownWorkflow(_) => Self::NotFound {
                code: "unknown_workflow",
                message: e.to_string(),
            },
            TrackerError::Input(w) => w.into(),
            TrackerError::Storage(s) => s.into(),
            TrackerError::Quota { .. } => Self::QuotaExceeded {
                message: e.to_string(),
            },
        }
    }
}

impl From<WorkflowError> for ApiError {
    fn from(e: WorkflowError) -> Self {
        match e {
            WorkflowError::InvalidAct(_) => Self::bad_request("invalid_act", e.to_string()),
            WorkflowError::MalformedToken(_) => Self::bad_request("malformed_token", e.to_string()),
            WorkflowError::InvalidToken(_) => Self::Unauthorized {
                code: "invalid_token",
                message: e.to_string(),
            },
            WorkflowError::ToolOrSkill | WorkflowError::Field { .. } => {
                Self::bad_request("invalid_step", e.to_string())
            }
            WorkflowError::Jwks(_) => Self::Internal(e.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing => Self::Unauthorized {
                code: "unauthenticated",
                message: e.to_string(),
            },
            AuthError::Invalid(_) | AuthError::Dpop(_) => Self::Unauthorized {
                code: "invalid_credential",
                message: e.to_string(),
            },
            AuthError::Forbidden(_) => Self::Forbidden {
                code: "forbidden",
                message: e.to_string(),
            },
            AuthError::Config(_) => Self::Internal(e.to_string()),
        }
    }
}

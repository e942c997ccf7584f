//! Request and response bodies of the v1 API, kept apart from the domain
//! types they carry.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::Entry;
use crate::intent::{AuthorizationDetail, Intent, Object, Subject};

/// `POST /v1/intents` (and later `/v1/workflows`).
#[derive(Debug, Clone, Deserialize)]
pub struct IntentRequest {
    /// Who the agent acts for.
    pub subject: Subject,
    /// The person's request, as typed.
    pub prompt: String,
    /// A registered catalog's name.
    #[serde(default)]
    pub catalog: Option<String>,
    /// Tools given inline: an MCP `tools` array, or any catalog body.
    #[serde(default)]
    pub tools: Option<Value>,
    /// Extra context, echoed into the RAR request.
    #[serde(default)]
    pub context: Option<Object>,
}

/// The answer to an intent request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntentResponse {
    /// The extracted intent.
    pub intent: Intent,
    /// RFC 9396 authorization details for the delegated token.
    pub authorization_details: Vec<AuthorizationDetail>,
}

/// The answer to a catalog registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogSummary {
    /// The catalog's name.
    pub name: String,
    /// Entries registered.
    pub entries: usize,
    /// Entries that only read.
    pub read_only: usize,
    /// Entries with side effects.
    pub side_effecting: usize,
    /// The model that embedded the entries.
    pub model_sha256: String,
}

/// `GET /v1/catalogs/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogView {
    /// The catalog's name.
    pub name: String,
    /// Its entries.
    pub entries: Vec<Entry>,
    /// The model that embedded the entries.
    pub model_sha256: String,
}

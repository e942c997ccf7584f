//! Tool and skill catalogs. A deployment registers what its agents can call:
//! an MCP `tools/list` result, a list of Agent Skills (or their `SKILL.md`
//! files), or an A2A agent card. Every form becomes the same list of
//! [`Entry`] values, validated, with each entry marked read-only or
//! side-effecting (from MCP `readOnlyHint` when given, else classified from
//! the entry's name and description).

mod parameters;
mod parse;
mod read_only;
mod skill_md;
mod text;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use parameters::{parameter_labels, resource_type};
pub use parse::{Limits, Parsed, is_pages, parse_catalog, parse_catalog_with};
pub use read_only::classify_read_only;
pub use skill_md::{SkillFrontMatter, parse_skill_md};
pub use text::{entry_text, identifier_words};

/// Errors of catalog parsing and validation.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CatalogError {
    /// The body is not one of the accepted catalog shapes.
    #[error(
        "unrecognised catalog: expected an MCP `tools/list` result `{{\"tools\": [...]}}`, an Agent Skills list `{{\"skills\": [...]}}` or an A2A agent card"
    )]
    UnknownShape,
    /// A field is missing or has the wrong type.
    #[error("invalid catalog field `{field}`: {reason}")]
    Field {
        /// JSON path of the offending field, e.g. `tools[3].name`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Entries are invalid (a bad or duplicate name, an ill-typed field,
    /// an over-long description): every one of them, in catalog order.
    #[error("{}", invalid_message(.0))]
    Invalid(Vec<BadEntry>),
    /// The body is a JSON-RPC error response, not a `tools/list` result.
    #[error("the catalog is a JSON-RPC error response (code {code}): {message}")]
    JsonRpc {
        /// The error's `code`.
        code: i64,
        /// The error's `message`.
        message: String,
    },
    /// The catalog has more entries than allowed.
    #[error("catalog has {count} entries, the limit is {limit}")]
    TooManyEntries {
        /// Entries found.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A catalog has no entries.
    #[error("catalog has no entries")]
    Empty,
    /// A `SKILL.md` file could not be parsed.
    #[error("invalid SKILL.md: {0}")]
    SkillMd(String),
    /// A catalog name (the path segment) is invalid.
    #[error("invalid catalog name `{0}`: use 1-64 of [A-Za-z0-9_.-]")]
    Name(String),
}

/// One invalid entry of a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadEntry {
    /// Position in the catalog (across pages, in page order).
    pub index: usize,
    /// The name it gives, when it gives a string.
    pub name: Option<String>,
    /// JSON path of the offending field, e.g. `tools[3].name`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

fn invalid_message(bad: &[BadEntry]) -> String {
    let list: Vec<String> = bad
        .iter()
        .map(|b| format!("`{}`: {}", b.field, b.reason))
        .collect();
    match bad.len() {
        1 => format!("invalid catalog field {}", list.join("")),
        n => format!("{n} invalid catalog entries: {}", list.join("; ")),
    }
}

/// Where an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// An MCP tool.
    Tool,
    /// An Agent Skill (`SKILL.md`).
    Skill,
    /// A skill of an A2A agent card.
    AgentSkill,
}

/// How an entry's read-only flag was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadOnlySource {
    /// MCP `annotations.readOnlyHint`.
    Hint,
    /// Classified from name, description and schema.
    Classified,
}

/// One tool or skill of a catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Unique name within the catalog (MCP `name`, skill `name`, A2A `id`).
    pub name: String,
    /// Human title, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What the entry does.
    pub description: String,
    /// JSON Schema of the arguments (`{"type": "object"}` when none).
    pub input_schema: Value,
    /// Kind of entry.
    pub kind: EntryKind,
    /// Whether the entry only reads.
    pub read_only: bool,
    /// Where `read_only` came from.
    pub read_only_source: ReadOnlySource,
    /// MCP `destructiveHint`, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive: Option<bool>,
    /// The annotation `trustedOutput: true`: the entry's results are
    /// trusted data (values an agent takes from them are not traced as
    /// untrusted). Off by default: web pages, mail, files and messages
    /// carry text anyone may have written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trusted_output: bool,
    /// Tools a skill may use (`allowed-tools`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_tools: Vec<String>,
}

impl Entry {
    /// Names of the top-level properties of the input schema, sorted.
    pub fn parameter_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .input_schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        names.sort_unstable();
        names
    }

    /// The schema of one parameter.
    pub fn parameter(&self, name: &str) -> Option<&Value> {
        self.input_schema.get("properties")?.get(name)
    }
}

/// A validated catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// The entries, in registration order.
    pub entries: Vec<Entry>,
}

impl Catalog {
    /// Looks up an entry by name.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The canonical text of every entry, in order, as the model embeds it.
    pub fn texts(&self) -> Vec<String> {
        self.entries.iter().map(entry_text).collect()
    }
}

/// Checks a catalog name used in `/v1/catalogs/{name}`.
pub fn validate_catalog_name(name: &str) -> Result<(), CatalogError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(CatalogError::Name(name.to_string()))
    }
}

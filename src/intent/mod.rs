//! The intent: what a person asked an agent to do, as AuthZEN quads (one
//! evaluation per requested action), the catalog tools that fulfil it, the
//! entities found in the request and the RFC 9396 `authorization_details`
//! an authorization server can put into the delegated token.
//!
//! The subject of an intent always comes from the authenticated caller,
//! never from the request text.

pub mod authzen;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use authzen::{Action, Decision, Object, Resource, Subject};

/// The intent extracted from one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// Who the agent acts for; from the caller, never from the prompt.
    pub subject: Subject,
    /// One AuthZEN evaluation (action, resource, context) per granted
    /// side-effecting tool.
    pub evaluations: Vec<Evaluation>,
    /// Catalog entries that fulfil the request, with their role.
    pub tools: Vec<ToolGrant>,
    /// Entities found in the request, with character offsets.
    pub entities: Vec<Entity>,
    /// The clauses the request was split into.
    pub clauses: Vec<Clause>,
    /// The strongest speech act of the request
    /// (delegation > action > question).
    pub speech_act: SpeechAct,
    /// Set when the request hands control to instructions found in data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_ended: Option<OpenEnded>,
    /// Which model produced the intent, and the thresholds it used.
    pub model: ModelInfo,
}

/// One AuthZEN quad without its subject (the intent's subject applies).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The tool's name.
    pub action: Action,
    /// What the tool acts on, with the argument values the request fixed.
    pub resource: Resource,
    /// Evidence: the clause, its score and the spans used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Object>,
}

/// Why a catalog entry is part of the intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolRole {
    /// A side-effecting tool the request asks for.
    Requested,
    /// A read-only tool the request asks for (a question, a lookup).
    Read,
    /// A read-only tool the request needs only implicitly.
    Supporting,
}

/// A catalog entry granted or tolerated by the intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolGrant {
    /// The entry's name in the catalog.
    pub name: String,
    /// Calibrated relevance probability of the entry for its clause, plus
    /// the verb boost when the entry's name holds the requested verb
    /// (`model.verb_boost`); at most 1.
    pub score: f32,
    /// Why it is part of the intent.
    pub role: ToolRole,
    /// Whether the entry has side effects.
    pub side_effecting: bool,
    /// Index of the clause in [`Intent::clauses`] it serves.
    pub clause: usize,
}

/// Entity labels, see `fixtures/ANNOTATION.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntityLabel {
    /// The verb of a requested operation.
    Action,
    /// A person's name.
    Person,
    /// A company or organisation.
    Org,
    /// An email address.
    Email,
    /// A phone number.
    Phone,
    /// A URL.
    Url,
    /// A place.
    Location,
    /// A date or time.
    Datetime,
    /// An amount with a currency.
    Money,
    /// A count or measure.
    Quantity,
    /// A bank or payment account, IBAN or card.
    Account,
    /// A file, folder or document.
    File,
    /// A product or item.
    Product,
    /// A chat channel or group.
    Channel,
    /// An identified object instance.
    Resource,
}

impl EntityLabel {
    /// All labels, in the order of the model's BIO tags.
    pub const ALL: [EntityLabel; 15] = [
        Self::Action,
        Self::Person,
        Self::Org,
        Self::Email,
        Self::Phone,
        Self::Url,
        Self::Location,
        Self::Datetime,
        Self::Money,
        Self::Quantity,
        Self::Account,
        Self::File,
        Self::Product,
        Self::Channel,
        Self::Resource,
    ];

    /// The upper-case wire name, e.g. `DATETIME`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Action => "ACTION",
            Self::Person => "PERSON",
            Self::Org => "ORG",
            Self::Email => "EMAIL",
            Self::Phone => "PHONE",
            Self::Url => "URL",
            Self::Location => "LOCATION",
            Self::Datetime => "DATETIME",
            Self::Money => "MONEY",
            Self::Quantity => "QUANTITY",
            Self::Account => "ACCOUNT",
            Self::File => "FILE",
            Self::Product => "PRODUCT",
            Self::Channel => "CHANNEL",
            Self::Resource => "RESOURCE",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == name)
    }
}

/// Where an entity was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntitySource {
    /// The NER model alone.
    Model,
    /// A shape validator alone (email, URL, IBAN, …).
    Validator,
    /// Both agree.
    Both,
}

/// An entity found in the request text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// What the entity is.
    pub label: EntityLabel,
    /// The exact text of the span.
    pub text: String,
    /// Start offset in Unicode scalar values (characters).
    pub start: usize,
    /// End offset (exclusive) in characters.
    pub end: usize,
    /// Confidence in `[0, 1]`.
    pub score: f32,
    /// Which recogniser found it.
    pub source: EntitySource,
}

/// The speech act of a clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpeechAct {
    /// A request for information; grants no side effects.
    Question,
    /// A request to do something.
    Action,
    /// A hand-over to instructions found in data.
    Delegation,
}

impl SpeechAct {
    /// All speech acts, in the model's output order.
    pub const ALL: [SpeechAct; 3] = [Self::Question, Self::Action, Self::Delegation];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Question => "question",
            Self::Action => "action",
            Self::Delegation => "delegation",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// One clause of the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clause {
    /// The clause text.
    pub text: String,
    /// Start offset in characters.
    pub start: usize,
    /// End offset (exclusive) in characters.
    pub end: usize,
    /// Its speech act.
    pub speech_act: SpeechAct,
    /// Probability of that speech act.
    pub score: f32,
}

/// How an open-ended (delegating) intent is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenEndedPolicy {
    /// Side-effecting steps need a human approval.
    #[default]
    RequireApproval,
    /// Side-effecting steps are tolerated with a warning.
    Warn,
    /// Side-effecting steps are denied.
    DenySideEffects,
}

impl OpenEndedPolicy {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequireApproval => "require_approval",
            Self::Warn => "warn",
            Self::DenySideEffects => "deny_side_effects",
        }
    }
}

/// Marks an intent whose actions are decided by data, not by the person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenEnded {
    /// The data the request delegates to, e.g. `email from Ana`.
    pub source: String,
    /// The index of the delegating clause.
    pub clause: usize,
    /// How side-effecting steps of this intent are enforced.
    pub enforcement: OpenEndedPolicy,
}

/// The model and thresholds behind an intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Model name from its `config.json`.
    pub name: String,
    /// sha256 of the ONNX file (first 16 hex digits).
    pub sha256: String,
    /// Relevance probability a side-effecting tool needs to be granted.
    pub grant_threshold: f32,
    /// Relevance probability a read-only tool needs to be listed.
    pub read_threshold: f32,
    /// Added to a tool's score when its name holds the verb of the
    /// requested action (0 when disabled; absent in intents stored before
    /// it existed).
    #[serde(default)]
    pub verb_boost: f32,
}

/// One RFC 9396 authorization detail of type `authzen_evaluations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationDetail {
    /// Always `authzen_evaluations`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A whole AuthZEN batch request in the 1.0 array form.
    pub request: EvaluationsRequest,
}

/// An AuthZEN batch evaluations request with a default subject and context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationsRequest {
    /// The default subject of every evaluation.
    pub subject: Subject,
    /// Default context; carries `workflow_id` once the intent is stored.
    #[serde(default, skip_serializing_if = "Object::is_empty")]
    pub context: Object,
    /// The evaluations the token allows.
    pub evaluations: Vec<Evaluation>,
}

impl Intent {
    /// The RFC 9396 `authorization_details` array for this intent; the
    /// workflow id, when there is one, goes into the request's context.
    pub fn authorization_details(&self, workflow_id: Option<&str>) -> Vec<AuthorizationDetail> {
        let mut context = Object::new();
        if let Some(id) = workflow_id {
            context.insert("workflow_id".into(), Value::String(id.into()));
        }
        vec![AuthorizationDetail {
            kind: "authzen_evaluations".into(),
            request: EvaluationsRequest {
                subject: self.subject.clone(),
                context,
                evaluations: self
                    .evaluations
                    .iter()
                    .map(|e| Evaluation {
                        action: e.action.clone(),
                        resource: e.resource.clone(),
                        context: None,
                    })
                    .collect(),
            },
        }]
    }

    /// Names of the side-effecting tools the intent grants.
    pub fn granted(&self) -> impl Iterator<Item = &str> {
        self.tools
            .iter()
            .filter(|t| t.role == ToolRole::Requested)
            .map(|t| t.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Intent {
        Intent {
            subject: Subject::new("user", "alice@example.com"),
            evaluations: vec![Evaluation {
                action: Action::new("send_email"),
                resource: Resource::new("email", "bob@example.com"),
                context: Some(Object::from_iter([("score".into(), json!(0.9))])),
            }],
            tools: vec![ToolGrant {
                name: "send_email".into(),
                score: 0.9,
                role: ToolRole::Requested,
                side_effecting: true,
                clause: 0,
            }],
            entities: vec![],
            clauses: vec![],
            speech_act: SpeechAct::Action,
            open_ended: None,
            model: ModelInfo {
                name: "m".into(),
                sha256: "0".into(),
                grant_threshold: 0.5,
                read_threshold: 0.5,
                verb_boost: 0.0,
            },
        }
    }

    #[test]
    fn authorization_details_use_the_array_form() {
        let details = sample().authorization_details(Some("wf-1"));
        let v = serde_json::to_value(&details).unwrap();
        assert_eq!(
            v,
            json!([{"type": "authzen_evaluations", "request": {
                "subject": {"type": "user", "id": "alice@example.com"},
                "context": {"workflow_id": "wf-1"},
                "evaluations": [{"action": {"name": "send_email"},
                                 "resource": {"type": "email", "id": "bob@example.com"}}]}}])
        );
    }

    #[test]
    fn labels_round_trip() {
        for l in EntityLabel::ALL {
            assert_eq!(EntityLabel::parse(l.as_str()), Some(l));
            assert_eq!(serde_json::to_value(l).unwrap(), json!(l.as_str()));
        }
        for a in SpeechAct::ALL {
            assert_eq!(SpeechAct::parse(a.as_str()), Some(a));
        }
    }

    #[test]
    fn granted_lists_only_requested_tools() {
        let mut i = sample();
        i.tools.push(ToolGrant {
            name: "lookup".into(),
            score: 0.7,
            role: ToolRole::Supporting,
            side_effecting: false,
            clause: 0,
        });
        assert_eq!(i.granted().collect::<Vec<_>>(), vec!["send_email"]);
    }
}

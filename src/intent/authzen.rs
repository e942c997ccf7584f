//! OpenID AuthZEN Authorization API 1.0 entities, with the exact wire field
//! names: Subject and Resource are `{type, id, properties?}`, Action is
//! `{name, properties?}`, Context is any JSON object, a Decision is
//! `{decision, context?}`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JSON object, as AuthZEN uses for `properties` and `context`.
pub type Object = Map<String, Value>;

/// The AuthZEN subject: who asks (a user, an agent, a service).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    /// The kind of subject, e.g. `user` or `agent`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The subject's identifier within its kind.
    pub id: String,
    /// Extra attributes of the subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Object>,
}

/// The AuthZEN resource: what the action touches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// The kind of resource, e.g. `email` or `tool`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The resource's identifier, `*` when the request names none.
    pub id: String,
    /// Extra attributes of the resource, such as argument constraints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Object>,
}

/// The AuthZEN action: what is done to the resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// The action's name; for a tool, the tool's name.
    pub name: String,
    /// Extra attributes of the action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Object>,
}

/// An AuthZEN access decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// `true` permits, `false` denies.
    pub decision: bool,
    /// Reasons and advice that accompany the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Object>,
}

impl Subject {
    /// A subject with no properties.
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            id: id.into(),
            properties: None,
        }
    }
}

impl Resource {
    /// A resource with no properties.
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            id: id.into(),
            properties: None,
        }
    }
}

impl Action {
    /// An action with no properties.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            properties: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_names_are_authzen_names() {
        let s = Subject::new("user", "alice@example.com");
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"type": "user", "id": "alice@example.com"})
        );
        let r: Resource =
            serde_json::from_value(json!({"type": "tool", "id": "x", "properties": {"a": 1}}))
                .unwrap();
        assert_eq!(r.kind, "tool");
        assert_eq!(r.properties.unwrap()["a"], 1);
    }

    #[test]
    fn ill_typed_entities_are_rejected() {
        assert!(serde_json::from_value::<Subject>(json!("alice")).is_err());
        assert!(serde_json::from_value::<Action>(json!({"name": 123})).is_err());
        assert!(serde_json::from_value::<Subject>(json!({"type": "user"})).is_err());
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let a: Action = serde_json::from_value(json!({"name": "read", "extra": true})).unwrap();
        assert_eq!(a, Action::new("read"));
    }
}

//! AuthZEN request parsing with the specification's validation rules: a
//! subject or resource is an object with string `type` and `id`, an action
//! an object with a string `name`, `properties` and `context` are objects;
//! anything missing or ill-typed is a 400. Unknown fields are ignored.
//! Batch requests merge top-level defaults into each item; the defaults'
//! context is shared by every item, not copied. [`Limits`] bound the items
//! of a batch and the size of each context.

use serde_json::{Map, Value};
use std::sync::Arc;

use super::PdpError;
use crate::intent::{Action, Object, Resource, Subject};

/// One complete evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Who asks.
    pub subject: Subject,
    /// What for.
    pub action: Action,
    /// On what.
    pub resource: Resource,
    /// Environment (shared with the batch's defaults when it came from them).
    pub context: Arc<Object>,
}

/// A batch item before defaults are applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Partial {
    /// Subject, if given.
    pub subject: Option<Subject>,
    /// Action, if given.
    pub action: Option<Action>,
    /// Resource, if given.
    pub resource: Option<Resource>,
    /// Context, if given.
    pub context: Option<Arc<Object>>,
}

/// Bounds on what one request may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Items of a batch at most.
    pub max_batch_items: usize,
    /// Bytes of one `context` (as compact JSON) at most.
    pub max_context_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_batch_items: 1000,
            max_context_bytes: 64 * 1024,
        }
    }
}

/// Bytes of `v` as compact JSON, counted without allocating, stopping
/// early once past `cap`.
pub fn json_size(v: &Value, cap: usize) -> usize {
    struct Count {
        n: usize,
        cap: usize,
    }
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.n += buf.len();
            if self.n > self.cap {
                return Err(std::io::Error::other("over the cap"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count { n: 0, cap };
    let _ = serde_json::to_writer(&mut c, v);
    c.n
}

/// How a batch stops early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Semantic {
    /// Evaluate every item.
    #[default]
    ExecuteAll,
    /// Stop after the first deny.
    DenyOnFirstDeny,
    /// Stop after the first permit.
    PermitOnFirstPermit,
}

/// A parsed batch request.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Top-level defaults.
    pub defaults: Partial,
    /// The items; empty means "a single evaluation of the defaults".
    pub items: Vec<Partial>,
    /// Early-stop semantic.
    pub semantic: Semantic,
}

fn bad(msg: impl Into<String>) -> PdpError {
    PdpError::BadRequest(msg.into())
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, PdpError> {
    v.as_object()
        .ok_or_else(|| bad(format!("`{what}` must be an object")))
}

fn string(obj: &Map<String, Value>, key: &str, what: &str) -> Result<String, PdpError> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(bad(format!("`{what}.{key}` must be a string"))),
        None => Err(bad(format!("`{what}.{key}` is required"))),
    }
}

fn properties(obj: &Map<String, Value>, what: &str) -> Result<Option<Object>, PdpError> {
    match obj.get("properties") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(p)) => Ok(Some(p.clone())),
        Some(_) => Err(bad(format!("`{what}.properties` must be an object"))),
    }
}

/// Parses a subject.
pub fn subject(v: &Value, what: &str) -> Result<Subject, PdpError> {
    let o = object(v, what)?;
    Ok(Subject {
        kind: string(o, "type", what)?,
        id: string(o, "id", what)?,
        properties: properties(o, what)?,
    })
}

/// Parses a resource.
pub fn resource(v: &Value, what: &str) -> Result<Resource, PdpError> {
    let o = object(v, what)?;
    Ok(Resource {
        kind: string(o, "type", what)?,
        id: string(o, "id", what)?,
        properties: properties(o, what)?,
    })
}

/// Parses an action.
pub fn action(v: &Value, what: &str) -> Result<Action, PdpError> {
    let o = object(v, what)?;
    Ok(Action {
        name: string(o, "name", what)?,
        properties: properties(o, what)?,
    })
}

fn context(v: &Value, what: &str, limits: &Limits) -> Result<Arc<Object>, PdpError> {
    match v {
        Value::Object(o) => {
            if json_size(v, limits.max_context_bytes) > limits.max_context_bytes {
                return Err(bad(format!(
                    "`{what}` is larger than {} bytes",
                    limits.max_context_bytes
                )));
            }
            Ok(Arc::new(o.clone()))
        }
        Value::Null => Ok(Arc::new(Object::new())),
        Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Array(_) => {
            Err(bad(format!("`{what}` must be an object")))
        }
    }
}

/// Parses the optional parts of an evaluation object.
pub fn partial(v: &Value, at: &str) -> Result<Partial, PdpError> {
    partial_with(v, at, &Limits::default())
}

/// [`partial`] within `limits`.
pub fn partial_with(v: &Value, at: &str, limits: &Limits) -> Result<Partial, PdpError> {
    let o = object(v, at)?;
    let name = |k: &str| {
        if at.is_empty() {
            k.to_string()
        } else {
            format!("{at}.{k}")
        }
    };
    Ok(Partial {
        subject: o
            .get("subject")
            .map(|s| subject(s, &name("subject")))
            .transpose()?,
        action: o
            .get("action")
            .map(|a| action(a, &name("action")))
            .transpose()?,
        resource: o
            .get("resource")
            .map(|r| resource(r, &name("resource")))
            .transpose()?,
        context: o
            .get("context")
            .map(|c| context(c, &name("context"), limits))
            .transpose()?,
    })
}

impl Partial {
    /// Completes this item with `defaults`; names what is still missing.
    /// A context taken from the defaults is shared, not copied.
    pub fn complete(self, defaults: &Partial) -> Result<Evaluation, PdpError> {
        let missing = |k: &str| {
            bad(format!(
                "`{k}` is required (in the item or as a top-level default)"
            ))
        };
        Ok(Evaluation {
            subject: self
                .subject
                .or_else(|| defaults.subject.clone())
                .ok_or_else(|| missing("subject"))?,
            action: self
                .action
                .or_else(|| defaults.action.clone())
                .ok_or_else(|| missing("action"))?,
            resource: self
                .resource
                .or_else(|| defaults.resource.clone())
                .ok_or_else(|| missing("resource"))?,
            context: self
                .context
                .or_else(|| defaults.context.clone())
                .unwrap_or_default(),
        })
    }
}

/// Parses a single evaluation request.
pub fn single(body: &Value) -> Result<Evaluation, PdpError> {
    single_with(body, &Limits::default())
}

/// [`single`] within `limits`.
pub fn single_with(body: &Value, limits: &Limits) -> Result<Evaluation, PdpError> {
    partial_with(body, "", limits)?.complete(&Partial::default())
}

/// Parses a batch request.
pub fn batch(body: &Value) -> Result<Batch, PdpError> {
    batch_with(body, &Limits::default())
}

/// [`batch`] within `limits`.
pub fn batch_with(body: &Value, limits: &Limits) -> Result<Batch, PdpError> {
    let defaults = partial_with(body, "", limits)?;
    let items = match body.get("evaluations") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(items)) if items.len() > limits.max_batch_items => {
            return Err(bad(format!(
                "`evaluations` has {} items; at most {} are accepted",
                items.len(),
                limits.max_batch_items
            )));
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| partial_with(v, &format!("evaluations[{i}]"), limits))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("`evaluations` must be an array")),
    };
    let semantic = match body
        .get("options")
        .and_then(|o| o.get("evaluations_semantic"))
    {
        None | Some(Value::Null) => Semantic::ExecuteAll,
        Some(Value::String(s)) => match s.as_str() {
            "execute_all" => Semantic::ExecuteAll,
            "deny_on_first_deny" => Semantic::DenyOnFirstDeny,
            "permit_on_first_permit" => Semantic::PermitOnFirstPermit,
            other => {
                return Err(bad(format!(
                    "unknown `options.evaluations_semantic` `{other}`"
                )));
            }
        },
        Some(_) => return Err(bad("`options.evaluations_semantic` must be a string")),
    };
    Ok(Batch {
        defaults,
        items,
        semantic,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_single_evaluation_ignoring_unknown_fields() {
        let e = single(&json!({"subject": {"type": "user", "id": "alice", "x": 1},
            "action": {"name": "read"}, "resource": {"type": "record", "id": "r1", "properties": {"status": "active"}},
            "extra": true}))
        .unwrap();
        assert_eq!(e.subject.id, "alice");
        assert_eq!(e.resource.properties.unwrap()["status"], "active");
        assert!(e.context.is_empty());
    }

    #[test]
    fn rejects_missing_and_ill_typed_fields() {
        let ok_action = json!({"name": "read"});
        let ok_res = json!({"type": "r", "id": "1"});
        for (body, needle) in [
            (
                json!({"action": ok_action, "resource": ok_res}),
                "`subject`",
            ),
            (
                json!({"subject": "alice", "action": ok_action, "resource": ok_res}),
                "`subject` must be an object",
            ),
            (
                json!({"subject": {"type": "user"}, "action": ok_action, "resource": ok_res}),
                "`subject.id`",
            ),
            (
                json!({"subject": {"type": 1, "id": "a"}, "action": ok_action, "resource": ok_res}),
                "`subject.type`",
            ),
            (
                json!({"subject": {"type": "u", "id": "a"}, "action": {"name": 123}, "resource": ok_res}),
                "`action.name`",
            ),
            (
                json!({"subject": {"type": "u", "id": "a"}, "action": ok_action, "resource": {"id": "1"}}),
                "`resource.type`",
            ),
            (
                json!({"subject": {"type": "u", "id": "a", "properties": []}, "action": ok_action, "resource": ok_res}),
                "properties",
            ),
            (
                json!({"subject": {"type": "u", "id": "a"}, "action": ok_action, "resource": ok_res, "context": 3}),
                "`context`",
            ),
            (json!([]), "must be an object"),
        ] {
            let err = single(&body).unwrap_err().to_string();
            assert!(err.contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn batch_items_take_defaults_and_override_them() {
        let b = batch(&json!({
            "subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "context": {"a": 1},
            "evaluations": [{"resource": {"type": "r", "id": "1"}}, {"action": {"name": "write"}, "resource": {"type": "r", "id": "2"}, "context": {"b": 2}}],
            "options": {"evaluations_semantic": "deny_on_first_deny"}
        }))
        .unwrap();
        assert_eq!(b.semantic, Semantic::DenyOnFirstDeny);
        let items: Vec<Evaluation> = b
            .items
            .clone()
            .into_iter()
            .map(|i| i.complete(&b.defaults).unwrap())
            .collect();
        assert_eq!(items[0].action.name, "read");
        assert_eq!(items[0].context["a"], 1);
        assert_eq!(items[1].action.name, "write");
        assert!(items[1].context.get("a").is_none());
        let err = b.items[0]
            .clone()
            .complete(&Partial::default())
            .unwrap_err();
        assert!(err.to_string().contains("subject"));
        assert!(batch(&json!({"evaluations": {}})).is_err());
        assert!(batch(&json!({"options": {"evaluations_semantic": "nope"}})).is_err());
    }

    #[test]
    fn batches_and_contexts_are_bounded_and_defaults_shared() {
        let limits = Limits {
            max_batch_items: 3,
            max_context_bytes: 64,
        };
        let item = json!({"resource": {"type": "r", "id": "1"}});
        let body = |n: usize, ctx: Value| {
            json!({"subject": {"type": "u", "id": "a"}, "action": {"name": "read"},
                   "context": ctx, "evaluations": vec![item.clone(); n]})
        };
        let b = batch_with(&body(3, json!({"big": "x".repeat(40)})), &limits).unwrap();
        let items: Vec<Evaluation> = b
            .items
            .iter()
            .map(|i| i.clone().complete(&b.defaults).unwrap())
            .collect();
        assert!(Arc::ptr_eq(&items[0].context, &items[2].context));
        let err = batch_with(&body(4, json!({})), &limits).unwrap_err();
        assert!(err.to_string().contains("at most 3"), "{err}");
        let err = batch_with(&body(1, json!({"big": "x".repeat(80)})), &limits).unwrap_err();
        assert!(err.to_string().contains("larger than 64 bytes"), "{err}");
        let single_body = json!({"subject": {"type": "u", "id": "a"}, "action": {"name": "read"},
                                 "resource": {"type": "r", "id": "1"}, "context": {"big": "x".repeat(80)}});
        assert!(single_with(&single_body, &limits).is_err());
        assert!(single(&single_body).is_ok());
        assert_eq!(
            json_size(&json!({"a": [1, "b"]}), 1000),
            r#"{"a":[1,"b"]}"#.len()
        );
    }
}

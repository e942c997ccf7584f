//! Base policies in Cedar. `--policies DIR` loads every `*.cedar` file of
//! the directory and, when present, `entities.json` (Cedar's entity JSON
//! format: the PDP's own attributes, roles and parents).
//!
//! AuthZEN → Cedar mapping:
//!
//! | AuthZEN | Cedar |
//! |---|---|
//! | `subject {type, id}` | `principal` = `<type>::"<id>"` |
//! | `action {name}` | `action` = `Action::"<name>"` |
//! | `resource {type, id}` | `resource` = `<type>::"<id>"` |
//! | `subject.properties` | `context.subject` (record) |
//! | `action.properties` | `context.action` (record) |
//! | `resource.properties` | `context.resource` (record) |
//! | `context` | `context.request` (record) |
//!
//! A type that is not a Cedar identifier has every other character
//! replaced by `_` (`api-gateway` → `api_gateway`), and a leading digit or
//! a Cedar reserved word gets a `_` prefix (`in` → `_in`). JSON values Cedar cannot
//! hold are adapted: `null` and Cedar's escape keys (`__entity`, `__extn`,
//! `__expr`) are dropped, a non-integer number becomes its decimal string. Attributes of `principal` and `resource` come from the
//! entities file only, so what a PEP sends cannot raise its own privileges.
//! Each request is evaluated against the slice of the policies whose scope
//! can match its action and resource (see `slices`).

use cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, Request, RestrictedExpression,
};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use super::PdpError;
use super::cache::BoundedCache;
use super::request::Evaluation;
use super::slices::Slices;

/// Slices kept per policy set (one per distinct action and resource pair).
const MAX_SLICES: usize = 4096;

/// A loaded policy set and its entities.
#[derive(Debug)]
pub struct BasePolicy {
    policies: PolicySet,
    slices: Slices,
    types: TypeNames,
    /// Each policy's `@id` annotation, or its generated id (read once:
    /// Cedar parses the annotation key on every lookup).
    names: HashMap<PolicyId, String>,
    entities: Entities,
    authorizer: Authorizer,
    /// Every entity of the entities file, as `(type, id)`, for search.
    known: Vec<(String, String)>,
    /// The tenant of each entity whose `attrs.tenant` names one (entities
    /// without it are shared by every tenant).
    owners: HashMap<(String, String), String>,
    /// Number of policies loaded.
    pub count: usize,
}

/// A Cedar decision with the policies that decided it.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDecision {
    /// Permit or deny.
    pub allowed: bool,
    /// Ids of the policies that determined the decision.
    pub policies: Vec<String>,
    /// Evaluation errors, if any policy failed.
    pub errors: Vec<String>,
}

/// A Cedar entity type name for an AuthZEN type.
pub fn type_name(kind: &str) -> String {
    let mut out: String = kind
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    const RESERVED: &[&str] = &[
        "in", "if", "then", "else", "true", "false", "is", "like", "has", "__cedar",
    ];
    if out.is_empty()
        || out.starts_with(|c: char| c.is_ascii_digit())
        || RESERVED.contains(&out.as_str())
    {
        out.insert(0, '_');
    }
    out
}

/// Parsed Cedar type names by AuthZEN type. Parsing a name runs Cedar's
/// parser, which costs more than evaluating a slice of policies; a PDP sees
/// few types, so they are kept (at most `MAX_TYPES`, then parsed each time).
#[derive(Debug)]
struct TypeNames(BoundedCache<String, EntityTypeName>);

const MAX_TYPES: usize = 1024;

impl TypeNames {
    fn new() -> Self {
        Self(BoundedCache::new(MAX_TYPES))
    }

    fn uid(&self, kind: &str, id: &str) -> Result<EntityUid, PdpError> {
        let t = self.0.get_or_try_insert(kind, || {
            EntityTypeName::from_str(&type_name(kind)).map_err(|e| {
                PdpError::BadRequest(format!("type `{kind}` cannot be a Cedar type: {e}"))
            })
        })?;
        Ok(EntityUid::from_type_name_and_id(t, EntityId::new(id)))
    }
}

/// Adapts JSON for Cedar: drops nulls and Cedar's escape keys, turns
/// non-integers into strings. Built directly as Cedar values (parsing
/// Cedar's JSON form would cost more than the policies themselves).
pub fn cedar_value(v: &Value) -> Option<RestrictedExpression> {
    match v {
        Value::Null => None,
        Value::Bool(b) => Some(RestrictedExpression::new_bool(*b)),
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => RestrictedExpression::new_long(i),
            None => RestrictedExpression::new_string(n.to_string()),
        }),
        Value::String(s) => Some(RestrictedExpression::new_string(s.clone())),
        Value::Array(items) => Some(RestrictedExpression::new_set(
            items.iter().filter_map(cedar_value),
        )),
        Value::Object(o) => record(Some(o)).ok(),
    }
}

fn record(props: Option<&Map<String, Value>>) -> Result<RestrictedExpression, PdpError> {
    let fields = props.into_iter().flatten().filter_map(|(k, v)| {
        if matches!(k.as_str(), "__entity" | "__extn" | "__expr") {
            return None;
        }
        cedar_value(v).map(|v| (k.clone(), v))
    });
    RestrictedExpression::new_record(fields)
        .map_err(|e| PdpError::BadRequest(format!("context cannot be expressed in Cedar: {e}")))
}

impl BasePolicy {
    /// Loads `*.cedar` and `entities.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, PdpError> {
        let io = |p: &Path, e: std::io::Error| PdpError::Policy(format!("`{}`: {e}", p.display()));
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(PdpError::Policy(format!(
                "no *.cedar file in `{}`",
                dir.display()
            )));
        }
        let mut text = String::new();
        for f in &files {
            text.push_str(&std::fs::read_to_string(f).map_err(|e| io(f, e))?);
            text.push('\n');
        }
        let policies =
            PolicySet::from_str(&text).map_err(|e| PdpError::Policy(format!("{e:?}")))?;
        let count = policies.policies().count();
        let entities_path = dir.join("entities.json");
        let (entities, known, owners) = if entities_path.is_file() {
            let raw = std::fs::read_to_string(&entities_path).map_err(|e| io(&entities_path, e))?;
            let json: Value = serde_json::from_str(&raw)
                .map_err(|e| PdpError::Policy(format!("`{}`: {e}", entities_path.display())))?;
            let known = json
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|e| {
                            let u = e.get("uid")?;
                            Some((
                                u.get("type")?.as_str()?.to_string(),
                                u.get("id")?.as_str()?.to_string(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let owners = json
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|e| {
                            let u = e.get("uid")?;
                            let tenant = e.get("attrs")?.get("tenant")?.as_str()?;
                            Some((
                                (
                                    u.get("type")?.as_str()?.to_string(),
                                    u.get("id")?.as_str()?.to_string(),
                                ),
                                tenant.to_string(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let entities = Entities::from_json_value(json, None)
                .map_err(|e| PdpError::Policy(format!("`{}`: {e}", entities_path.display())))?;
            (entities, known, owners)
        } else {
            (Entities::empty(), vec![], HashMap::new())
        };
        Ok(Self {
            slices: Slices::new(&policies, MAX_SLICES),
            types: TypeNames::new(),
            names: policies
                .policies()
                .map(|p| {
                    let name = p
                        .annotation("id")
                        .map_or_else(|| p.id().to_string(), str::to_string);
                    (p.id().clone(), name)
                })
                .collect(),
            policies,
            entities,
            authorizer: Authorizer::new(),
            known,
            owners,
            count,
        })
    }

    /// The tenant owning an entity of the entities file, if it names one.
    fn owner(&self, kind: &str, id: &str) -> Option<&str> {
        self.owners
            .get(&(type_name(kind), id.to_string()))
            .map(String::as_str)
    }

    /// Evaluates one request of `tenant`. The tenant is in the Cedar
    /// context as `context.tenant`; a request whose subject or resource is
    /// an entity of another tenant (`attrs.tenant`) is denied before any
    /// policy runs.
    pub fn decide(&self, tenant: &str, e: &Evaluation) -> Result<PolicyDecision, PdpError> {
        for (kind, id) in [
            (&e.subject.kind, &e.subject.id),
            (&e.resource.kind, &e.resource.id),
        ] {
            if self.owner(kind, id).is_some_and(|t| t != tenant) {
                return Ok(PolicyDecision {
                    allowed: false,
                    policies: vec![],
                    errors: vec![format!("`{kind}` `{id}` belongs to another tenant")],
                });
            }
        }
        let principal = self.types.uid(&e.subject.kind, &e.subject.id)?;
        let action = self.types.uid("Action", &e.action.name)?;
        let resource = self.types.uid(&e.resource.kind, &e.resource.id)?;
        let context = Context::from_pairs([
            (
                "subject".to_string(),
                record(e.subject.properties.as_ref())?,
            ),
            ("action".to_string(), record(e.action.properties.as_ref())?),
            (
                "resource".to_string(),
                record(e.resource.properties.as_ref())?,
            ),
            ("request".to_string(), record(Some(&e.context))?),
            (
                "tenant".to_string(),
                RestrictedExpression::new_string(tenant.to_string()),
            ),
        ])
        .map_err(|err| {
            PdpError::BadRequest(format!("context cannot be expressed in Cedar: {err}"))
        })?;
        let slice = self.slices.slice(&action, &resource);
        let policies = slice.as_deref().unwrap_or(&self.policies);
        let request = Request::new(principal, action, resource, context, None)
            .map_err(|err| PdpError::BadRequest(err.to_string()))?;
        let response = self
            .authorizer
            .is_authorized(&request, policies, &self.entities);
        let mut decided: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| {
                self.names
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| id.to_string())
            })
            .collect();
        // Cedar reports them in set order: sorted, a decision reads the same
        // every time.
        decided.sort();
        let mut errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        errors.sort();
        Ok(PolicyDecision {
            allowed: response.decision() == Decision::Allow,
            policies: decided,
            errors,
        })
    }

    /// Entities of the entities file whose Cedar type is `type_name(kind)`
    /// that `tenant` may see: its own (`attrs.tenant`) and shared ones.
    pub fn entities_of(&self, tenant: &str, kind: &str) -> Vec<String> {
        let t = type_name(kind);
        self.known
            .iter()
            .filter(|(k, id)| {
                *k == t
                    && self
                        .owners
                        .get(&(k.clone(), id.clone()))
                        .is_none_or(|o| o == tenant)
            })
            .map(|(_, id)| id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::{Action, Resource, Subject};
    use serde_json::json;

    fn dir(policy: &str, entities: Value) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("p.cedar"), policy).unwrap();
        std::fs::write(d.path().join("entities.json"), entities.to_string()).unwrap();
        d
    }

    fn eval(s: &str, a: &str, r: &str, props: Value) -> Evaluation {
        Evaluation {
            subject: Subject::new("user", s),
            action: Action::new(a),
            resource: Resource {
                kind: "record".into(),
                id: r.into(),
                properties: props.as_object().cloned(),
            },
            context: Default::default(),
        }
    }

    #[test]
    fn maps_entities_properties_and_roles() {
        let d = dir(
            r#"@id("read") permit(principal, action == Action::"read", resource);
               @id("admin-write") permit(principal, action == Action::"write", resource) when { principal.role == "admin" };
               @id("no-archived") forbid(principal, action == Action::"write", resource) when { context.resource has status && context.resource.status == "archived" };"#,
            json!([{"uid": {"type": "user", "id": "bob"}, "attrs": {"role": "admin"}, "parents": []},
                   {"uid": {"type": "user", "id": "alice"}, "attrs": {"role": "user"}, "parents": []}]),
        );
        let p = BasePolicy::load(d.path()).unwrap();
        assert_eq!(p.count, 3);
        assert!(
            p.decide("t", &eval("alice", "read", "r1", json!({})))
                .unwrap()
                .allowed
        );
        assert!(
            !p.decide("t", &eval("alice", "write", "r1", json!({})))
                .unwrap()
                .allowed
        );
        let d_bob = p
            .decide("t", &eval("bob", "write", "r1", json!({})))
            .unwrap();
        assert!(d_bob.allowed);
        assert_eq!(d_bob.policies, vec!["admin-write"]);
        assert!(
            !p.decide(
                "t",
                &eval(
                    "bob",
                    "write",
                    "r1",
                    json!({"status": "archived", "n": 1.5, "z": null})
                )
            )
            .unwrap()
            .allowed
        );
        assert_eq!(p.entities_of("t", "user").len(), 2);
    }

    #[test]
    fn the_tenant_is_in_the_context_and_scopes_entities() {
        let d = dir(
            r#"@id("own-tenant") permit(principal, action == Action::"read", resource) when { context.tenant == "acme" || context.tenant == "globex" };"#,
            json!([{"uid": {"type": "record", "id": "a-doc"}, "attrs": {"tenant": "acme"}, "parents": []},
                   {"uid": {"type": "record", "id": "b-doc"}, "attrs": {"tenant": "globex"}, "parents": []},
                   {"uid": {"type": "record", "id": "shared"}, "attrs": {}, "parents": []}]),
        );
        let p = BasePolicy::load(d.path()).unwrap();
        // The policy sees the caller's tenant.
        assert!(
            p.decide("acme", &eval("u", "read", "r1", json!({})))
                .unwrap()
                .allowed
        );
        assert!(
            !p.decide("initech", &eval("u", "read", "r1", json!({})))
                .unwrap()
                .allowed
        );
        // Search candidates: a tenant's own entities and shared ones only.
        let mut a = p.entities_of("acme", "record");
        a.sort();
        assert_eq!(a, vec!["a-doc", "shared"]);
        let mut b = p.entities_of("globex", "record");
        b.sort();
        assert_eq!(b, vec!["b-doc", "shared"]);
        // Naming another tenant's entity is denied before any policy.
        let d = p
            .decide("globex", &eval("u", "read", "a-doc", json!({})))
            .unwrap();
        assert!(!d.allowed);
        assert!(d.errors[0].contains("another tenant"), "{d:?}");
        assert!(
            p.decide("acme", &eval("u", "read", "a-doc", json!({})))
                .unwrap()
                .allowed
        );
    }

    #[test]
    fn type_names_are_sanitised() {
        assert_eq!(type_name("api-gateway"), "api_gateway");
        assert_eq!(type_name("9x"), "_9x");
        assert_eq!(type_name(""), "_");
        assert_eq!(type_name("in"), "_in");
        assert_eq!(type_name("__cedar"), "___cedar");
    }

    #[test]
    fn bad_policy_dirs_fail_clearly() {
        let d = tempfile::tempdir().unwrap();
        assert!(
            BasePolicy::load(d.path())
                .unwrap_err()
                .to_string()
                .contains("no *.cedar")
        );
        let d = dir("permit(", json!([]));
        assert!(BasePolicy::load(d.path()).is_err());
    }

    #[test]
    fn slicing_changes_no_decision() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/authzen/bench");
        let sliced = BasePolicy::load(&dir).unwrap();
        let mut whole = BasePolicy::load(&dir).unwrap();
        whole.slices = Slices::new(&PolicySet::new(), 0);
        let catalog: Value = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/intents/travel/catalog.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let mut tools: Vec<String> = catalog["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        tools.push("not_in_any_policy".into());
        let mut permits = 0;
        for agent in ["travel-agent", "planner", "mailer", "stranger"] {
            for tool in &tools {
                for price in [10, 5_300, 99_999] {
                    let mut e = Evaluation {
                        subject: Subject::new("agent", agent),
                        action: Action::new("tools/call"),
                        resource: Resource {
                            kind: "tool".into(),
                            id: tool.clone(),
                            properties: json!({"arguments": {"max_price": price}})
                                .as_object()
                                .cloned(),
                        },
                        context: Default::default(),
                    };
                    for with_workflow in [false, true] {
                        if with_workflow {
                            std::sync::Arc::make_mut(&mut e.context)
                                .insert("workflow_id".into(), json!("w"));
                        }
                        let (a, b) = (
                            sliced.decide("t", &e).unwrap(),
                            whole.decide("t", &e).unwrap(),
                        );
                        assert_eq!(a, b, "{agent} {tool} {price}");
                        permits += usize::from(a.allowed);
                    }
                }
            }
        }
        // The set decides both ways on these requests.
        assert!(permits > 10 && permits < 300, "{permits}");
    }
}

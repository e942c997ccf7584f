//! Turns the three accepted catalog bodies into a validated [`Catalog`].

use serde_json::{Map, Value, json};
use std::collections::HashSet;

use super::read_only::classify_read_only;
use super::skill_md::{parse_skill_md, valid_skill_name};
use super::{Catalog, CatalogError, Entry, EntryKind, ReadOnlySource};

/// Size limits of a catalog.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum number of entries.
    pub max_entries: usize,
    /// Maximum characters of one description.
    pub max_description: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 1024,
            max_description: 8192,
        }
    }
}

fn field(path: impl Into<String>, reason: impl Into<String>) -> CatalogError {
    CatalogError::Field {
        field: path.into(),
        reason: reason.into(),
    }
}

fn req_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a str, CatalogError> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(field(format!("{path}.{key}"), "must be a string")),
        None => Err(field(format!("{path}.{key}"), "is required")),
    }
}

fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, CatalogError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(field(format!("{path}.{key}"), "must be a string")),
    }
}

fn valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn as_items<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>, CatalogError> {
    v.as_array().ok_or_else(|| field(path, "must be an array"))
}

fn as_object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, CatalogError> {
    v.as_object()
        .ok_or_else(|| field(path, "must be an object"))
}

/// Parses an MCP `tools/list` result, an Agent Skills list or an A2A agent
/// card, and validates names, sizes and uniqueness.
pub fn parse_catalog(body: &Value, limits: Limits) -> Result<Catalog, CatalogError> {
    let entries = match body {
        Value::Object(obj) if obj.contains_key("tools") => parse_mcp(&obj["tools"])?,
        Value::Object(obj) if obj.contains_key("skills") => {
            let skills = as_items(&obj["skills"], "skills")?;
            let card_keys = [
                "url",
                "protocolVersion",
                "capabilities",
                "defaultInputModes",
            ];
            let is_card = card_keys.iter().any(|k| obj.contains_key(*k))
                || (!skills.is_empty() && skills.iter().all(|s| s.get("id").is_some()));
            if is_card {
                parse_a2a(skills)?
            } else {
                parse_skills(skills, "skills")?
            }
        }
        Value::Array(items) => parse_skills(items, "")?,
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Object(_) => {
            return Err(CatalogError::UnknownShape);
        }
    };
    if entries.is_empty() {
        return Err(CatalogError::Empty);
    }
    if entries.len() > limits.max_entries {
        return Err(CatalogError::TooManyEntries {
            count: entries.len(),
            limit: limits.max_entries,
        });
    }
    let mut seen = HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        if !seen.insert(e.name.as_str()) {
            return Err(CatalogError::Duplicate(e.name.clone()));
        }
        if e.description.chars().count() > limits.max_description {
            return Err(field(
                format!("[{i}].description"),
                format!("longer than {} characters", limits.max_description),
            ));
        }
    }
    Ok(Catalog { entries })
}

fn parse_mcp(tools: &Value) -> Result<Vec<Entry>, CatalogError> {
    let tools = as_items(tools, "tools")?;
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let path = format!("tools[{i}]");
        let obj = as_object(tool, &path)?;
        let name = req_str(obj, "name", &path)?;
        if !valid_tool_name(name) {
            return Err(field(
                format!("{path}.name"),
                format!("`{name}` must be 1-128 of [A-Za-z0-9_.-]"),
            ));
        }
        let description = opt_str(obj, "description", &path)?.unwrap_or_default();
        let title = opt_str(obj, "title", &path)?.map(str::to_string);
        let input_schema = match obj.get("inputSchema") {
            None => json!({"type": "object"}),
            Some(Value::Object(s)) => {
                if s.get("type").and_then(Value::as_str) != Some("object") {
                    return Err(field(
                        format!("{path}.inputSchema.type"),
                        "must be \"object\"",
                    ));
                }
                if let Some(p) = s.get("properties")
                    && !p.is_object()
                {
                    return Err(field(
                        format!("{path}.inputSchema.properties"),
                        "must be an object",
                    ));
                }
                Value::Object(s.clone())
            }
            Some(_) => return Err(field(format!("{path}.inputSchema"), "must be an object")),
        };
        let annotations = match obj.get("annotations") {
            None | Some(Value::Null) => None,
            Some(Value::Object(a)) => Some(a),
            Some(_) => return Err(field(format!("{path}.annotations"), "must be an object")),
        };
        let hint = |key: &str| -> Result<Option<bool>, CatalogError> {
            match annotations.and_then(|a| a.get(key)) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(_) => Err(field(
                    format!("{path}.annotations.{key}"),
                    "must be a boolean",
                )),
            }
        };
        let read_only_hint = hint("readOnlyHint")?;
        let destructive = hint("destructiveHint")?;
        let (read_only, read_only_source) = match read_only_hint {
            Some(ro) => (ro, ReadOnlySource::Hint),
            None => (
                classify_read_only(name, description),
                ReadOnlySource::Classified,
            ),
        };
        out.push(Entry {
            name: name.to_string(),
            title,
            description: description.to_string(),
            input_schema,
            kind: EntryKind::Tool,
            read_only,
            read_only_source,
            destructive,
            allowed_tools: vec![],
        });
    }
    Ok(out)
}

fn parse_skills(skills: &[Value], base: &str) -> Result<Vec<Entry>, CatalogError> {
    let mut out = Vec::with_capacity(skills.len());
    for (i, skill) in skills.iter().enumerate() {
        let path = format!("{base}[{i}]");
        let obj = as_object(skill, &path)?;
        let (name, description, allowed) = if let Some(md) = obj.get("skill_md") {
            let md = md
                .as_str()
                .ok_or_else(|| field(format!("{path}.skill_md"), "must be a string"))?;
            let fm = parse_skill_md(md)?;
            let allowed = fm.allowed_tools.map(|a| a.names()).unwrap_or_default();
            (fm.name, fm.description, allowed)
        } else {
            let name = req_str(obj, "name", &path)?;
            if !valid_skill_name(name) {
                return Err(field(
                    format!("{path}.name"),
                    format!("`{name}` must be 1-64 of a-z, 0-9 and single inner hyphens"),
                ));
            }
            let description = req_str(obj, "description", &path)?;
            let len = description.chars().count();
            if len == 0 || len > 1024 {
                return Err(field(
                    format!("{path}.description"),
                    "must have 1-1024 characters",
                ));
            }
            let allowed = match obj.get("allowed-tools") {
                None | Some(Value::Null) => vec![],
                Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| field(format!("{path}.allowed-tools"), "must hold strings"))?,
                Some(_) => {
                    return Err(field(
                        format!("{path}.allowed-tools"),
                        "must be a string or a list of strings",
                    ));
                }
            };
            (name.to_string(), description.to_string(), allowed)
        };
        let read_only = classify_read_only(&name, &description);
        out.push(Entry {
            name,
            title: None,
            description,
            input_schema: json!({"type": "object"}),
            kind: EntryKind::Skill,
            read_only,
            read_only_source: ReadOnlySource::Classified,
            destructive: None,
            allowed_tools: allowed,
        });
    }
    Ok(out)
}

fn parse_a2a(skills: &[Value]) -> Result<Vec<Entry>, CatalogError> {
    let mut out = Vec::with_capacity(skills.len());
    for (i, skill) in skills.iter().enumerate() {
        let path = format!("skills[{i}]");
        let obj = as_object(skill, &path)?;
        let id = req_str(obj, "id", &path)?;
        if !valid_tool_name(id) {
            return Err(field(
                format!("{path}.id"),
                format!("`{id}` must be 1-128 of [A-Za-z0-9_.-]"),
            ));
        }
        let title = req_str(obj, "name", &path)?;
        let description = req_str(obj, "description", &path)?;
        let read_only = classify_read_only(id, description);
        out.push(Entry {
            name: id.to_string(),
            title: Some(title.to_string()),
            description: description.to_string(),
            input_schema: json!({"type": "object"}),
            kind: EntryKind::AgentSkill,
            read_only,
            read_only_source: ReadOnlySource::Classified,
            destructive: None,
            allowed_tools: vec![],
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Catalog, CatalogError> {
        parse_catalog(&v, Limits::default())
    }

    #[test]
    fn parses_mcp_tools_with_hints() {
        let c = parse(json!({"tools": [
            {"name": "send_email", "description": "Send an email.",
             "inputSchema": {"type": "object", "properties": {"to": {"type": "string"}}},
             "annotations": {"readOnlyHint": false}},
            {"name": "list_emails", "description": "List emails.",
             "annotations": {"readOnlyHint": true}},
            {"name": "delete_email", "description": "Delete an email."}
        ], "nextCursor": "x"}))
        .unwrap();
        assert_eq!(c.entries.len(), 3);
        assert!(!c.entries[0].read_only);
        assert!(c.entries[1].read_only);
        assert_eq!(c.entries[1].read_only_source, ReadOnlySource::Hint);
        assert!(!c.entries[2].read_only);
        assert_eq!(c.entries[2].read_only_source, ReadOnlySource::Classified);
    }

    #[test]
    fn names_the_offending_field() {
        let err = parse(json!({"tools": [{"name": "ok"}, {"name": 3}]})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid catalog field `tools[1].name`: must be a string"
        );
        let err = parse(json!({"tools": [{"name": "bad name"}]})).unwrap_err();
        assert!(err.to_string().contains("tools[0].name"));
        let err =
            parse(json!({"tools": [{"name": "a", "inputSchema": {"type": "array"}}]})).unwrap_err();
        assert!(err.to_string().contains("tools[0].inputSchema.type"));
        let err = parse(json!({"tools": "x"})).unwrap_err();
        assert!(err.to_string().contains("`tools`"));
    }

    #[test]
    fn rejects_duplicates_empty_and_unknown_shapes() {
        assert_eq!(
            parse(json!({"tools": [{"name": "a"}, {"name": "a"}]})).unwrap_err(),
            CatalogError::Duplicate("a".into())
        );
        assert_eq!(
            parse(json!({"tools": []})).unwrap_err(),
            CatalogError::Empty
        );
        assert_eq!(
            parse(json!({"x": 1})).unwrap_err(),
            CatalogError::UnknownShape
        );
        assert_eq!(parse(json!(3)).unwrap_err(), CatalogError::UnknownShape);
    }

    #[test]
    fn enforces_the_entry_limit() {
        let tools: Vec<Value> = (0..5).map(|i| json!({"name": format!("t{i}")})).collect();
        let err = parse_catalog(
            &json!({ "tools": tools }),
            Limits {
                max_entries: 4,
                max_description: 10,
            },
        )
        .unwrap_err();
        assert_eq!(err, CatalogError::TooManyEntries { count: 5, limit: 4 });
    }

    #[test]
    fn parses_agent_skills_and_skill_md() {
        let c = parse(json!({"skills": [
            {"name": "expense-report", "description": "File an expense report.", "allowed-tools": "Read Write"},
            {"skill_md": "---\nname: pdf-reader\ndescription: Read text out of PDF files.\n---\nbody"}
        ]}))
        .unwrap();
        assert_eq!(c.entries[0].kind, EntryKind::Skill);
        assert_eq!(c.entries[0].allowed_tools, vec!["Read", "Write"]);
        assert!(!c.entries[0].read_only);
        assert_eq!(c.entries[1].name, "pdf-reader");
        assert!(c.entries[1].read_only);
        let err = parse(json!({"skills": [{"name": "Bad_Name", "description": "x"}]})).unwrap_err();
        assert!(err.to_string().contains("skills[0].name"));
    }

    #[test]
    fn parses_a2a_agent_cards() {
        let c = parse(json!({
            "name": "Travel agent", "url": "https://agent.example.com", "version": "1.0",
            "skills": [{"id": "book-trip", "name": "Book trip", "description": "Books flights and hotels.", "tags": ["travel"]}]
        }))
        .unwrap();
        assert_eq!(c.entries[0].kind, EntryKind::AgentSkill);
        assert_eq!(c.entries[0].name, "book-trip");
        assert_eq!(c.entries[0].title.as_deref(), Some("Book trip"));
        let err = parse(json!({"url": "x", "skills": [{"id": "a", "name": "A"}]})).unwrap_err();
        assert!(err.to_string().contains("skills[0].description"));
    }
}

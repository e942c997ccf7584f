//! Turns the three accepted catalog bodies into a validated [`Catalog`].

use serde_json::{Map, Value, json};
use std::collections::HashMap;

use super::read_only::classify_read_only;
use super::skill_md::{parse_skill_md, valid_skill_name};
use super::{BadEntry, Catalog, CatalogError, Entry, EntryKind, ReadOnlySource};

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

/// A catalog with the entries that were left out of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The valid entries.
    pub catalog: Catalog,
    /// The invalid entries that were skipped (only with `skip_invalid`).
    pub skipped: Vec<BadEntry>,
}

/// Parses an MCP `tools/list` result (bare, inside a JSON-RPC response,
/// or as an array of pages), an Agent Skills list or an A2A agent card,
/// and validates names, sizes and uniqueness. Every invalid entry is
/// reported, not just the first.
pub fn parse_catalog(body: &Value, limits: Limits) -> Result<Catalog, CatalogError> {
    parse_catalog_with(body, limits, false).map(|p| p.catalog)
}

/// [`parse_catalog`], and with `skip_invalid` the invalid entries (a bad or
/// duplicate name, an ill-typed field, an over-long description) are left
/// out and listed instead of failing the catalog.
pub fn parse_catalog_with(
    body: &Value,
    limits: Limits,
    skip_invalid: bool,
) -> Result<Parsed, CatalogError> {
    let body = unwrap_response(body, "")?;
    let (prefix, parsed): (&str, Vec<Result<Entry, BadEntry>>) = match body {
        Value::Object(obj) if obj.contains_key("tools") => {
            let tools = as_items(&obj["tools"], "tools")?;
            ("tools", parse_mcp(tools.iter()))
        }
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
                ("skills", parse_a2a(skills))
            } else {
                ("skills", parse_skills(skills, "skills"))
            }
        }
        Value::Array(items) if is_pages(items) => {
            ("tools", parse_mcp(page_tools(items)?.into_iter()))
        }
        Value::Array(items) => ("", parse_skills(items, "")),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Object(_) => {
            return Err(CatalogError::UnknownShape);
        }
    };
    if parsed.len() > limits.max_entries {
        return Err(CatalogError::TooManyEntries {
            count: parsed.len(),
            limit: limits.max_entries,
        });
    }
    let mut entries = Vec::with_capacity(parsed.len());
    let mut bad = Vec::new();
    let mut first_of: HashMap<String, usize> = HashMap::new();
    for (i, item) in parsed.into_iter().enumerate() {
        let e = match item {
            Ok(e) => e,
            Err(b) => {
                bad.push(b);
                continue;
            }
        };
        let path = format!("{prefix}[{i}]");
        if let Some(first) = first_of.get(&e.name) {
            bad.push(BadEntry {
                index: i,
                name: Some(e.name.clone()),
                field: format!("{path}.name"),
                reason: format!("duplicate name `{}`, first used by entry {first}", e.name),
            });
            continue;
        }
        if e.description.chars().count() > limits.max_description {
            bad.push(BadEntry {
                index: i,
                name: Some(e.name.clone()),
                field: format!("{path}.description"),
                reason: format!("longer than {} characters", limits.max_description),
            });
            continue;
        }
        first_of.insert(e.name.clone(), i);
        entries.push(e);
    }
    if !bad.is_empty() && !skip_invalid {
        return Err(CatalogError::Invalid(bad));
    }
    if entries.is_empty() {
        return Err(CatalogError::Empty);
    }
    Ok(Parsed {
        catalog: Catalog { entries },
        skipped: bad,
    })
}

/// The `result` of a JSON-RPC response (a `tools/list` answer as a client
/// holds it); a JSON-RPC error becomes [`CatalogError::JsonRpc`]; any
/// other body is returned as is.
fn unwrap_response<'a>(body: &'a Value, path: &str) -> Result<&'a Value, CatalogError> {
    let Some(obj) = body.as_object() else {
        return Ok(body);
    };
    if !is_response(obj) {
        return Ok(body);
    }
    if let Some(result) = obj.get("result") {
        return Ok(result);
    }
    let error = obj.get("error").and_then(Value::as_object).ok_or_else(|| {
        field(
            join(path, "error"),
            "a JSON-RPC response needs `result` or `error`",
        )
    })?;
    let code = error
        .get("code")
        .and_then(Value::as_i64)
        .ok_or_else(|| field(join(path, "error.code"), "must be an integer"))?;
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Err(CatalogError::JsonRpc { code, message })
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn is_response(obj: &Map<String, Value>) -> bool {
    obj.contains_key("jsonrpc")
        || (obj.contains_key("id") && (obj.contains_key("result") || obj.contains_key("error")))
}

/// Whether an array holds `tools/list` pages (results or JSON-RPC
/// responses) rather than Agent Skills.
pub fn is_pages(items: &[Value]) -> bool {
    !items.is_empty()
        && items.iter().all(|p| {
            p.as_object()
                .is_some_and(|o| o.contains_key("tools") || is_response(o))
        })
}

/// The tools of every page, in page order.
fn page_tools(pages: &[Value]) -> Result<Vec<&Value>, CatalogError> {
    let mut tools = Vec::new();
    for (k, page) in pages.iter().enumerate() {
        let path = format!("[{k}]");
        let page = unwrap_response(page, &path)?;
        let list = page
            .get("tools")
            .ok_or_else(|| field(join(&path, "tools"), "is required in a `tools/list` page"))?;
        tools.extend(as_items(list, &join(&path, "tools"))?);
    }
    Ok(tools)
}

/// The name an invalid entry gives itself, when it gives a string.
fn given_name(item: &Value, key: &str) -> Option<String> {
    item.get(key).and_then(Value::as_str).map(str::to_string)
}

fn bad_entry(index: usize, name: Option<String>, path: &str, err: CatalogError) -> BadEntry {
    if let CatalogError::Field { field, reason } = err {
        BadEntry {
            index,
            name,
            field,
            reason,
        }
    } else {
        BadEntry {
            index,
            name,
            field: path.to_string(),
            reason: err.to_string(),
        }
    }
}

fn parse_mcp<'a>(tools: impl Iterator<Item = &'a Value>) -> Vec<Result<Entry, BadEntry>> {
    tools
        .enumerate()
        .map(|(i, tool)| {
            let path = format!("tools[{i}]");
            parse_tool(tool, &path).map_err(|e| bad_entry(i, given_name(tool, "name"), &path, e))
        })
        .collect()
}

fn parse_tool(tool: &Value, path: &str) -> Result<Entry, CatalogError> {
    let obj = as_object(tool, path)?;
    let name = req_str(obj, "name", path)?;
    if !valid_tool_name(name) {
        return Err(field(
            format!("{path}.name"),
            format!("`{name}` must be 1-128 of [A-Za-z0-9_.-]"),
        ));
    }
    let description = opt_str(obj, "description", path)?.unwrap_or_default();
    let title = opt_str(obj, "title", path)?.map(str::to_string);
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
    let trusted_output = hint("trustedOutput")?.unwrap_or(false);
    let (read_only, read_only_source) = match read_only_hint {
        Some(ro) => (ro, ReadOnlySource::Hint),
        None => (
            classify_read_only(name, description),
            ReadOnlySource::Classified,
        ),
    };
    Ok(Entry {
        name: name.to_string(),
        title,
        description: description.to_string(),
        input_schema,
        kind: EntryKind::Tool,
        read_only,
        read_only_source,
        destructive,
        trusted_output,
        allowed_tools: vec![],
    })
}

fn parse_skills(skills: &[Value], base: &str) -> Vec<Result<Entry, BadEntry>> {
    skills
        .iter()
        .enumerate()
        .map(|(i, skill)| {
            let path = format!("{base}[{i}]");
            parse_skill(skill, &path).map_err(|e| bad_entry(i, given_name(skill, "name"), &path, e))
        })
        .collect()
}

fn parse_skill(skill: &Value, path: &str) -> Result<Entry, CatalogError> {
    let obj = as_object(skill, path)?;
    let (name, description, allowed) = if let Some(md) = obj.get("skill_md") {
        let md = md
            .as_str()
            .ok_or_else(|| field(format!("{path}.skill_md"), "must be a string"))?;
        let fm = parse_skill_md(md)?;
        let allowed = fm.allowed_tools.map(|a| a.names()).unwrap_or_default();
        (fm.name, fm.description, allowed)
    } else {
        let name = req_str(obj, "name", path)?;
        if !valid_skill_name(name) {
            return Err(field(
                format!("{path}.name"),
                format!("`{name}` must be 1-64 of a-z, 0-9 and single inner hyphens"),
            ));
        }
        let description = req_str(obj, "description", path)?;
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
    Ok(Entry {
        name,
        title: None,
        description,
        input_schema: json!({"type": "object"}),
        kind: EntryKind::Skill,
        read_only,
        read_only_source: ReadOnlySource::Classified,
        destructive: None,
        trusted_output: false,
        allowed_tools: allowed,
    })
}

fn parse_a2a(skills: &[Value]) -> Vec<Result<Entry, BadEntry>> {
    skills
        .iter()
        .enumerate()
        .map(|(i, skill)| {
            let path = format!("skills[{i}]");
            parse_agent_skill(skill, &path)
                .map_err(|e| bad_entry(i, given_name(skill, "id"), &path, e))
        })
        .collect()
}

fn parse_agent_skill(skill: &Value, path: &str) -> Result<Entry, CatalogError> {
    let obj = as_object(skill, path)?;
    let id = req_str(obj, "id", path)?;
    if !valid_tool_name(id) {
        return Err(field(
            format!("{path}.id"),
            format!("`{id}` must be 1-128 of [A-Za-z0-9_.-]"),
        ));
    }
    let title = req_str(obj, "name", path)?;
    let description = req_str(obj, "description", path)?;
    let read_only = classify_read_only(id, description);
    Ok(Entry {
        name: id.to_string(),
        title: Some(title.to_string()),
        description: description.to_string(),
        input_schema: json!({"type": "object"}),
        kind: EntryKind::AgentSkill,
        read_only,
        read_only_source: ReadOnlySource::Classified,
        destructive: None,
        trusted_output: false,
        allowed_tools: vec![],
    })
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
            CatalogError::Invalid(vec![BadEntry {
                index: 1,
                name: Some("a".into()),
                field: "tools[1].name".into(),
                reason: "duplicate name `a`, first used by entry 0".into(),
            }])
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

    fn tool(name: &str) -> Value {
        json!({"name": name, "description": format!("Does {name}."),
               "inputSchema": {"type": "object"}})
    }

    fn names(c: &Catalog) -> Vec<&str> {
        c.entries.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn accepts_a_json_rpc_tools_list_response() {
        let c = parse(json!({"jsonrpc": "2.0", "id": 7,
            "result": {"tools": [tool("open_ticket"), tool("close_ticket")], "nextCursor": null}}))
        .unwrap();
        assert_eq!(names(&c), ["open_ticket", "close_ticket"]);
    }

    #[test]
    fn concatenates_pages_in_order() {
        // Responses and bare results may be mixed; the cursor is ignored.
        let c = parse(json!([
            {"jsonrpc": "2.0", "id": 1, "result": {"tools": [tool("a1"), tool("a2")], "nextCursor": "p2"}},
            {"tools": [tool("b1")], "nextCursor": "p3"},
            {"jsonrpc": "2.0", "id": 3, "result": {"tools": [tool("c1")]}}
        ]))
        .unwrap();
        assert_eq!(names(&c), ["a1", "a2", "b1", "c1"]);
        assert_eq!(c.entries[3].kind, EntryKind::Tool);
        // A bad tool on a later page is indexed across pages.
        let err = parse(json!([{"tools": [tool("a")]}, {"tools": [tool("a b")]}])).unwrap_err();
        let CatalogError::Invalid(bad) = err else {
            panic!("{err:?}")
        };
        assert_eq!((bad[0].index, bad[0].field.as_str()), (1, "tools[1].name"));
        // A page without tools is named.
        let err = parse(json!([{"tools": [tool("a")]}, {"jsonrpc": "2.0", "id": 2, "result": {}}]))
            .unwrap_err();
        assert!(err.to_string().contains("[1].tools"), "{err}");
    }

    #[test]
    fn a_json_rpc_error_quotes_its_code_and_message() {
        let body = json!({"jsonrpc": "2.0", "id": 1,
            "error": {"code": -32601, "message": "Method not found"}});
        let err = parse(body.clone()).unwrap_err();
        assert_eq!(
            err,
            CatalogError::JsonRpc {
                code: -32601,
                message: "Method not found".into()
            }
        );
        assert!(err.to_string().contains("-32601") && err.to_string().contains("Method not found"));
        let page = json!([{"tools": [tool("a")]}, body]);
        assert!(matches!(
            parse(page).unwrap_err(),
            CatalogError::JsonRpc { code: -32601, .. }
        ));
    }

    #[test]
    fn every_bad_tool_is_named() {
        let body = json!({"tools": [
            tool("ok_one"),
            tool("has space"),
            tool("ok_one"),
            {"name": 5},
            "not a tool",
            tool("ok_two"),
            tool("ok_two")
        ]});
        let CatalogError::Invalid(bad) = parse(body.clone()).unwrap_err() else {
            panic!("not an Invalid error")
        };
        let got: Vec<(usize, Option<&str>, &str)> = bad
            .iter()
            .map(|b| (b.index, b.name.as_deref(), b.field.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (1, Some("has space"), "tools[1].name"),
                (2, Some("ok_one"), "tools[2].name"),
                (3, None, "tools[3].name"),
                (4, None, "tools[4]"),
                (6, Some("ok_two"), "tools[6].name"),
            ]
        );
        assert!(bad[0].reason.contains("[A-Za-z0-9_.-]"));
        assert!(bad[1].reason.contains("duplicate"));
        let message = CatalogError::Invalid(bad).to_string();
        assert!(
            message.starts_with("5 invalid catalog entries"),
            "{message}"
        );
    }

    #[test]
    fn skip_invalid_keeps_the_valid_tools_and_lists_the_rest() {
        let body = json!({"tools": [tool("a"), tool("b c"), tool("a"), tool("d")]});
        let p = parse_catalog_with(&body, Limits::default(), true).unwrap();
        assert_eq!(names(&p.catalog), ["a", "d"]);
        let skipped: Vec<usize> = p.skipped.iter().map(|b| b.index).collect();
        assert_eq!(skipped, [1, 2]);
        // Nothing valid left is still an error.
        let body = json!({"tools": [tool("x y")]});
        assert_eq!(
            parse_catalog_with(&body, Limits::default(), true).unwrap_err(),
            CatalogError::Empty
        );
        // Skills are checked the same way.
        let body = json!({"skills": [
            {"name": "good-one", "description": "Does things."},
            {"name": "Bad_Name", "description": "x"}]});
        let p = parse_catalog_with(&body, Limits::default(), true).unwrap();
        assert_eq!(names(&p.catalog), ["good-one"]);
        assert_eq!(p.skipped[0].field, "skills[1].name");
    }
}

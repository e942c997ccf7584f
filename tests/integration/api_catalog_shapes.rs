//! Catalogs in the shapes MCP clients hold (a `tools/list` JSON-RPC
//! response, an array of pages), every invalid tool named in a 400, and
//! `skip_invalid` on registration and with inline tools.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::{app, send};

fn tool(name: &str, description: &str, read_only: bool) -> Value {
    json!({"name": name, "description": description,
           "inputSchema": {"type": "object"},
           "annotations": {"readOnlyHint": read_only}})
}

fn page(id: u32, tools: Vec<Value>, next: Option<&str>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": {"tools": tools, "nextCursor": next}})
}

#[tokio::test]
async fn a_tools_list_response_and_its_pages_register() {
    let (app, _) = app();
    let one = page(
        1,
        vec![
            tool("archive_note", "Archive a note", false),
            tool("list_notes", "List notes", true),
        ],
        None,
    );
    let (s, b) = send(&app, "PUT", "/v1/catalogs/notes", Some(one)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["entries"].as_u64(), b["read_only"].as_u64()),
        (Some(2), Some(1))
    );

    let pages = json!([
        page(
            1,
            vec![tool("archive_note", "Archive a note", false)],
            Some("c2")
        ),
        page(2, vec![tool("list_notes", "List notes", true)], Some("c3")),
        page(
            3,
            vec![tool("pin_note", "Pin a note to the top", false)],
            None
        )
    ]);
    let (s, b) = send(&app, "PUT", "/v1/catalogs/paged", Some(pages.clone())).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["entries"], 3);
    let (_, b) = send(&app, "GET", "/v1/catalogs/paged", None).await;
    let names: Vec<&str> = b["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["archive_note", "list_notes", "pin_note"]);

    // The same pages inline.
    let body = json!({"subject": {"type": "user", "id": "a"},
        "prompt": "pin the note about the budget", "tools": pages});
    let (s, b) = send(&app, "POST", "/v1/intents", Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["intent"]["evaluations"][0]["action"]["name"], "pin_note");
}

#[tokio::test]
async fn a_json_rpc_error_is_a_400_quoting_it() {
    let (app, _) = app();
    let err = json!({"jsonrpc": "2.0", "id": 4,
        "error": {"code": -32603, "message": "upstream server unavailable"}});
    let (s, b) = send(&app, "PUT", "/v1/catalogs/broken", Some(err.clone())).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"]["code"], "invalid_catalog");
    let message = b["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("-32603") && message.contains("upstream server unavailable"),
        "{message}"
    );
    let body = json!({"subject": {"type": "user", "id": "a"}, "prompt": "pin it",
        "tools": [page(1, vec![tool("pin_note", "Pin a note", false)], Some("c2")), err]});
    let (s, b) = send(&app, "POST", "/v1/intents", Some(body)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("-32603"));
}

fn bad_catalog() -> Value {
    json!({"tools": [
        tool("pin_note", "Pin a note to the top", false),
        tool("pin note", "Pin with a space", false),
        tool("list_notes", "List notes", true),
        tool("pin_note", "Pin again", false),
        {"name": "x", "inputSchema": {"type": "array"}}
    ]})
}

#[tokio::test]
async fn each_bad_tool_is_named_in_the_400() {
    let (app, _) = app();
    let (s, b) = send(&app, "PUT", "/v1/catalogs/bad", Some(bad_catalog())).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"]["code"], "invalid_catalog");
    let list = b["error"]["invalid_entries"].as_array().unwrap();
    let got: Vec<(u64, &str, &str)> = list
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["name"].as_str().unwrap(),
                e["field"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, "pin note", "tools[1].name"),
            (3, "pin_note", "tools[3].name"),
            (4, "x", "tools[4].inputSchema.type"),
        ]
    );
    assert!(
        list.iter()
            .all(|e| e["reason"].as_str().is_some_and(|r| !r.is_empty()))
    );
    let (s, _) = send(&app, "GET", "/v1/catalogs/bad", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn skip_invalid_registers_the_rest_and_says_what_it_skipped() {
    let (app, _) = app();
    let (s, b) = send(
        &app,
        "PUT",
        "/v1/catalogs/bad?skip_invalid=true",
        Some(bad_catalog()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["entries"], 2);
    let skipped: Vec<u64> = b["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(skipped, [1, 3, 4]);
    let (s, b) = send(
        &app,
        "PUT",
        "/v1/catalogs/bad?skip_invalid=maybe",
        Some(bad_catalog()),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );

    // Inline: the `skip_invalid` field of the request.
    let tools = bad_catalog()["tools"].clone();
    let mut body = json!({"subject": {"type": "user", "id": "a"},
        "prompt": "pin the note about the budget", "tools": tools});
    let (s, b) = send(&app, "POST", "/v1/intents", Some(body.clone())).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"]["invalid_entries"].as_array().unwrap().len(), 3);
    body["skip_invalid"] = json!(true);
    let (s, b) = send(&app, "POST", "/v1/intents", Some(body.clone())).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["skipped_tools"].as_array().unwrap().len(), 3);
    assert_eq!(b["intent"]["evaluations"][0]["action"]["name"], "pin_note");
    let (s, b) = send(&app, "POST", "/v1/workflows", Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["skipped_tools"][0]["name"], "pin note");
}

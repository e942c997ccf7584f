//! Exports: the inbox (with its filters, from its cursor on) as CSV or
//! JSON, streamed one tracker page at a time, and one workflow's report
//! as JSON.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use futures_util::stream;

use super::pages::{InboxFilter, InboxParams, Kind, query};
use super::{Analyst, Ui, UiError, Viewer};
use crate::api::workflows::workflow_id;
use crate::service::tracker::DriftItem;
use crate::workflow::Verdict;

/// Rows an export holds at most.
pub const MAX_EXPORT_ROWS: usize = 100_000;
/// Rows read from the tracker per chunk.
const CHUNK: usize = 1000;
/// Steps of a workflow export at most.
pub const MAX_EXPORT_STEPS: usize = 10_000;

/// The CSV columns.
const HEADER: [&str; 11] = [
    "received_at",
    "workflow_id",
    "subject",
    "seq",
    "actor",
    "chain",
    "tool",
    "kind",
    "reasons",
    "messages",
    "hash",
];

/// A cell as a spreadsheet will not run it as a formula.
fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

fn csv_rows(items: &[DriftItem], header: bool, _before: usize) -> Result<Bytes, UiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = |e: csv::Error| UiError::Api(crate::api::ApiError::Internal(e.to_string()));
    if header {
        w.write_record(HEADER).map_err(io)?;
    }
    for item in items {
        let s = &item.step;
        let divergent: Vec<_> = s
            .reasons
            .iter()
            .filter(|r| r.code.verdict() == Verdict::Divergent)
            .collect();
        let codes: Vec<&str> = divergent.iter().map(|r| r.code.as_str()).collect();
        let messages: Vec<&str> = divergent.iter().map(|r| r.message.as_str()).collect();
        let chain: Vec<&str> = s.observed.chain.iter().map(|a| a.sub.as_str()).collect();
        w.write_record([
            cell(&s.received_at),
            cell(&item.workflow_id),
            cell(&item.subject),
            s.seq.to_string(),
            cell(&s.observed.actor.id),
            cell(&chain.join(" > ")),
            cell(&s.observed.name),
            Kind::of(s).as_str().to_string(),
            codes.join(" "),
            cell(&messages.join(" | ")),
            s.hash.clone(),
        ])
        .map_err(io)?;
    }
    w.into_inner()
        .map(Bytes::from)
        .map_err(|e| UiError::Api(crate::api::ApiError::Internal(e.to_string())))
}

/// Where an export stream is.
struct Cursor {
    filter: InboxFilter,
    rows: usize,
    chunks: usize,
    done: bool,
}

/// Streams the inbox: each chunk is one tracker page rendered by `render`
/// (with whether it is the first chunk and the rows before it), then
/// `tail`.
fn inbox_stream(
    ui: Ui,
    tenant: String,
    filter: InboxFilter,
    render: fn(&[DriftItem], bool, usize) -> Result<Bytes, UiError>,
    tail: &'static str,
) -> Body {
    let start = Cursor {
        filter,
        rows: 0,
        chunks: 0,
        done: false,
    };
    let chunks = stream::unfold(start, move |mut c| {
        let ui = ui.clone();
        let tenant = tenant.clone();
        async move {
            if c.done {
                return None;
            }
            let room = MAX_EXPORT_ROWS.saturating_sub(c.rows).min(CHUNK);
            let page = if room == 0 {
                None
            } else {
                let f = &c.filter;
                match ui
                    .app
                    .service
                    .tracker()
                    .drift_where(&tenant, &f.query(room), |i| f.keep(i))
                {
                    Ok(p) => Some(p),
                    Err(e) => return Some((Err(UiError::from(e)), c)),
                }
            };
            let (items, next) = page.map_or((Vec::new(), None), |p| (p.items, p.next_cursor));
            let first = c.chunks == 0;
            let before = c.rows;
            c.chunks += 1;
            c.rows += items.len();
            c.filter.cursor = next;
            let mut bytes = match render(&items, first, before) {
                Ok(b) => b.to_vec(),
                Err(e) => return Some((Err(e), c)),
            };
            if c.filter.cursor.is_none() || c.rows >= MAX_EXPORT_ROWS {
                c.done = true;
                bytes.extend_from_slice(tail.as_bytes());
            }
            Some((Ok::<_, UiError>(Bytes::from(bytes)), c))
        }
    });
    Body::from_stream(chunks)
}

fn json_rows(items: &[DriftItem], first: bool, before: usize) -> Result<Bytes, UiError> {
    let mut out = Vec::new();
    if first {
        out.extend_from_slice(b"{\"items\":[");
    }
    for (i, item) in items.iter().enumerate() {
        // A comma before every item but the very first of the export.
        if before + i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, item)
            .map_err(|e| UiError::Api(crate::api::ApiError::Internal(e.to_string())))?;
    }
    Ok(Bytes::from(out))
}

async fn export(
    ui: Ui,
    viewer: Viewer,
    q: Result<Query<InboxParams>, QueryRejection>,
    json: bool,
) -> Result<Response, UiError> {
    let filter = query(q)?.filter()?;
    let tenant = viewer.caller.tenant;
    Ok(if json {
        (
            [
                (CONTENT_TYPE, "application/json"),
                (
                    CONTENT_DISPOSITION,
                    "attachment; filename=\"telos-inbox.json\"",
                ),
            ],
            inbox_stream(ui, tenant, filter, json_rows, "]}"),
        )
            .into_response()
    } else {
        (
            [
                (CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    CONTENT_DISPOSITION,
                    "attachment; filename=\"telos-inbox.csv\"",
                ),
            ],
            inbox_stream(ui, tenant, filter, csv_rows, ""),
        )
            .into_response()
    })
}

/// `GET /ui/inbox.csv`.
pub async fn inbox_csv(
    State(ui): State<Ui>,
    Analyst(viewer): Analyst,
    q: Result<Query<InboxParams>, QueryRejection>,
) -> Result<Response, UiError> {
    export(ui, viewer, q, false).await
}

/// `GET /ui/inbox.json`.
pub async fn inbox_json(
    State(ui): State<Ui>,
    Analyst(viewer): Analyst,
    q: Result<Query<InboxParams>, QueryRejection>,
) -> Result<Response, UiError> {
    export(ui, viewer, q, true).await
}

/// `GET /ui/workflows/{id}/report.json`: the drift report with up to
/// [`MAX_EXPORT_STEPS`] steps.
pub async fn workflow_json(
    State(ui): State<Ui>,
    Analyst(viewer): Analyst,
    Path(raw): Path<String>,
) -> Result<Response, UiError> {
    let id = workflow_id(&raw)?;
    let report =
        ui.app
            .service
            .tracker()
            .report(&viewer.caller.tenant, &id, 1, MAX_EXPORT_STEPS)?;
    Ok((
        [(
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"telos-workflow-{id}.json\""),
        )],
        Json(report),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_never_start_a_formula() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("alice"), "alice");
    }
}

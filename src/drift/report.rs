//! Drift reports: one workflow's intent, delegation graph, steps with
//! verdicts and evidence, counts and the chain head, as JSON, as a
//! self-contained HTML page (no JavaScript; the graph is inline SVG), and
//! as plain text for a terminal.

use serde::{Deserialize, Serialize};
use std::fmt::Write;

use super::{ReasonCode, Verdict};
use crate::intent::Intent;
use crate::workflow::{GraphEdge, GraphNode, Head, Step, Workflow};

/// Counts of verdicts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerdictCounts {
    /// Allowed steps.
    pub allowed: usize,
    /// Tolerated steps.
    pub tolerated: usize,
    /// Divergent steps.
    pub divergent: usize,
}

/// The integrity of a workflow's hash chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainStatus {
    /// Whether every link verifies.
    pub verified: bool,
    /// The first broken link (0: the genesis), when not verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_broken: Option<u64>,
    /// Hash of the last step (the genesis when there is none).
    pub head: String,
    /// Steps in the chain.
    pub length: u64,
}

impl ChainStatus {
    /// The first 16 characters of the head hash, for display. A stored
    /// hash is hex when telos wrote it, but a tampered record may hold any
    /// text, so this cuts on a character boundary.
    pub fn short_head(&self) -> &str {
        match self.head.char_indices().nth(16) {
            Some((i, _)) => &self.head[..i],
            None => &self.head,
        }
    }
}

/// A value that went from one step's result into a later step's
/// argument (from the evidence of `argument_provenance` and
/// `argument_from_untrusted_source`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFlow {
    /// The value as the later step passed it.
    pub value: String,
    /// The argument it was passed as.
    pub argument: String,
    /// The step whose result held it, and its tool.
    pub from_seq: u64,
    /// That step's tool.
    pub from_tool: String,
    /// The step that used it, and its tool.
    pub to_seq: u64,
    /// That step's tool.
    pub to_tool: String,
    /// `trusted_output`, `requested_read`, or `untrusted`.
    pub provenance: String,
}

/// Most data flows a report lists.
pub const MAX_FLOWS: usize = 1000;

/// The data flows one step's reasons record.
fn flows_of(step: &Step) -> impl Iterator<Item = DataFlow> + '_ {
    step.reasons.iter().filter_map(move |r| {
        let untrusted = r.code == ReasonCode::ArgumentFromUntrustedSource;
        if !untrusted && r.code != ReasonCode::ArgumentProvenance {
            return None;
        }
        let e = &r.evidence;
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        Some(DataFlow {
            value: text(&e["observed"]),
            argument: text(&e["argument"]),
            from_seq: e["source"]["seq"].as_u64().unwrap_or(0),
            from_tool: text(&e["source"]["tool"]),
            to_seq: step.seq,
            to_tool: step.observed.name.clone(),
            provenance: if untrusted {
                "untrusted".into()
            } else {
                text(&e["legitimate"])
            },
        })
    })
}

/// A drift report of one workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowReport {
    /// The workflow id.
    pub workflow_id: String,
    /// Its subject's id.
    pub subject: String,
    /// Whether it is closed.
    pub closed: bool,
    /// When it started.
    pub created_at: String,
    /// The intent.
    pub intent: Intent,
    /// The delegation graph's principals.
    pub nodes: Vec<GraphNode>,
    /// The delegation graph's edges.
    pub edges: Vec<GraphEdge>,
    /// The steps of this page with their verdicts and evidence (every
    /// step when the report is not paged).
    pub steps: Vec<Step>,
    /// Verdict counts over every step.
    pub counts: VerdictCounts,
    /// Hash-chain integrity over every step.
    pub chain: ChainStatus,
    /// Values that went from a step's result into a later side effect's
    /// arguments, over every step (at most [`MAX_FLOWS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<DataFlow>,
    /// Pass as `cursor` for the next page of steps; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Builds a report while the steps stream past in order, keeping only one
/// page of them: counts and the chain check cover every step.
pub struct ReportBuilder<'a> {
    workflow: &'a Workflow,
    counts: VerdictCounts,
    check: crate::workflow::ChainCheck,
    head: String,
    length: u64,
    from: u64,
    limit: usize,
    page: Vec<Step>,
    next: Option<u64>,
    flows: Vec<DataFlow>,
}

impl<'a> ReportBuilder<'a> {
    /// A report of `workflow` whose page holds up to `limit` steps from
    /// seq `from`.
    pub fn new(workflow: &'a Workflow, from: u64, limit: usize) -> Self {
        Self {
            workflow,
            counts: VerdictCounts::default(),
            check: crate::workflow::ChainCheck::new(workflow),
            head: workflow.genesis.clone(),
            length: 0,
            from,
            limit,
            page: Vec::new(),
            next: None,
            flows: Vec::new(),
        }
    }

    /// The next step in seq order.
    pub fn push(&mut self, step: Step) {
        match step.verdict {
            Verdict::Allowed => self.counts.allowed += 1,
            Verdict::Tolerated => self.counts.tolerated += 1,
            Verdict::Divergent => self.counts.divergent += 1,
        }
        self.check.push(step.seq, Ok(&step));
        let room = MAX_FLOWS.saturating_sub(self.flows.len());
        self.flows.extend(flows_of(&step).take(room));
        self.length += 1;
        self.head.clone_from(&step.hash);
        if step.seq >= self.from {
            if self.page.len() < self.limit {
                self.page.push(step);
            } else if self.next.is_none() {
                self.next = Some(step.seq);
            }
        }
    }

    /// The report, with the stored head checked and the graph given.
    pub fn finish(
        self,
        head: Option<&Head>,
        nodes: Vec<GraphNode>,
        edges: Vec<GraphEdge>,
    ) -> WorkflowReport {
        let check = self.check.finish(head);
        let workflow = self.workflow;
        WorkflowReport {
            workflow_id: workflow.id.to_string(),
            subject: workflow.subject.id.clone(),
            closed: workflow.closed,
            created_at: workflow.created_at.clone(),
            intent: workflow.intent.clone(),
            nodes,
            edges,
            steps: self.page,
            counts: self.counts,
            chain: ChainStatus {
                verified: check.is_ok(),
                first_broken: check.err().map(|b| b.at),
                head: self.head,
                length: self.length,
            },
            flows: self.flows,
            next_cursor: self.next.map(|n| n.to_string()),
        }
    }
}

impl WorkflowReport {
    /// Builds the report of a workflow from all its steps and its graph.
    pub fn build(
        workflow: &Workflow,
        head: Option<&Head>,
        steps: Vec<Step>,
        nodes: Vec<GraphNode>,
        edges: Vec<GraphEdge>,
    ) -> Self {
        let mut b = ReportBuilder::new(workflow, 1, usize::MAX);
        for s in steps {
            b.push(s);
        }
        b.finish(head, nodes, edges)
    }

    /// Plain text for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "workflow {}  subject {}  {}",
            self.workflow_id,
            self.subject,
            if self.closed { "closed" } else { "open" }
        );
        let prompt: Vec<&str> = self
            .intent
            .clauses
            .iter()
            .map(|c| c.text.as_str())
            .collect();
        let _ = writeln!(out, "request   {}", prompt.join(" | "));
        let granted: Vec<&str> = self.intent.granted().collect();
        let _ = writeln!(
            out,
            "granted   {}",
            if granted.is_empty() {
                "(no side effects)".to_string()
            } else {
                granted.join(", ")
            }
        );
        if let Some(oe) = &self.intent.open_ended {
            let _ = writeln!(
                out,
                "open-ended: delegates to {} ({})",
                oe.source,
                oe.enforcement.as_str()
            );
        }
        let edges: Vec<String> = self
            .edges
            .iter()
            .map(|e| format!("{} → {} ({})", e.from, e.to, e.steps))
            .collect();
        let _ = writeln!(
            out,
            "graph     {}",
            if edges.is_empty() {
                "(no delegation)".into()
            } else {
                edges.join(", ")
            }
        );
        let _ = writeln!(
            out,
            "steps     {} allowed, {} tolerated, {} divergent",
            self.counts.allowed, self.counts.tolerated, self.counts.divergent
        );
        for s in &self.steps {
            let codes: Vec<&str> = s.reasons.iter().map(|r| r.code.as_str()).collect();
            let _ = writeln!(
                out,
                "  #{:<3} {:<10} {:<24} {:<20} {}",
                s.seq,
                s.verdict.as_str(),
                s.observed.name,
                s.observed.actor.id,
                codes.join(",")
            );
            for r in s
                .reasons
                .iter()
                .filter(|r| r.code.verdict() == Verdict::Divergent)
            {
                let _ = writeln!(out, "        {}", r.message);
            }
        }
        for f in &self.flows {
            let _ = writeln!(
                out,
                "flow      {} from #{} {} into #{} {}({}) [{}]",
                f.value, f.from_seq, f.from_tool, f.to_seq, f.to_tool, f.argument, f.provenance
            );
        }
        let _ = writeln!(
            out,
            "chain     {} ({} steps, head {})",
            match self.chain.first_broken {
                None => "verified".to_string(),
                Some(n) => format!("BROKEN at step {n}"),
            },
            self.chain.length,
            self.chain.short_head()
        );
        out
    }

    /// A self-contained HTML page.
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>telos report {id}</title><style>{css}</style></head><body>",
            id = esc(&self.workflow_id),
            css = CSS
        );
        let _ = write!(
            h,
            "<h1>Workflow <code>{}</code></h1>",
            esc(&self.workflow_id)
        );
        let _ = write!(
            h,
            "<p>Subject <b>{}</b> · started {} · {} · chain {}</p>",
            esc(&self.subject),
            esc(&self.created_at),
            if self.closed { "closed" } else { "open" },
            match self.chain.first_broken {
                None => format!(
                    "<span class=\"ok\">verified</span> ({} steps, head <code>{}</code>)",
                    self.chain.length,
                    esc(self.chain.short_head())
                ),
                Some(n) => format!("<span class=\"bad\">broken at step {n}</span>"),
            }
        );
        h.push_str("<h2>Intent</h2><ul>");
        for c in &self.intent.clauses {
            let _ = write!(
                h,
                "<li><i>{}</i> — {}</li>",
                esc(&c.text),
                c.speech_act.as_str()
            );
        }
        h.push_str("</ul><p>Granted: ");
        let granted: Vec<String> = self
            .intent
            .granted()
            .map(|g| format!("<code>{}</code>", esc(g)))
            .collect();
        h.push_str(&if granted.is_empty() {
            "no side effects".to_string()
        } else {
            granted.join(", ")
        });
        h.push_str("</p>");
        if let Some(oe) = &self.intent.open_ended {
            let _ = write!(
                h,
                "<p class=\"bad\">Open-ended: delegates to {} (policy {}).</p>",
                esc(&oe.source),
                oe.enforcement.as_str()
            );
        }
        let _ = write!(
            h,
            "<p>{} allowed · {} tolerated · <span class=\"bad\">{} divergent</span></p>",
            self.counts.allowed, self.counts.tolerated, self.counts.divergent
        );
        h.push_str("<h2>Delegation graph</h2>");
        h.push_str(&self.svg());
        if !self.flows.is_empty() {
            h.push_str("<h2>Data flow</h2><table><tr><th>value</th><th>from step</th><th>into step</th><th>provenance</th></tr>");
            for f in &self.flows {
                let _ = write!(
                    h,
                    "<tr><td><code>{}</code></td><td>#{} <code>{}</code></td><td>#{} <code>{}</code>({})</td><td{}>{}</td></tr>",
                    esc(&f.value),
                    f.from_seq,
                    esc(&f.from_tool),
                    f.to_seq,
                    esc(&f.to_tool),
                    esc(&f.argument),
                    if f.provenance == "untrusted" {
                        " class=\"bad\""
                    } else {
                        ""
                    },
                    esc(&f.provenance)
                );
            }
            h.push_str("</table>");
        }
        h.push_str("<h2>Steps</h2><table><tr><th>#</th><th>time</th><th>actor</th><th>chain</th><th>tool</th><th>arguments</th><th>verdict</th><th>reasons</th></tr>");
        for s in &self.steps {
            let chain: Vec<&str> = s.observed.chain.iter().map(|a| a.sub.as_str()).collect();
            let reasons: Vec<String> = s
                .reasons
                .iter()
                .map(|r| format!("<code>{}</code> {}", r.code.as_str(), esc(&r.message)))
                .collect();
            let _ = write!(
                h,
                "<tr class=\"{v}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{v}</td><td>{}</td></tr>",
                s.seq,
                esc(&s.observed.at),
                esc(&s.observed.actor.id),
                esc(&chain.join(" → ")),
                esc(&s.observed.name),
                esc(&serde_json::Value::Object(s.observed.arguments.clone()).to_string()),
                reasons.join("<br>"),
                v = s.verdict.as_str()
            );
        }
        h.push_str("</table>");
        if let Some(c) = &self.next_cursor {
            let _ = write!(
                h,
                "<p>More steps follow: <code>?cursor={}</code></p>",
                esc(c)
            );
        }
        h.push_str("</body></html>");
        h
    }

    /// The delegation graph as inline SVG (presentation attributes only,
    /// no `style`, so it renders under a strict Content-Security-Policy).
    pub fn svg(&self) -> String {
        let n = self.nodes.len().max(1);
        let (w, y) = (180usize, 60usize);
        let width = n * w + 40;
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"170\" role=\"img\" aria-label=\"delegation graph\"><defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" fill=\"#555\"/></marker></defs>"
        );
        let x_of = |id: &str| -> usize {
            self.nodes.iter().position(|nd| nd.id == id).unwrap_or(0) * w + 20 + w / 2
        };
        for e in &self.edges {
            let (x1, x2) = (x_of(&e.from), x_of(&e.to));
            let bend = if x2 > x1 { y + 40 } else { y - 45 };
            let (from, to) = if x2 > x1 {
                (x1 + 70, x2 - 70)
            } else {
                (x1 - 70, x2 + 70)
            };
            let _ = write!(
                s,
                "<path d=\"M{from},{y} Q{mid},{bend2} {to},{y}\" fill=\"none\" stroke=\"#555\" marker-end=\"url(#arrow)\"/><text x=\"{mid}\" y=\"{ty}\" font-size=\"11\" text-anchor=\"middle\">{c}</text>",
                mid = (from + to) / 2,
                bend2 = bend + 40,
                ty = bend + 10,
                c = e.steps
            );
        }
        for (i, nd) in self.nodes.iter().enumerate() {
            let x = i * w + 20;
            let fill = if nd.subject { "#dbeafe" } else { "#f3f4f6" };
            let _ = write!(
                s,
                "<rect x=\"{x}\" y=\"{ry}\" width=\"{rw}\" height=\"40\" rx=\"8\" fill=\"{fill}\" stroke=\"#333\"/><text x=\"{tx}\" y=\"{y2}\" font-size=\"12\" text-anchor=\"middle\">{label}</text>",
                ry = y - 20,
                rw = w - 40,
                tx = x + (w - 40) / 2,
                y2 = y + 4,
                label = esc(&truncate(&nd.id, 22))
            );
        }
        s.push_str("</svg>");
        s
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#111}table{border-collapse:collapse;width:100%;font-size:13px}td,th{border:1px solid #ddd;padding:4px 6px;vertical-align:top;text-align:left}tr.divergent{background:#fee2e2}tr.tolerated{background:#fef9c3}tr.allowed{background:#f0fdf4}.bad{color:#b91c1c;font-weight:600}.ok{color:#15803d;font-weight:600}code{font-size:12px}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}

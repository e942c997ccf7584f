//! The delegation graph of a workflow (petgraph): principals are nodes,
//! every observed delegation `delegator → delegate` is an edge counted per
//! step. It answers whether an actor is new, and whether a chain would
//! close a cycle.

use petgraph::algo::has_path_connecting;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use super::Observed;

/// The delegation graph of one workflow.
#[derive(Debug, Clone, Default)]
pub struct DelegationGraph {
    graph: DiGraph<String, u32>,
    index: HashMap<String, NodeIndex>,
}

/// A node of the graph as reports show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphNode {
    /// The principal.
    pub id: String,
    /// Whether it is the workflow's subject.
    pub subject: bool,
}

/// An edge of the graph as reports show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphEdge {
    /// Who delegated.
    pub from: String,
    /// To whom.
    pub to: String,
    /// Steps that carried this delegation.
    pub steps: u32,
}

impl DelegationGraph {
    /// A graph holding only the subject.
    pub fn new(subject: &str) -> Self {
        let mut g = Self::default();
        g.node(subject);
        g
    }

    fn node(&mut self, id: &str) -> NodeIndex {
        if let Some(&n) = self.index.get(id) {
            return n;
        }
        let n = self.graph.add_node(id.to_string());
        self.index.insert(id.to_string(), n);
        n
    }

    /// Whether `id` has appeared in this workflow.
    pub fn knows(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    /// Whether recording `chain` (principals, oldest first) would make the
    /// graph cyclic: a repeated principal in the chain, or an edge `a → b`
    /// where `b` already reaches `a`.
    pub fn would_cycle(&self, chain: &[&str]) -> bool {
        let mut seen = std::collections::HashSet::new();
        if chain.iter().any(|p| !seen.insert(*p)) {
            return true;
        }
        chain
            .windows(2)
            .any(|w| match (self.index.get(w[0]), self.index.get(w[1])) {
                (Some(&a), Some(&b)) => a != b && has_path_connecting(&self.graph, b, a, None),
                _ => false,
            })
    }

    /// Records the delegations of one step.
    pub fn record(&mut self, chain: &[&str]) {
        for w in chain.windows(2) {
            let (a, b) = (self.node(w[0]), self.node(w[1]));
            if let Some(e) = self.graph.find_edge(a, b) {
                if let Some(c) = self.graph.edge_weight_mut(e) {
                    *c += 1;
                }
            } else {
                self.graph.add_edge(a, b, 1);
            }
        }
        if let [only] = chain {
            self.node(only);
        }
    }

    /// Nodes and edges, in insertion order.
    pub fn export(&self, subject: &str) -> (Vec<GraphNode>, Vec<GraphEdge>) {
        let nodes = self
            .graph
            .node_indices()
            .map(|n| GraphNode {
                id: self.graph[n].clone(),
                subject: self.graph[n] == subject,
            })
            .collect();
        let edges = self
            .graph
            .edge_indices()
            .filter_map(|e| {
                let (a, b) = self.graph.edge_endpoints(e)?;
                Some(GraphEdge {
                    from: self.graph[a].clone(),
                    to: self.graph[b].clone(),
                    steps: self.graph[e],
                })
            })
            .collect();
        (nodes, edges)
    }
}

/// The principals of a step's chain, oldest first: the subject, then the
/// delegation chain, then the reported actor if the chain does not end
/// with it.
pub fn chain_principals<'a>(subject: &'a str, step: &'a Observed) -> Vec<&'a str> {
    let mut p: Vec<&str> = vec![subject];
    p.extend(step.chain.iter().map(|a| a.sub.as_str()));
    if step.chain.is_empty() && step.actor.id != subject {
        p.push(step.actor.id.as_str());
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_counts_delegations() {
        let mut g = DelegationGraph::new("alice");
        g.record(&["alice", "planner", "runner"]);
        g.record(&["alice", "planner", "runner"]);
        assert!(g.knows("runner"));
        assert!(!g.knows("mallory"));
        let (nodes, edges) = g.export("alice");
        assert_eq!(nodes.len(), 3);
        assert!(nodes[0].subject);
        assert_eq!(
            edges[1],
            GraphEdge {
                from: "planner".into(),
                to: "runner".into(),
                steps: 2
            }
        );
    }

    #[test]
    fn detects_cycles_within_and_across_steps() {
        let mut g = DelegationGraph::new("alice");
        assert!(g.would_cycle(&["alice", "a", "b", "a"]));
        g.record(&["alice", "a", "b"]);
        assert!(g.would_cycle(&["alice", "b", "a"]));
        assert!(!g.would_cycle(&["alice", "a", "c"]));
    }
}

//! Clause → catalog matching and quad building. Pure functions over
//! embeddings and decoded clauses: which entries a clause grants, with
//! which role, and how the clause's entities fill the granted tool's
//! input-schema parameters.

use serde_json::{Value, json};

use super::runtime::Calibration;
use crate::catalog::{Catalog, Entry, identifier_words, parameter_labels, resource_type};
use crate::intent::{
    Action, Entity, EntityLabel, Evaluation, Object, Resource, SpeechAct, ToolGrant, ToolRole,
};

/// Thresholds of the matcher. `telos serve` defaults to the values tuned
/// on the training domains of `fixtures/intents` (see the README); these
/// `Default` values are neutral ones for tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchThresholds {
    /// Probability a side-effecting entry needs to be granted to an action clause.
    pub grant: f32,
    /// Probability a read-only entry needs to be listed for a clause.
    pub read: f32,
    /// A second side-effecting entry of the same clause is granted when its
    /// probability is at least `grant` and within this margin of the best.
    pub second_margin: f32,
    /// An action clause is read as a lookup only when its best read-only
    /// entry beats its best side-effecting one by more than this margin.
    pub read_margin: f32,
    /// Added to the probability of an entry whose name holds the verb of
    /// one of the clause's requested actions ("log a call" → `log_call`),
    /// so that the verb the user said decides between sibling tools whose
    /// descriptions read alike (0 disables).
    pub verb_boost: f32,
}

impl Default for MatchThresholds {
    fn default() -> Self {
        Self {
            grant: 0.5,
            read: 0.5,
            second_margin: 0.0,
            read_margin: 0.0,
            verb_boost: 0.0,
        }
    }
}

/// Relevance a side-effecting entry needs to be granted to a clause read as
/// a delegation (which usually names no action of its own).
pub const DELEGATION_GRANT: f32 = 0.6;

/// Dot product (embeddings are L2-normalised, so this is the cosine).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Whether an entry's name holds one of `verbs` (lowercase words) as a
/// word of its own: `log_call` and `logCall` hold "log", `login` does not.
pub fn names_verb(name: &str, verbs: &[String]) -> bool {
    !verbs.is_empty()
        && identifier_words(name)
            .split_whitespace()
            .any(|w| verbs.iter().any(|v| v == w))
}

/// A clause as the matcher sees it.
#[derive(Debug, Clone, Copy)]
pub struct ClauseQuery<'a> {
    /// Its index in the request.
    pub index: usize,
    /// Its speech act.
    pub act: SpeechAct,
    /// Its embedding (L2-normalised).
    pub embedding: &'a [f32],
    /// The lowercase verbs of its requested actions.
    pub verbs: &'a [String],
}

/// The grants of one clause.
pub fn match_clause(
    clause: ClauseQuery<'_>,
    catalog: &Catalog,
    embeddings: &[Vec<f32>],
    calibration: Calibration,
    t: MatchThresholds,
) -> Vec<ToolGrant> {
    let ClauseQuery {
        index: clause_index,
        act,
        embedding: query,
        verbs,
    } = clause;
    let scored: Vec<(usize, f32)> = embeddings
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let p = calibration.probability(cosine(query, e));
            let named = t.verb_boost > 0.0 && names_verb(&catalog.entries[i].name, verbs);
            (
                i,
                if named {
                    (p + t.verb_boost).min(1.0)
                } else {
                    p
                },
            )
        })
        .collect();
    let best_of = |read_only: bool| -> Vec<(usize, f32)> {
        let mut v: Vec<(usize, f32)> = scored
            .iter()
            .copied()
            .filter(|(i, _)| catalog.entries[*i].read_only == read_only)
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    };
    let grant = |i: usize, score: f32, role: ToolRole| ToolGrant {
        name: catalog.entries[i].name.clone(),
        score,
        role,
        side_effecting: !catalog.entries[i].read_only,
        clause: clause_index,
    };
    let writes = best_of(false);
    let reads = best_of(true);
    let best_read = reads.first().copied().filter(|(_, p)| *p >= t.read);
    let mut out = Vec::new();
    match act {
        SpeechAct::Action => {
            let best_write = writes.first().copied().filter(|(_, p)| *p >= t.grant);
            // A clause whose best match is a read is a lookup, whatever its act.
            let read_wins = matches!((best_read, best_write), (Some((_, r)), Some((_, w))) if r > w + t.read_margin);
            if let (Some((i, p)), false) = (best_write, read_wins) {
                out.push(grant(i, p, ToolRole::Requested));
                if let Some(&(j, q)) = writes.get(1)
                    && q >= t.grant
                    && p - q <= t.second_margin
                {
                    out.push(grant(j, q, ToolRole::Requested));
                }
                if let Some((r, q)) = best_read {
                    out.push(grant(r, q, ToolRole::Supporting));
                }
            } else if let Some((r, q)) = best_read {
                out.push(grant(r, q, ToolRole::Read));
            }
        }
        SpeechAct::Question => {
            if let Some((r, q)) = best_read {
                out.push(grant(r, q, ToolRole::Read));
            }
        }
        SpeechAct::Delegation => {
            // A clause that names its own action ("react with ✓ to the last
            // message") is granted it when the match is strong; the data it
            // delegates to still makes the intent open-ended.
            if let Some(&(i, p)) = writes
                .first()
                .filter(|(_, p)| *p >= t.grant.max(DELEGATION_GRANT))
            {
                out.push(grant(i, p, ToolRole::Requested));
            }
            if let Some((r, q)) = best_read {
                out.push(grant(r, q, ToolRole::Supporting));
            }
        }
    }
    out
}

/// Fills the entry's parameters from the clause's entities: each parameter
/// takes the first unused entity of its most preferred label. Returns
/// `(parameter, entity index)` pairs in parameter order.
pub fn fill_parameters(entry: &Entry, entities: &[(usize, &Entity)]) -> Vec<(String, usize)> {
    let mut used = vec![false; entities.len()];
    let mut out = Vec::new();
    let required: Vec<&str> = entry
        .input_schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // Required parameters pick first, in their schema order.
    let names = entry.parameter_names();
    let params = required
        .iter()
        .copied()
        .filter(|r| names.contains(r))
        .chain(names.iter().copied().filter(|n| !required.contains(n)));
    for p in params {
        for label in parameter_labels(p, entry.parameter(p)) {
            if let Some(k) = entities
                .iter()
                .enumerate()
                .position(|(k, (_, e))| !used[k] && e.label == label)
            {
                used[k] = true;
                out.push((p.to_string(), entities[k].0));
                break;
            }
        }
    }
    out
}

/// Builds the AuthZEN evaluation of a granted tool.
pub fn evaluation(
    entry: &Entry,
    grant: &ToolGrant,
    clause_text: &str,
    entities: &[Entity],
    clause_entities: &[usize],
) -> Evaluation {
    let candidates: Vec<(usize, &Entity)> = clause_entities
        .iter()
        .map(|&i| (i, &entities[i]))
        .filter(|(_, e)| e.label != EntityLabel::Action)
        .collect();
    let filled = fill_parameters(entry, &candidates);
    let mut properties = Object::new();
    for (param, idx) in &filled {
        properties.insert(param.clone(), Value::String(entities[*idx].text.clone()));
    }
    let id = filled
        .first()
        .map(|(_, idx)| entities[*idx].text.clone())
        .unwrap_or_else(|| "*".into());
    let mut context = Object::new();
    context.insert("clause".into(), json!(grant.clause));
    context.insert("clause_text".into(), json!(clause_text));
    context.insert("score".into(), json!(grant.score));
    context.insert(
        "entities".into(),
        json!(filled.iter().map(|(_, i)| i).collect::<Vec<_>>()),
    );
    Evaluation {
        action: Action::new(entry.name.clone()),
        resource: Resource {
            kind: resource_type(&entry.name),
            id,
            properties: (!properties.is_empty()).then_some(properties),
        },
        context: Some(context),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{EntryKind, ReadOnlySource};
    use crate::intent::EntitySource;

    fn entry(name: &str, read_only: bool, schema: Value) -> Entry {
        Entry {
            name: name.into(),
            title: None,
            description: String::new(),
            input_schema: schema,
            kind: EntryKind::Tool,
            read_only,
            read_only_source: ReadOnlySource::Hint,
            destructive: None,
            trusted_output: false,
            allowed_tools: vec![],
        }
    }

    fn catalog() -> Catalog {
        Catalog {
            entries: vec![
                entry("send_email", false, json!({"type": "object"})),
                entry("delete_email", false, json!({"type": "object"})),
                entry("search_contacts", true, json!({"type": "object"})),
            ],
        }
    }

    const CAL: Calibration = Calibration {
        scale: 10.0,
        bias: -5.0,
    };

    /// The grants of clause 0 with `query` over `catalog()`.
    fn grants(
        act: SpeechAct,
        query: &[f32],
        verbs: &[String],
        emb: &[Vec<f32>],
        t: MatchThresholds,
    ) -> Vec<ToolGrant> {
        let clause = ClauseQuery {
            index: 0,
            act,
            embedding: query,
            verbs,
        };
        match_clause(clause, &catalog(), emb, CAL, t)
    }

    fn names(g: &[ToolGrant]) -> Vec<(&str, ToolRole)> {
        g.iter().map(|g| (g.name.as_str(), g.role)).collect()
    }

    #[test]
    fn action_clauses_grant_the_best_side_effecting_tool() {
        let emb = vec![vec![1.0, 0.0], vec![0.6, 0.8], vec![0.0, 1.0]];
        let g = grants(
            SpeechAct::Action,
            &[1.0, 0.0],
            &[],
            &emb,
            MatchThresholds::default(),
        );
        assert_eq!(names(&g), vec![("send_email", ToolRole::Requested)]);
        assert!(g[0].score > 0.99);
    }

    #[test]
    fn questions_grant_no_side_effects() {
        let emb = vec![vec![1.0, 0.0], vec![0.6, 0.8], vec![0.0, 1.0]];
        let g = grants(
            SpeechAct::Question,
            &[1.0, 0.0],
            &[],
            &emb,
            MatchThresholds::default(),
        );
        assert!(g.is_empty());
        let g = grants(
            SpeechAct::Question,
            &[0.0, 1.0],
            &[],
            &emb,
            MatchThresholds::default(),
        );
        assert_eq!(names(&g), vec![("search_contacts", ToolRole::Read)]);
    }

    #[test]
    fn an_action_closest_to_a_read_is_a_read() {
        let emb = vec![vec![0.6, 0.8], vec![0.6, 0.8], vec![0.0, 1.0]];
        let g = grants(
            SpeechAct::Action,
            &[0.0, 1.0],
            &[],
            &emb,
            MatchThresholds::default(),
        );
        assert_eq!(names(&g), vec![("search_contacts", ToolRole::Read)]);
    }

    #[test]
    fn a_close_second_is_granted_only_within_the_margin() {
        let emb = vec![vec![1.0, 0.0], vec![0.99, 0.14], vec![0.0, 1.0]];
        let t = MatchThresholds {
            second_margin: 0.05,
            ..MatchThresholds::default()
        };
        let g = grants(SpeechAct::Action, &[1.0, 0.0], &[], &emb, t);
        assert_eq!(g.len(), 2);
        let g = grants(
            SpeechAct::Action,
            &[1.0, 0.0],
            &[],
            &emb,
            MatchThresholds::default(),
        );
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn the_verb_said_decides_between_close_siblings() {
        // send_email is the closer match; "delete" names its sibling
        let emb = vec![vec![1.0, 0.0], vec![0.99, 0.14], vec![0.0, 1.0]];
        let t = MatchThresholds {
            verb_boost: 0.1,
            ..MatchThresholds::default()
        };
        let verbs = vec!["delete".to_string()];
        let g = grants(SpeechAct::Action, &[1.0, 0.0], &verbs, &emb, t);
        assert_eq!(names(&g), vec![("delete_email", ToolRole::Requested)]);
        // no boost, or a verb no name holds: the closer match stays
        for (verbs, t) in [
            (verbs.clone(), MatchThresholds::default()),
            (vec!["remove".to_string()], t),
        ] {
            let g = grants(SpeechAct::Action, &[1.0, 0.0], &verbs, &emb, t);
            assert_eq!(names(&g), vec![("send_email", ToolRole::Requested)]);
        }
    }

    #[test]
    fn a_verb_is_named_only_as_a_whole_word() {
        let verbs = vec!["log".to_string()];
        assert!(names_verb("log_call", &verbs));
        assert!(names_verb("logCall", &verbs));
        assert!(names_verb("crm.log-call", &verbs));
        assert!(!names_verb("login", &verbs));
        assert!(!names_verb("log_call", &[]));
    }

    #[test]
    fn below_threshold_grants_nothing() {
        let emb = vec![vec![0.0, 1.0], vec![0.0, 1.0], vec![0.0, 1.0]];
        let g = grants(
            SpeechAct::Action,
            &[1.0, 0.0],
            &[],
            &emb,
            MatchThresholds::default(),
        );
        assert!(g.is_empty());
    }

    #[test]
    fn parameters_take_entities_of_their_label() {
        let e = entry(
            "send_money",
            false,
            json!({"type": "object", "required": ["recipient", "amount"],
                   "properties": {"amount": {"type": "number"}, "recipient": {"type": "string"}, "memo": {}}}),
        );
        let ent = |label, text: &str| Entity {
            label,
            text: text.into(),
            start: 0,
            end: 0,
            score: 1.0,
            source: EntitySource::Model,
        };
        let entities = vec![
            ent(EntityLabel::Action, "send"),
            ent(EntityLabel::Money, "$50"),
            ent(EntityLabel::Person, "Ana"),
        ];
        let grant = ToolGrant {
            name: "send_money".into(),
            score: 0.9,
            role: ToolRole::Requested,
            side_effecting: true,
            clause: 0,
        };
        let ev = evaluation(&e, &grant, "send $50 to Ana", &entities, &[0, 1, 2]);
        assert_eq!(ev.action.name, "send_money");
        assert_eq!(ev.resource.kind, "money");
        let props = ev.resource.properties.unwrap();
        assert_eq!(props["amount"], "$50");
        assert_eq!(props["recipient"], "Ana");
        assert!(!props.contains_key("memo"));
        assert_eq!(ev.resource.id, "Ana");
    }
}

//! Pipeline tests over the keyword encoder: segmentation, clause splitting
//! at a second action, grants per speech act, entities and quads.

use super::keyword::KeywordEncoder;
use super::*;
use crate::catalog::{Limits, parse_catalog};
use serde_json::json;

fn catalog() -> Catalog {
    parse_catalog(
        &json!({"tools": [
            {"name": "book_flight", "description": "Book a flight ticket to a destination city.",
             "inputSchema": {"type": "object", "required": ["destination"],
                             "properties": {"destination": {"type": "string"}, "date": {"type": "string", "format": "date"}}},
             "annotations": {"readOnlyHint": false}},
            {"name": "cancel_flight", "description": "Cancel an existing reservation.",
             "annotations": {"readOnlyHint": false}},
            {"name": "send_email", "description": "Send an email message with the receipt to a recipient.",
             "inputSchema": {"type": "object", "properties": {"to": {"type": "string", "format": "email"}}},
             "annotations": {"readOnlyHint": false}},
            {"name": "list_flights", "description": "List my booked flights and their status.",
             "annotations": {"readOnlyHint": true}}
        ]}),
        Limits::default(),
    )
    .unwrap()
}

fn extractor() -> Extractor {
    let enc = KeywordEncoder::new(Calibration {
        scale: 10.0,
        bias: -3.0,
    });
    Extractor::new(Arc::new(enc), ExtractionConfig::default())
}

async fn extract(prompt: &str) -> Intent {
    let x = extractor();
    let c = catalog();
    let emb = x.embed_catalog(&c).await.unwrap();
    x.extract(Subject::new("user", "alice"), prompt, &c, &emb)
        .await
        .unwrap()
}

#[tokio::test]
async fn two_actions_joined_by_and_become_two_quads() {
    let i =
        extract("Book a flight to Paris on 2025-05-02 and email the receipt to bob@example.com")
            .await;
    assert_eq!(i.clauses.len(), 2, "{:?}", i.clauses);
    assert_eq!(i.clauses[0].text, "Book a flight to Paris on 2025-05-02");
    assert_eq!(i.clauses[1].text, "email the receipt to bob@example.com");
    let granted: Vec<&str> = i.granted().collect();
    assert_eq!(granted, vec!["book_flight", "send_email"]);
    assert_eq!(i.evaluations.len(), 2);
    let email = &i.evaluations[1];
    assert_eq!(email.resource.id, "bob@example.com");
    assert_eq!(
        i.evaluations[0].resource.properties.as_ref().unwrap()["date"],
        "2025-05-02"
    );
    let labels: Vec<EntityLabel> = i.entities.iter().map(|e| e.label).collect();
    assert!(labels.contains(&EntityLabel::Email) && labels.contains(&EntityLabel::Datetime));
    assert_eq!(i.speech_act, SpeechAct::Action);
}

#[tokio::test]
async fn a_verbless_clause_beside_a_request_is_context() {
    let alone = extract("Existing reservation K7RZPQ.").await;
    assert_eq!(alone.speech_act, SpeechAct::Action);
    assert!(alone.granted().any(|t| t == "cancel_flight"), "{alone:?}");

    let i = extract("Book a flight to Paris. Existing reservation K7RZPQ.").await;
    assert_eq!(i.clauses.len(), 2, "{:?}", i.clauses);
    assert_eq!(i.clauses[1].speech_act, SpeechAct::Question);
    let granted: Vec<&str> = i.granted().collect();
    assert_eq!(granted, vec!["book_flight"]);
}

#[tokio::test]
async fn questions_grant_no_side_effecting_tool() {
    let i = extract("which flights have I booked?").await;
    assert_eq!(i.granted().count(), 0);
    assert_eq!(i.speech_act, SpeechAct::Question);
    assert!(i.evaluations.is_empty());
    assert!(i.tools.iter().all(|t| !t.side_effecting));
}

#[tokio::test]
async fn delegations_are_open_ended_with_their_source() {
    let i = extract("do what the email from Ana asks").await;
    let oe = i.open_ended.clone().expect("open-ended");
    assert_eq!(oe.source, "email from Ana");
    assert_eq!(oe.enforcement, OpenEndedPolicy::RequireApproval);
    assert_eq!(i.speech_act, SpeechAct::Delegation);
    assert_eq!(i.granted().count(), 0);
}

#[tokio::test]
async fn entity_offsets_are_characters() {
    let i = extract("Book a flight to Zürich, mail u@example.com").await;
    let e = i
        .entities
        .iter()
        .find(|e| e.label == EntityLabel::Email)
        .unwrap();
    let chars: String = "Book a flight to Zürich, mail u@example.com"
        .chars()
        .skip(e.start)
        .take(e.end - e.start)
        .collect();
    assert_eq!(chars, e.text);
}

#[tokio::test]
async fn empty_prompts_and_stale_embeddings_are_errors() {
    let x = extractor();
    let c = catalog();
    let emb = x.embed_catalog(&c).await.unwrap();
    assert!(matches!(
        x.extract(Subject::new("user", "a"), " ?! ", &c, &emb).await,
        Err(ExtractionError::EmptyPrompt)
    ));
    let short = CatalogEmbeddings {
        model_sha256: emb.model_sha256.clone(),
        vectors: emb.vectors[..2].to_vec(),
    };
    assert!(matches!(
        x.extract(Subject::new("user", "a"), "book", &c, &short)
            .await,
        Err(ExtractionError::StaleEmbeddings(_))
    ));
}

#[test]
fn cuts_only_after_connectors() {
    let a = |s: usize, e: usize| Span {
        label: EntityLabel::Action,
        start: s,
        end: e,
        score: 1.0,
    };
    let p = "send Bob the file I asked you to find";
    assert!(action_cuts(p, 0, &[a(0, 4), a(33, 37)]).is_empty());
    let p = "lock the front door, turn off the lights";
    assert_eq!(action_cuts(p, 0, &[a(0, 4), a(21, 29)]), vec![(19, 21)]);
    let p = "find the invoice and pay it";
    assert_eq!(action_cuts(p, 0, &[a(0, 4), a(21, 24)]), vec![(16, 21)]);
}

#[test]
fn grants_merge_by_strongest_role() {
    let g = |name: &str, role, score| ToolGrant {
        name: name.into(),
        score,
        role,
        side_effecting: false,
        clause: 0,
    };
    let merged = merge_grants(vec![
        g("a", ToolRole::Supporting, 0.9),
        g("a", ToolRole::Read, 0.6),
        g("b", ToolRole::Read, 0.5),
        g("b", ToolRole::Read, 0.7),
    ]);
    assert_eq!(merged.len(), 2);
    assert_eq!(merged[0].role, ToolRole::Read);
    assert_eq!(merged[1].score, 0.7);
}

#[tokio::test]
async fn a_negated_action_grants_nothing() {
    let i = extract("which flights have I booked? just looking, don't book anything").await;
    assert_eq!(i.granted().count(), 0, "{:?}", i.tools);
    assert_eq!(i.speech_act, SpeechAct::Question);
    // A negator before another word does not undo the request.
    let i = extract("if it's not raining, book a flight to Paris").await;
    assert_eq!(i.granted().collect::<Vec<_>>(), vec!["book_flight"]);
}

#[tokio::test]
async fn the_verbs_of_a_payload_grant_nothing() {
    // The keyword encoder tags "send" and "cancel" as actions; the colon
    // after the action and its shaped target starts the message.
    let i = extract("send an email to bob@example.com: please cancel my flight, I am ill").await;
    let granted: Vec<&str> = i.granted().collect();
    assert_eq!(granted, vec!["send_email"], "{:?}", i.tools);
    assert!(
        !i.entities.iter().any(|e| e.text == "cancel"),
        "{:?}",
        i.entities
    );
    // Without the colon the second verb is a request of its own.
    let i = extract("send an email to bob@example.com and cancel my flight").await;
    let granted: Vec<&str> = i.granted().collect();
    assert_eq!(
        granted,
        vec!["send_email", "cancel_flight"],
        "{:?}",
        i.tools
    );
}

/// Model spans over the first occurrence of each text.
fn spans_over(text: &str, spans: &[(&str, EntityLabel)]) -> Vec<(Span, validators::Origin)> {
    spans
        .iter()
        .map(|&(needle, label)| {
            (
                decode::span_over(text, needle, label),
                validators::Origin::Model,
            )
        })
        .collect()
}

#[test]
fn a_pronoun_clause_refers_to_the_last_object_before_it() {
    use EntityLabel::{Org, Resource};
    let text = "Cancel the deploy workflow for web and trigger it again";
    let spans = spans_over(text, &[("deploy workflow", Resource), ("web", Org)]);
    let clause = text.find("trigger").unwrap();
    let object = antecedent_object(text, &spans, 0, clause, text.len()).unwrap();
    assert_eq!(&text[object.0..object.1], "deploy workflow");
    // an object outside the clause's segment is not referred to
    assert_eq!(
        antecedent_object(text, &spans, clause, clause, text.len()),
        None
    );
    // no pronoun, or an object of its own: nothing is added
    for (text, own) in [
        ("Cancel the deploy workflow and trigger a build", "build"),
        (
            "Cancel the deploy workflow and trigger it for the release pipeline",
            "release pipeline",
        ),
    ] {
        let spans = spans_over(text, &[("deploy workflow", Resource), (own, Resource)]);
        let clause = text.find("trigger").unwrap();
        assert_eq!(
            antecedent_object(text, &spans, 0, clause, text.len()),
            None,
            "{text}"
        );
    }
}

/// Invented background with no request in it, about `chars` characters
/// (the sentences of `fixtures/text/background.txt`, repeated).
fn background(chars: usize) -> String {
    let lines: Vec<&str> = include_str!("../../fixtures/text/background.txt")
        .lines()
        .collect();
    let mut out = String::new();
    for line in lines.iter().cycle() {
        if out.len() >= chars {
            break;
        }
        out.push_str(line);
        out.push(' ');
    }
    out.push_str("\n\n");
    out
}

#[tokio::test]
async fn an_ask_after_long_background_is_read_as_if_alone() {
    let ask = "Book a flight to Lisbon on 2025-06-03 and email the receipt to dana@example.org";
    let alone = extract(ask).await;
    let bg = background(12_000);
    let long = extract(&format!("{bg}{ask}")).await;
    // Far more sentences than clauses a request may have: the ask's
    // clauses are kept, and read as they are on their own.
    assert!(segment::segment(&bg).len() > 2 * ExtractionConfig::default().max_clauses);
    assert!(long.clauses.len() <= ExtractionConfig::default().max_clauses);
    let granted: Vec<&str> = long.granted().collect();
    assert_eq!(granted, alone.granted().collect::<Vec<_>>());
    assert_eq!(granted, ["book_flight", "send_email"]);
    assert_eq!(long.evaluations.len(), alone.evaluations.len());
    for (l, a) in long.evaluations.iter().zip(&alone.evaluations) {
        assert_eq!(l.action.name, a.action.name);
        assert_eq!(l.resource, a.resource);
    }
    // The ask's entities, at its offsets shifted by the background.
    let shift = bg.chars().count();
    for e in &alone.entities {
        assert!(
            long.entities.iter().any(|l| l.label == e.label
                && l.text == e.text
                && l.start == e.start + shift
                && l.end == e.end + shift),
            "{e:?} not found at +{shift}"
        );
    }
}

#[test]
fn a_long_request_keeps_its_asking_clauses_first() {
    let clause = |start: usize| ClauseRange {
        start,
        end: start + 5,
        segment: start / 10,
        whole: true,
        head_end: start + 5,
    };
    let clauses: Vec<ClauseRange> = (0..10).map(|k| clause(k * 10)).collect();
    let action = |start: usize| Span {
        label: EntityLabel::Action,
        start,
        end: start + 2,
        score: 1.0,
    };
    let other = Span {
        label: EntityLabel::Person,
        ..action(20)
    };
    // Clauses 7 and 9 ask; clause 2 only names someone.
    let spans = [action(70), action(90), other];
    let starts = |v: Vec<ClauseRange>| v.iter().map(|c| c.start).collect::<Vec<_>>();
    assert_eq!(
        starts(keep_clauses(clauses.clone(), &spans, 4)),
        [0, 10, 70, 90]
    );
    // Within the cap nothing changes.
    assert_eq!(starts(keep_clauses(clauses.clone(), &spans, 10)).len(), 10);
    // More asks than room: the first and the last ones.
    assert_eq!(starts(keep_clauses(clauses.clone(), &spans, 1)), [90]);
    let spans: Vec<Span> = [10, 30, 50, 70, 90].map(action).to_vec();
    assert_eq!(starts(keep_clauses(clauses, &spans, 3)), [10, 70, 90]);
}

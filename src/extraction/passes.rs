//! The span passes, in the order they run: the model's spans are
//! relabelled and redrawn on the boundaries the annotation guide fixes,
//! the shape validators' spans join them, and identifiers take the noun
//! of their record. Each pass is named, so a trace (`RUST_LOG=
//! telos::extraction::passes=debug`) says which pass changed which spans.

use tracing::{Level, debug, enabled};

use super::boundaries;
use super::validators::{self, Origin};
use crate::text::Span;

/// Spans with where each came from.
pub type Tagged = Vec<(Span, Origin)>;

/// What a pass does.
#[derive(Clone, Copy)]
pub enum Step {
    /// Rewrites the model's spans, before the shaped values join them.
    Model(fn(&str, Vec<Span>) -> Vec<Span>),
    /// Merges the shape validators' spans into the model's.
    MergeShaped,
    /// Rewrites the merged spans.
    Merged(fn(&str, Tagged) -> Tagged),
}

/// A named span pass.
#[derive(Clone, Copy)]
pub struct Pass {
    /// Its name, as traces give it.
    pub name: &'static str,
    /// What it does.
    pub step: Step,
}

const fn model(name: &'static str, run: fn(&str, Vec<Span>) -> Vec<Span>) -> Pass {
    Pass {
        name,
        step: Step::Model(run),
    }
}

/// Every span pass, in order. The `Model` passes come first, then the
/// one merge, then the `Merged` passes.
pub const PASSES: &[Pass] = &[
    model("relabel_identifiers", validators::relabel_identifiers),
    model("trim_edges", boundaries::trim_edges),
    model("drop_generic_times", boundaries::drop_generic_times),
    model("organisations", boundaries::organisations),
    model("possessive_days", boundaries::possessive_days),
    model("deictic_dates", boundaries::deictic_dates),
    model("years_in_file_names", boundaries::years_in_file_names),
    model("split_date_ranges", boundaries::split_date_ranges),
    model("split_person_lists", boundaries::split_person_lists),
    model("absorb_kind_nouns", boundaries::absorb_kind_nouns),
    model("name_before_kind_nouns", boundaries::name_before_kind_nouns),
    Pass {
        name: "merge_shaped",
        step: Step::MergeShaped,
    },
    Pass {
        name: "record_nouns",
        step: Step::Merged(boundaries::record_nouns::<Origin>),
    },
];

/// Spans between passes.
enum Spans {
    Model(Vec<Span>),
    Merged(Tagged),
}

/// Runs [`PASSES`] over the model's spans of `text` and the shape
/// validators' `shaped` spans (byte offsets of `text`).
pub fn run(text: &str, model: Vec<Span>, shaped: Vec<Span>) -> Vec<(Span, Origin)> {
    run_passes(PASSES, text, model, shaped)
}

fn run_passes(
    passes: &[Pass],
    text: &str,
    model: Vec<Span>,
    shaped: Vec<Span>,
) -> Vec<(Span, Origin)> {
    let traced = enabled!(Level::DEBUG);
    let mut shaped = Some(shaped);
    let mut spans = Spans::Model(model);
    for pass in passes {
        spans = match (pass.step, spans) {
            (Step::Model(f), Spans::Model(s)) => {
                let before = traced.then(|| s.clone());
                let after = f(text, s);
                if let Some(before) = before.filter(|b| *b != after) {
                    trace_change(pass.name, text, &before, &after);
                }
                Spans::Model(after)
            }
            (Step::MergeShaped, Spans::Model(s)) => {
                Spans::Merged(validators::merge(s, shaped.take().unwrap_or_default()))
            }
            (Step::Merged(f), Spans::Merged(s)) => {
                let before = traced.then(|| s.iter().map(|(s, _)| s.clone()).collect());
                let after = f(text, s);
                let now: Vec<Span> = after.iter().map(|(s, _)| s.clone()).collect();
                if let Some(before) = before.filter(|b: &Vec<Span>| *b != now) {
                    trace_change(pass.name, text, &before, &now);
                }
                Spans::Merged(after)
            }
            // Out of order: `PASSES` is checked by a test never to be.
            (_, s) => s,
        };
    }
    match spans {
        Spans::Merged(s) => s,
        Spans::Model(s) => validators::merge(s, shaped.unwrap_or_default()),
    }
}

fn trace_change(pass: &str, text: &str, before: &[Span], after: &[Span]) {
    let show = |spans: &[Span]| {
        spans
            .iter()
            .map(|s| format!("{:?}:{}", s.label, text.get(s.start..s.end).unwrap_or("")))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    debug!(
        pass,
        before = %show(before),
        after = %show(after),
        "span pass changed spans"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extraction::decode::span_over as span;
    use crate::intent::EntityLabel;

    #[test]
    fn passes_run_in_phase_order() {
        let phase = |p: &Pass| match p.step {
            Step::Model(_) => 0,
            Step::MergeShaped => 1,
            Step::Merged(_) => 2,
        };
        let phases: Vec<u8> = PASSES.iter().map(phase).collect();
        assert!(phases.windows(2).all(|w| w[0] <= w[1]), "{phases:?}");
        assert_eq!(phases.iter().filter(|&&p| p == 1).count(), 1);
        let mut names: Vec<&str> = PASSES.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PASSES.len(), "pass names are unique");
    }

    #[test]
    fn the_table_runs_model_passes_the_merge_and_merged_passes() {
        let text = "pay Holloway Lettings for trip ZP3N6D";
        let model = vec![
            span(text, "Holloway Lettings", EntityLabel::Person),
            span(text, "ZP3N6D", EntityLabel::Resource),
        ];
        let shaped = crate::text::find_shaped(text);
        let out: Vec<(EntityLabel, &str, Origin)> = run(text, model, shaped)
            .into_iter()
            .map(|(s, o)| (s.label, &text[s.start..s.end], o))
            .collect();
        assert_eq!(
            out,
            vec![
                (EntityLabel::Org, "Holloway Lettings", Origin::Model),
                (EntityLabel::Resource, "trip ZP3N6D", Origin::Both),
            ]
        );
    }
}

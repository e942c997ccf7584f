"""Tests of the BFCL split by function group and of the bank's vocabulary check.

    python3 -m unittest discover -s models/train -p 'test_*.py'

Stdlib only (no bfcl-eval, no torch).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "bank"))

import bfcl  # noqa: E402
import check  # noqa: E402
import gen_mcp  # noqa: E402


def row(rid, query, names, expected=None):
    fns = [{"name": n, "description": "", "inputSchema": {"type": "object", "properties": {}}} for n in names]
    return {"id": rid, "category": "multiple", "query": query, "functions": fns,
            "expected": expected if expected is not None else names[:1],
            "single_candidate": len(fns) < 2}


class BfclGroups(unittest.TestCase):
    def test_rows_sharing_a_function_or_query_form_one_group(self):
        rows = [row("a", "q one", ["f", "g"]), row("b", "q two", ["g", "h"]),
                row("c", "Q  One", ["x"]), row("d", "q three", ["y", "z"])]
        groups = sorted(sorted(r["id"] for r in g) for g in bfcl.function_groups(rows))
        self.assertEqual(groups, [["a", "b", "c"], ["d"]])

    def test_split_keeps_groups_whole_and_disjoint(self):
        rows = [row(f"r{i}", f"query {i}", [f"f{i}", f"f{i + 1}"]) for i in range(0, 40, 2)]
        rows += [row(f"s{i}", f"other {i}", [f"f{i}"]) for i in range(0, 40, 2)]
        train, held, stats = bfcl.split_by_group(rows, 0.5, 10)
        self.assertTrue(train and held)
        self.assertEqual(len(train) + len(held), len(rows))
        bfcl.check_disjoint(train, held)  # raises on overlap
        self.assertEqual(stats["groups"]["train"] + stats["groups"]["heldout"], 20)

    def test_groups_above_the_cap_stay_in_training(self):
        rows = [row(f"r{i}", f"query {i}", ["shared", f"f{i}"]) for i in range(30)]
        train, held, stats = bfcl.split_by_group(rows, 1.0, 10)
        self.assertEqual((len(train), len(held), stats["largest_group"]), (30, 0, 30))

    def test_overlap_fails(self):
        with self.assertRaises(SystemExit):
            bfcl.check_disjoint([row("a", "q", ["f", "g"])], [row("b", "other", ["g", "k"])])
        with self.assertRaises(SystemExit):
            bfcl.check_disjoint([row("a", "Same  query", ["f"])], [row("b", "same query", ["k"])])

    def test_committed_heldout_marks_single_candidate_rows(self):
        path = os.path.join(HERE, "..", "..", "fixtures", "bfcl", "heldout.jsonl")
        with open(path, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        self.assertTrue(rows)
        for r in rows:
            self.assertEqual(r["single_candidate"], len(r["functions"]) < 2, r["id"])
        self.assertTrue(any(not r["single_candidate"] and r["expected"] for r in rows))


class Vocabulary(unittest.TestCase):
    def test_words_skip_ids_and_split_hyphens(self):
        self.assertEqual(check.words("Reopen DES-19 for the all-hands, Ana's"), {"reopen", "for", "the", "all", "hands", "ana"})

    def _bank(self, tmp, template):
        domain = {"domain": "d", "catalog": {"tools": []}, "templates": {"t": [template]}}
        with open(os.path.join(tmp, "d.json"), "w", encoding="utf-8") as f:
            json.dump(domain, f)
        with open(os.path.join(tmp, "values.json"), "w", encoding="utf-8") as f:
            json.dump({"PERSON": ["Quillonby"]}, f)
        with open(os.path.join(tmp, "generic.json"), "w", encoding="utf-8") as f:
            json.dump({"prefixes": ["hey"]}, f)

    def _run(self, template, train, nontrain):
        saved = check.split_vocabularies, check.errors
        check.split_vocabularies = lambda repo, path: (set(train), set(nontrain))
        check.errors = 0
        try:
            with tempfile.TemporaryDirectory() as tmp:
                self._bank(tmp, template)
                found = check.check_vocabulary(tmp, "/nonexistent", None)
                return found, check.errors
        finally:
            check.split_vocabularies, check.errors = saved

    def test_a_word_only_in_non_training_data_fails(self):
        found, errors = self._run("[[send]] the {FILE:zorblat report}", {"send", "the"}, {"zorblat", "send"})
        self.assertEqual(found, 1)
        self.assertGreaterEqual(errors, 1)

    def test_values_are_checked(self):
        found, _ = self._run("[[send]] it", {"send"}, {"quillonby"})
        self.assertEqual(found, 1)

    def test_a_word_also_in_training_data_passes(self):
        found, errors = self._run("[[send]] the {FILE:zorblat report}", {"zorblat"}, {"zorblat"})
        self.assertEqual((found, errors), (0, 0))

    def test_code_lists_are_covered(self):
        with tempfile.TemporaryDirectory() as tmp:
            where = {w for w, _ in check.generator_texts(tmp)}
        self.assertIn("common.py:_BRANDS", where)
        self.assertIn("gen_data.py:FALLBACK_VALUES", where)


class McpTrainingData(unittest.TestCase):
    def test_only_train_deployments_are_read(self):
        with open(os.path.join(gen_mcp.REAL, "splits.json"), encoding="utf-8") as f:
            splits = json.load(f)
        deps = gen_mcp.train_deployments()
        self.assertEqual(deps, splits["train"])
        self.assertFalse(set(deps) & set(splits["dev"] + splits["test"]))

    def test_entities_are_located_without_overlap(self):
        spans = gen_mcp.locate("Ask Ana and Ana Silva", [{"label": "PERSON", "text": "Ana Silva"},
                                                        {"label": "PERSON", "text": "Ana"}])
        self.assertEqual(spans, [[4, 7, "PERSON"], [12, 21, "PERSON"]])

    def test_synthetic_clauses_name_catalog_tools(self):
        import random  # noqa: PLC0415

        cats = gen_mcp.catalogs(gen_mcp.train_deployments())
        rng = random.Random(1)
        rows = gen_mcp.synth_examples(cats, 40, rng, gen_mcp.load_values(rng))
        self.assertEqual(len(rows), 40 * len(cats))
        for r in rows:
            names = {t["name"] for t in cats[r["domain"]]}
            for c in r["clauses"]:
                self.assertTrue(c["tool"] is None or c["tool"] in names, c)
                self.assertTrue(0 <= c["start"] < c["end"] <= len(r["text"]))
            for a, b, _ in r["spans"]:
                self.assertEqual(r["text"][a:b], r["text"][a:b].strip())
        self.assertTrue(any(len(r["clauses"]) > 1 for r in rows))
        self.assertTrue(any(r["act"] == "delegation" for r in rows))


if __name__ == "__main__":
    unittest.main()

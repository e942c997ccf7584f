"""Training data over the train servers of fixtures/mcp (seeded).

Reads the train deployments of fixtures/real (fixtures/real/splits.json:
catalogs of train servers of fixtures/mcp/splits.json combined the way
gateways combine them, `<server>__<tool>`) and writes to --out (default
/work/train-out/data):

  mcp_catalogs.json   deployment -> [{name, entry, read_only, tool}]
  mcp_train.jsonl     examples in the format of gen_data.py, plus "tools":
                      every tool the whole request needs

Two kinds of examples:

- `real`: the train requests of fixtures/real as written, with their labels
  (entities located in the text, speech act, side-effecting and read tools;
  no clause ranges: the labels do not say which words ask for which tool);
- `mcp_synth`: requests generated from the asks below (written from the
  train servers' catalogs and fixtures/ANNOTATION.md) in the shapes of real
  requests: greetings and background, conditions first, references to an
  object named in an earlier sentence, quoted payloads, ordered task lists,
  indirect verbs, and delegations to data. Each ask is a clause range with
  its tool, so clauses are also learnt inside their request.

Never reads the dev or test requests of fixtures/real nor dev/test servers.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, Doc, entry_text, is_read_only, render_template, write_jsonl  # noqa: E402
from common import DEFAULT_WORK  # noqa: E402

REAL = os.path.join(REPO, "fixtures", "real")

# Asks per tool: (template, act). `it` asks refer back to an object named in
# an earlier sentence (see REFERS); their tool needs that object.
ASKS = {
    "slack__slack_post_message": [
        ("[[post]] a short summary in {CHANNEL}", "action"),
        ("[[drop]] a note in {CHANNEL} that the review moved to {DATETIME}", "action"),
        ("[[let]] {CHANNEL} know we're done for {DATETIME}", "action"),
        ("[[announce]] it in {CHANNEL}", "action"),
    ],
    "slack__slack_reply_to_thread": [
        ("[[reply]] in that thread that I'm looking into it", "action"),
        ("[[answer]] the thread from {PERSON} in {CHANNEL} with a quick thanks", "action"),
    ],
    "slack__slack_add_reaction": [("[[react]] with a thumbs up to the last message in {CHANNEL}", "action")],
    "slack__slack_get_channel_history": [
        ("[[catch]] me up on what people posted in {CHANNEL} since {DATETIME}", "question"),
        ("what did people say in {CHANNEL} today", "question"),
    ],
    "slack__slack_get_users": [("who is in our workspace with the name {PERSON}", "question")],
    "slack__slack_list_channels": [("which channels do we have about the launch", "question")],
    "github__create_issue": [
        ("[[open]] an issue for it in {RESOURCE:web-client}", "action"),
        ("[[file]] a bug about the broken login page on {RESOURCE:mobile-app}", "action"),
    ],
    "github__add_issue_comment": [("[[comment]] on issue {RESOURCE:#482} that the fix is in review", "action")],
    "github__merge_pull_request": [("[[merge]] pull request {RESOURCE:#97} once it's green", "action")],
    "github__create_pull_request_review": [("[[approve]] the pull request {RESOURCE:#131}", "action")],
    "github__get_file_contents": [("[[show]] me what {FILE:README.md} says on main", "question")],
    "github__list_issues": [("which issues are still open on {RESOURCE:data-sync}", "question")],
    "git__git_commit": [("[[commit]] the staged changes with the message \"tidy up config\"", "action")],
    "git__git_add": [("[[stage]] {FILE:src/app.py}", "action")],
    "git__git_log": [("what were the last five commits", "question")],
    "jira__jira_post": [("[[create]] a ticket for it in the {RESOURCE:OPS} project", "action")],
    "jira__jira_get": [("[[look up]] ticket {RESOURCE:OPS-214}", "question")],
    "sentry__update_issue": [("[[resolve]] the error it points to", "action"),
                             ("[[mark]] issue {RESOURCE:PAY-3F} as resolved", "action")],
    "filesystem__write_file": [("[[save]] the notes to {FILE:notes/retro.md}", "action")],
    "filesystem__read_text_file": [("[[read]] {FILE:docs/setup.md}", "question")],
    "filesystem__move_file": [("[[move]] {FILE:draft.txt} into the {FILE:archive} folder", "action")],
    "playwright__browser_navigate": [("[[open]] {URL} in the browser", "action")],
    "postgres__query": [("how many sign-ups did we get {DATETIME}", "question")],
    "imap-email__send_email": [
        ("[[email]] {PERSON} at {EMAIL} that we're confirmed for {DATETIME}", "action"),
        ("[[send]] {PERSON} a short note saying thanks", "action"),
        ("[[write]] back to {PERSON} and say yes", "action"),
        ("[[forward]] it to {EMAIL}", "action"),
    ],
    "imap-email__create_draft": [("[[draft]] a reply to {PERSON}, but don't send it yet", "action")],
    "imap-email__delete_email": [("[[get rid of]] the newsletter emails from {ORG}", "action")],
    "imap-email__search_emails": [("[[find]] the email from {PERSON} about the contract", "question"),
                                  ("did {PERSON} write back about {DATETIME}", "question")],
    "imap-email__get_email": [("what does the latest email from {PERSON} say", "question")],
    "caldav-calendar__create_event": [
        ("[[put]] it on my calendar", "action"),
        ("[[block]] two hours on {DATETIME} for it", "action"),
        ("[[set up]] a call with {PERSON} {DATETIME}", "action"),
        ("[[add]] the dentist to my calendar for {DATETIME}", "action"),
    ],
    "caldav-calendar__update_event": [("[[push]] my meeting with {PERSON} to {DATETIME}", "action"),
                                      ("[[bump]] the review to {DATETIME}", "action")],
    "caldav-calendar__delete_event": [("[[cancel]] the sync with {PERSON} on {DATETIME}", "action")],
    "caldav-calendar__search_events": [("when am I meeting {PERSON}", "question")],
    "caldav-calendar__free_busy": [("am I free {DATETIME}", "question")],
    "todoist__create_tasks": [("[[add]] a to-do to call {PERSON} {DATETIME}", "action"),
                              ("[[remind]] me to pay the rent {DATETIME}", "action")],
    "todoist__close_tasks": [("[[tick off]] the task about the passport photos", "action")],
    "todoist__update_tasks": [("[[move]] my gym task to {DATETIME}", "action")],
    "todoist__get_tasks_list": [("what's on my list for {DATETIME}", "question")],
    "weather__get_forecast": [("what's the forecast for {LOCATION} {DATETIME}", "question")],
    "aws-location__search_places": [("[[find]] a quiet café near {LOCATION}", "question")],
    "aws-location__calculate_route": [("how long is the drive from {LOCATION} to {LOCATION}", "question")],
    "time__convert_time": [("what time is {DATETIME} in {LOCATION}", "question")],
    "memory__add_observations": [("[[remember]] that {PERSON} prefers morning calls", "action")],
    "memory__search_nodes": [("what do you know about {PERSON}", "question")],
    "fetch__fetch": [("[[read]] {URL} for me", "question")],
    "xero__create-invoice": [("[[bill]] {ORG} {MONEY} for the March work", "action"),
                             ("[[invoice]] {PERSON} for {MONEY}", "action")],
    "xero__list-contacts": [("[[look up]] {ORG} in the contacts", "question")],
    "xero__create-bank-transaction": [("[[record]] the {MONEY} I paid {ORG} {DATETIME}", "action")],
    "excel__write_range": [("[[put]] {MONEY} in the total cell of {FILE:budget.xlsx}", "action")],
    "excel__read_range": [("what's in the first column of {FILE:budget.xlsx}", "question")],
    "asana__asana_create_task": [("[[add]] a task for {PERSON} to review the brief by {DATETIME}", "action"),
                                 ("[[make]] a task out of it in the {RESOURCE:Website} project", "action")],
    "asana__asana_update_task": [("[[assign]] the copy task to {PERSON}", "action"),
                                 ("[[mark]] the banner task done", "action")],
    "asana__asana_create_task_story": [("[[leave]] a comment on the task saying it's blocked", "action")],
    "asana__asana_search_tasks": [("which tasks are due {DATETIME}", "question")],
    "asana__asana_delete_task": [("[[delete]] the duplicate task about the logo", "action")],
    "airtable__create_record": [("[[add]] {PERSON} to the {RESOURCE:Candidates} table", "action")],
    "airtable__update_records": [("[[change]] the status of {PERSON}'s row to done", "action")],
    "airtable__search_records": [("[[find]] the row for {ORG} in the tracker", "question")],
    "linear__linear_createIssue": [("[[log]] an issue for it on the {RESOURCE:Platform} team", "action")],
    "linear__linear_createComment": [("[[comment]] on {RESOURCE:ENG-412} that it's ready to test", "action")],
    "linear__linear_updateIssue": [("[[move]] {RESOURCE:ENG-305} to in progress", "action")],
    "linear__linear_getTeams": [("which teams are set up", "question")],
}

GREETINGS = ["Hi!", "Hey,", "Good morning.", "Hello there.", "Hi, quick one.", "Morning!"]
BACKGROUND = [
    "I'm out most of {DATETIME} and trying to catch up on things.",
    "We just finished the planning session with {PERSON}.",
    "Things have been hectic since {DATETIME}.",
    "I'm traveling to {LOCATION} next week.",
    "{PERSON} asked me about this yesterday.",
    "Our team is short-handed this sprint.",
]
CONDITIONS = [
    "If {PERSON} hasn't replied by {DATETIME},", "Should the numbers look fine,", "Once that's done,",
    "If it's still open tomorrow,", "In case nobody picked it up,", "Assuming the room is free,",
]
CLOSINGS = ["Thanks!", "Thanks a lot.", "Appreciate it.", "No rush.", "Keep it short."]
QUOTES = [
    "\"Running ten minutes late, start without me.\"", "\"The draft is ready for your review.\"",
    "\"Can we move our call to the afternoon?\"", "\"Thanks for the help today!\"",
]
# (read ask naming an object, follow-up that refers to it)
REFERS = [
    ("imap-email__search_emails", "imap-email__send_email", "[[forward]] it to {EMAIL}"),
    ("imap-email__get_email", "todoist__create_tasks", "[[turn]] it into a to-do for {DATETIME}"),
    ("imap-email__search_emails", "caldav-calendar__create_event", "[[put]] it on my calendar"),
    ("slack__slack_get_channel_history", "slack__slack_post_message", "[[announce]] it in {CHANNEL}"),
    ("jira__jira_get", "slack__slack_post_message", "[[post]] a summary of it in {CHANNEL}"),
    ("asana__asana_search_tasks", "asana__asana_update_task", "[[assign]] them to {PERSON}"),
    ("airtable__search_records", "airtable__update_records", "[[update]] its status to done"),
    ("github__list_issues", "github__add_issue_comment", "[[comment]] on it that the fix is in review"),
]
DELEGATIONS = [
    "[[do]] whatever {PERSON}'s last email asks", "[[handle]] the steps listed in {FILE}",
    "[[go through]] my checklist page and do what it says", "[[carry out]] what the note from {PERSON} asks",
]
SEND_QUOTE = {
    "slack__slack_post_message": "[[post]] this in {CHANNEL}: ",
    "imap-email__send_email": "[[send]] {PERSON} this: ",
    "slack__slack_reply_to_thread": "[[reply]] to {PERSON}'s thread with this: ",
}


def load_values(rng: random.Random):
    from gen_data import Values, load_bank  # noqa: PLC0415

    _, values, _ = load_bank(os.path.join(os.path.dirname(os.path.abspath(__file__)), "bank"))
    return Values(values, "train", rng)


def train_deployments() -> list:
    with open(os.path.join(REAL, "splits.json"), encoding="utf-8") as f:
        return json.load(f)["train"]


def catalogs(deps) -> dict:
    out = {}
    for d in deps:
        with open(os.path.join(REAL, d, "catalog.json"), encoding="utf-8") as f:
            tools = json.load(f)["tools"]
        out[d] = [{"name": t["name"], "entry": entry_text(t), "read_only": is_read_only(t), "tool": t}
                  for t in tools]
    return out


def locate(text: str, entities) -> list:
    """Entity spans found in the text, left to right, no overlaps."""
    spans, taken = [], []
    for e in entities:
        start = 0
        while True:
            i = text.find(e["text"], start)
            if i < 0:
                break
            j = i + len(e["text"])
            if not any(i < b and a < j for a, b in taken):
                spans.append([i, j, e["label"]])
                taken.append((i, j))
                break
            start = i + 1
    return sorted(spans)


def real_examples(deps) -> list:
    out = []
    for d in deps:
        for path in sorted(glob.glob(os.path.join(REAL, d, "[0-9]*.json"))):
            with open(path, encoding="utf-8") as f:
                case = json.load(f)
            exp = case["expected"]
            tools = list(dict.fromkeys(exp["tools"] + exp["read_tools"]))
            out.append({"id": f"real/{d}/{os.path.basename(path)[:-5]}", "text": case["prompt"],
                        "spans": locate(case["prompt"], exp["entities"]), "act": exp["speech_act"],
                        "clauses": [], "domain": d, "kind": "real", "tools": tools})
    return out


def ask_doc(template: str, tool: str | None, act: str, val) -> Doc:
    doc = render_template(template, val)
    doc.clauses.append({"start": 0, "end": len(doc.text), "tool": tool, "act": act})
    return doc


def sentence(doc: Doc) -> Doc:
    out = doc.copy()
    if out.text and out.text[0].islower():
        out.text = out.text[0].upper() + out.text[1:]
    if out.text and out.text[-1] not in ".?!\"":
        q = any(c["act"] == "question" for c in out.clauses) and not any(
            c["act"] == "action" for c in out.clauses)
        out.text += "?" if q else "."
    return out


def synth_examples(cats: dict, n_per_dep: int, rng: random.Random, val) -> list:
    out = []
    for d, tools in cats.items():
        names = {t["name"] for t in tools}
        asks = [(n, tpl, act) for n, lst in ASKS.items() if n in names for tpl, act in lst]
        refers = [r for r in REFERS if r[0] in names and r[1] in names]
        quotes = [(n, p) for n, p in SEND_QUOTE.items() if n in names]
        if not asks:
            continue
        for i in range(n_per_dep):
            shape = rng.choice(["background", "condition", "list", "refer", "quote", "two", "delegation"])
            parts = []
            if rng.random() < 0.6:
                parts += [rng.choice(GREETINGS), " "]
            if shape in ("background", "condition", "two", "refer") or rng.random() < 0.3:
                parts += [render_template(rng.choice(BACKGROUND), val), " "]
            if shape == "list":
                k = rng.randint(2, 3)
                picks = rng.sample(asks, min(k, len(asks)))
                parts.append("Do these in order: ")
                for j, (n, tpl, act) in enumerate(picks):
                    parts += [f"{j + 1}) ", ask_doc(tpl, n, act, val), " " if j + 1 < len(picks) else "."]
            elif shape == "condition":
                n, tpl, act = rng.choice([a for a in asks if a[2] == "action"] or asks)
                parts += [render_template(rng.choice(CONDITIONS), val), " ", ask_doc(tpl, n, "action", val), "."]
            elif shape == "refer" and refers:
                r, a, tpl = rng.choice(refers)
                rt, ract = rng.choice(ASKS[r])
                parts += [sentence(ask_doc(rt, r, ract, val)), " Then ", ask_doc(tpl, a, "action", val), "."]
            elif shape == "quote" and quotes:
                n, pre = rng.choice(quotes)
                doc = render_template(pre[0].upper() + pre[1:] if not pre.startswith("[[") else
                                      "[[" + pre[2].upper() + pre[3:], val)
                doc.append(rng.choice(QUOTES))
                doc.clauses.append({"start": 0, "end": len(doc.text), "tool": n, "act": "action"})
                parts.append(doc)
            elif shape == "delegation":
                doc = render_template(rng.choice(DELEGATIONS), val)
                doc.clauses.append({"start": 0, "end": len(doc.text), "tool": None, "act": "delegation"})
                parts.append(sentence(doc))
            else:
                picks = rng.sample(asks, min(2, len(asks)))
                parts += [sentence(ask_doc(picks[0][1], picks[0][0], picks[0][2], val)), " Also, ",
                          ask_doc(picks[1][1], picks[1][0], picks[1][2], val), "."]
            if rng.random() < 0.4:
                parts += [" ", rng.choice(CLOSINGS)]
            doc = Doc()
            for p in parts:
                doc.append(p)
            acts = [c["act"] for c in doc.clauses]
            act = "delegation" if "delegation" in acts else ("action" if "action" in acts else "question")
            tools = list(dict.fromkeys(c["tool"] for c in doc.clauses if c["tool"]))
            out.append(doc.to_json(id=f"mcp_synth/{d}/{i}", act=act, domain=d, kind="mcp_synth", tools=tools))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(DEFAULT_WORK, "data"))
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--synth", type=int, default=600, help="synthetic requests per train deployment")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    deps = train_deployments()
    cats = catalogs(deps)
    missing = sorted(n for n in ASKS if not any(n in {t["name"] for t in c} for c in cats.values()))
    if missing:
        sys.exit(f"asks for tools of no train deployment: {missing}")
    real = real_examples(deps)
    synth = synth_examples(cats, args.synth, rng, load_values(rng))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "mcp_catalogs.json"), "w", encoding="utf-8") as f:
        json.dump(cats, f, ensure_ascii=False)
    write_jsonl(os.path.join(args.out, "mcp_train.jsonl"), real + synth)
    print(f"mcp: {len(cats)} deployments ({sum(len(c) for c in cats.values())} tools), "
          f"{len(real)} real train requests, {len(synth)} synthetic")


if __name__ == "__main__":
    main()

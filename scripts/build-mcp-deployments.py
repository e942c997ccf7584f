#!/usr/bin/env python3
"""Builds deployment-shaped MCP catalogs: several captured servers behind one
gateway, as fixtures/mcp/deployments/<name>.json.

The deployments are listed in scripts/mcp/deployments.json. Each tool keeps
everything its server declared (description, inputSchema, annotations, ...);
only its name becomes `<server>__<tool>`, the prefix gateways put on tools of
several servers. A deployment names its split (fixtures/mcp/splits.json) and
may hold only that split's servers. Servers come from fixtures/mcp/servers/<server>/tools.json,
in the order the config lists them.

Usage: scripts/build-mcp-deployments.py [--check]
(--check: fail when a written file differs from what the config builds.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "scripts" / "mcp" / "deployments.json"
SERVERS = ROOT / "fixtures" / "mcp" / "servers"
OUT = ROOT / "fixtures" / "mcp" / "deployments"
SPLITS = ROOT / "fixtures" / "mcp" / "splits.json"
SEP = "__"


def build(servers: list[str]) -> dict:
    tools = []
    for server in servers:
        catalog = json.loads((SERVERS / server / "tools.json").read_text())
        for tool in catalog["tools"]:
            prefixed = dict(tool)
            prefixed["name"] = f"{server}{SEP}{tool['name']}"
            tools.append(prefixed)
    return {"tools": tools}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    config = json.loads(CONFIG.read_text())
    OUT.mkdir(parents=True, exist_ok=True)
    splits = json.loads(SPLITS.read_text())["splits"]
    stale = 0
    for dep in config["deployments"]:
        outside = [s for s in dep["servers"] if s not in splits[dep["split"]]["servers"]]
        if outside:
            print(f"{dep['name']}: not {dep['split']} servers: {outside}", file=sys.stderr)
            stale += 1
        body = build(dep["servers"])
        n = len(body["tools"])
        lo, hi = config.get("tool_range", [50, 300])
        if not lo <= n <= hi:
            print(f"{dep['name']}: {n} tools, outside {lo}-{hi}", file=sys.stderr)
            stale += 1
        text = json.dumps(body, indent=2, ensure_ascii=False) + "\n"
        path = OUT / f"{dep['name']}.json"
        if args.check:
            if not path.exists() or path.read_text() != text:
                print(f"{path.relative_to(ROOT)}: out of date", file=sys.stderr)
                stale += 1
        else:
            path.write_text(text)
        print(f"{dep['name']}: {n} tools from {len(dep['servers'])} servers", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())

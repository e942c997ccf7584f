#!/usr/bin/env python3
"""Checks captured MCP catalogs against the rules telos applies to a
`PUT /v1/catalogs/{name}` body of the MCP shape (src/catalog/parse.rs):

- the body is {"tools": [...]} with at least one and at most 1024 tools;
- each tool is an object with a string `name` of 1-128 characters from
  [A-Za-z0-9_.-], unique in the catalog;
- `description` and `title`, when present and not null, are strings; a
  description has at most 8192 characters;
- `inputSchema`, when present, is an object whose `type` is "object" and whose
  `properties`, when present, is an object;
- `annotations`, when present and not null, is an object whose readOnlyHint
  and destructiveHint are booleans or null.

Usage: scripts/check-mcp-catalogs.py [FILE ...]
(default: every fixtures/mcp/servers/*/tools.json and fixtures/mcp/deployments/*.json).
Prints one line per problem and exits 1 when a catalog would be rejected.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
MAX_ENTRIES = 1024
MAX_DESCRIPTION = 8192


def problems(body: object) -> list[str]:
    out: list[str] = []
    if not isinstance(body, dict) or "tools" not in body:
        return ["not an MCP tools/list result (no `tools`)"]
    tools = body["tools"]
    if not isinstance(tools, list):
        return ["`tools` must be an array"]
    if not tools:
        out.append("no tools")
    if len(tools) > MAX_ENTRIES:
        out.append(f"{len(tools)} tools, more than {MAX_ENTRIES}")
    seen: set[str] = set()
    for i, t in enumerate(tools):
        at = f"tools[{i}]"
        if not isinstance(t, dict):
            out.append(f"{at}: must be an object")
            continue
        name = t.get("name")
        if not isinstance(name, str):
            out.append(f"{at}.name: required string")
            continue
        at = f"{at} `{name}`"
        if not NAME.match(name):
            out.append(f"{at}: name must be 1-128 of [A-Za-z0-9_.-]")
        if name in seen:
            out.append(f"{at}: duplicate name")
        seen.add(name)
        for key in ("description", "title"):
            v = t.get(key)
            if v is not None and not isinstance(v, str):
                out.append(f"{at}.{key}: must be a string")
        d = t.get("description")
        if isinstance(d, str) and len(d) > MAX_DESCRIPTION:
            out.append(f"{at}.description: {len(d)} characters, more than {MAX_DESCRIPTION}")
        s = t.get("inputSchema")
        if s is not None:
            if not isinstance(s, dict):
                out.append(f"{at}.inputSchema: must be an object")
            else:
                if s.get("type") != "object":
                    out.append(f"{at}.inputSchema.type: must be \"object\" (is {json.dumps(s.get('type'))})")
                if "properties" in s and not isinstance(s["properties"], dict):
                    out.append(f"{at}.inputSchema.properties: must be an object")
        a = t.get("annotations")
        if a is not None:
            if not isinstance(a, dict):
                out.append(f"{at}.annotations: must be an object")
            else:
                for key in ("readOnlyHint", "destructiveHint"):
                    v = a.get(key)
                    if v is not None and not isinstance(v, bool):
                        out.append(f"{at}.annotations.{key}: must be a boolean")
    return out


def main() -> int:
    files = [Path(p) for p in sys.argv[1:]] or sorted(
        [*ROOT.glob("fixtures/mcp/servers/*/tools.json"), *ROOT.glob("fixtures/mcp/deployments/*.json")]
    )
    bad = 0
    for f in files:
        found = problems(json.loads(f.read_text()))
        rel = f.relative_to(ROOT) if f.is_absolute() and ROOT in f.parents else f
        for p in found:
            print(f"{rel}: {p}")
        bad += bool(found)
    print(f"{len(files) - bad} of {len(files)} catalogs accepted", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

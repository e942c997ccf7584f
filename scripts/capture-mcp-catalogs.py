#!/usr/bin/env python3
"""Captures the `tools/list` catalog of real MCP servers by running them.

Each server of scripts/mcp/servers.json is started over stdio with the official
MCP Python SDK client (`mcp.client.stdio.stdio_client` + `ClientSession`),
initialized, and asked for `tools/list`, following `nextCursor` until the last
page. The tools are written exactly as the server sent them (the raw JSON-RPC
result, not the SDK's parsed model, so annotations and schemas stay as declared)
to fixtures/mcp/servers/<name>/tools.json as {"tools": [...]}, with
fixtures/mcp/servers/<name>/SOURCE.json beside it.

Run with the SDK venv that scripts/provision-mcp.sh makes:

    .mcp/venv/bin/python scripts/capture-mcp-catalogs.py [NAME ...]

Servers get only obviously dummy credentials (see each entry's "env"); there is
no network, so nothing they list is fetched from a live account. A server that
does not answer within the timeout is reported and left out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.message import SessionMessage
from mcp_types.jsonrpc import JSONRPCResponse
import mcp.types as types

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "scripts" / "mcp" / "servers.json"
OUT = ROOT / "fixtures" / "mcp" / "servers"
MCP_DIR = Path(os.environ.get("MCP_DIR", ROOT / ".mcp"))
CAPTURED = "2026-12-07"
MAX_PAGES = 50


def make_scratch() -> Path:
    """A scratch directory with the small local resources some servers open."""
    tmp = Path(tempfile.mkdtemp(prefix="mcp-capture-"))
    repo = tmp / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "README.md").write_text("scratch repository\n")
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=capture", "-c", "user.email=capture@example.invalid",
         "commit", "-q", "--allow-empty", "-m", "init"],
        check=True,
    )
    files = tmp / "files"
    files.mkdir()
    (files / "note.txt").write_text("hello\n")
    db = sqlite3.connect(tmp / "db.sqlite")
    db.execute("create table notes (id integer primary key, body text)")
    db.commit()
    db.close()
    (tmp / "home").mkdir()
    return tmp


def expand(value: str, scratch: Path, entry: dict[str, Any]) -> str:
    subs = {
        "{node}": str(MCP_DIR / "node"),
        "{py}": str(MCP_DIR / "py" / entry.get("venv", entry["package"])),
        "{tmp}": str(scratch),
    }
    for k, v in subs.items():
        value = value.replace(k, v)
    return value


def licence_of(entry: dict[str, Any]) -> str | None:
    """The licence declared in the installed package's own metadata."""
    if entry["registry"] == "npm":
        pj = MCP_DIR / "node" / "node_modules" / entry["package"] / "package.json"
        meta = json.loads(pj.read_text())
        lic = meta.get("license")
        if isinstance(lic, dict):
            lic = lic.get("type")
        if lic is None and isinstance(meta.get("licenses"), list):
            lic = " OR ".join(x.get("type", "") for x in meta["licenses"])
        if isinstance(lic, str) and lic.startswith("SEE LICENSE IN "):
            lic = licence_file(pj.parent / lic.removeprefix("SEE LICENSE IN ").strip())
        return lic
    py = MCP_DIR / "py" / entry.get("venv", entry["package"]) / "bin" / "python"
    code = (
        "import importlib.metadata as m, json, sys\n"
        "d = m.distribution(sys.argv[1]); md = d.metadata\n"
        "lic = md.get('License-Expression') or md.get('License')\n"
        "if lic and len(lic) > 80: lic = lic.splitlines()[0][:80]\n"
        "cls = [c.split(' :: ')[-1] for c in md.get_all('Classifier') or [] if c.startswith('License ::')]\n"
        "texts = [d.read_text(f'licenses/{f}') or d.read_text(f) or '' for f in md.get_all('License-File') or []]\n"
        "print(json.dumps({'declared': lic or (' OR '.join(cls) if cls else None), 'files': texts}))\n"
    )
    out = subprocess.run([str(py), "-c", code, entry["package"]], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    if got["declared"]:
        return got["declared"]
    for text in got["files"]:
        found = [spdx for spdx, marker in LICENCE_MARKERS if marker in text]
        if found:
            return " AND ".join(found) + " (from the package's licence file)"
    return "not declared in the package metadata"


def licence_file(path: Path) -> str | None:
    """Names the licence of a LICENSE file a package.json points to."""
    if not path.exists():
        return f"SEE LICENSE IN {path.name} (no such file in the published package)"
    text = path.read_text(errors="replace")
    found = [spdx for spdx, marker in LICENCE_MARKERS if marker in text]
    return (" AND ".join(found) if found else "see " + path.name) + " (from the package's " + path.name + ")"


LICENCE_MARKERS = [
    ("MIT", "Permission is hereby granted, free of charge"),
    ("Apache-2.0", "Apache License"),
    ("BSD", "Redistribution and use in source and binary forms"),
]


def installed_version(entry: dict[str, Any]) -> str:
    if entry["registry"] == "npm":
        pj = MCP_DIR / "node" / "node_modules" / entry["package"] / "package.json"
        return json.loads(pj.read_text())["version"]
    py = MCP_DIR / "py" / entry.get("venv", entry["package"]) / "bin" / "python"
    out = subprocess.run(
        [str(py), "-c", "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))", entry["package"]],
        capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


async def list_tools_raw(params: StdioServerParameters, errlog) -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
    """Initializes the server and pages through tools/list; returns the raw tools,
    the number of pages, and the server's raw initialize result."""
    raw: list[dict[str, Any]] = []
    async with stdio_client(params, errlog=errlog) as (read, write):
        tap_send, tap_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)

        async def tap() -> None:
            async with tap_send:
                async for msg in read:
                    if isinstance(msg, SessionMessage) and isinstance(msg.message, JSONRPCResponse):
                        raw.append(msg.message.result)
                    await tap_send.send(msg)

        async with anyio.create_task_group() as tg:
            tg.start_soon(tap)
            async with ClientSession(tap_recv, write) as session:
                await session.initialize()
                init_raw = raw[-1]
                tools: list[dict[str, Any]] = []
                cursor: str | None = None
                pages = 0
                while True:
                    pages += 1
                    p = types.PaginatedRequestParams(cursor=cursor) if cursor else None
                    result = await session.list_tools(params=p)
                    page = raw[-1]
                    if "tools" not in page:
                        raise RuntimeError("tools/list answer has no tools")
                    tools.extend(page["tools"])
                    cursor = result.next_cursor
                    if not cursor or pages >= MAX_PAGES:
                        break
            tg.cancel_scope.cancel()
    return tools, pages, init_raw


def capture(entry: dict[str, Any], timeout: float, logdir: Path) -> dict[str, Any]:
    scratch = make_scratch()
    try:
        for rel, content in entry.get("files", {}).items():
            f = scratch / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(expand(content, scratch, entry))
        command = [expand(c, scratch, entry) for c in entry["command"]]
        env = {k: expand(v, scratch, entry) for k, v in entry.get("env", {}).items()}
        env.setdefault("HOME", str(scratch / "home"))
        env["PATH"] = f"{MCP_DIR / 'node' / 'node_modules' / '.bin'}:{os.environ.get('PATH', '')}"
        params = StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=str(scratch))
        log = logdir / f"{entry['name']}.stderr.log"
        with open(log, "w") as errlog:
            tools, pages, init = anyio.run(_timed, params, errlog, timeout)
        return {"tools": tools, "pages": pages, "init": init}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


async def _timed(params, errlog, timeout):
    with anyio.fail_after(timeout):
        return await list_tools_raw(params, errlog)


def shown_command(entry: dict[str, Any]) -> str:
    """The command as a reader would type it from the repository root."""
    parts = []
    for c in entry["command"]:
        c = c.replace("{node}", ".mcp/node").replace("{py}", f".mcp/py/{entry.get('venv', entry['package'])}")
        c = c.replace("{tmp}", "$SCRATCH")
        parts.append(c)
    return " ".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="servers to capture (default: all)")
    ap.add_argument("--timeout", type=float, default=90.0)
    ap.add_argument("--logs", default=str(MCP_DIR / "logs"))
    args = ap.parse_args()

    config = json.loads(CONFIG.read_text())
    entries = [e for e in config["servers"] if not args.names or e["name"] in args.names]
    logdir = Path(args.logs)
    logdir.mkdir(parents=True, exist_ok=True)
    failed: list[tuple[str, str]] = []
    for entry in entries:
        name = entry["name"]
        try:
            got = capture(entry, args.timeout, logdir)
        except BaseException as e:  # noqa: BLE001 - report every failure and go on
            if isinstance(e, KeyboardInterrupt):
                raise
            msg = _reason(e)
            failed.append((name, msg))
            print(f"FAIL {name}: {msg}", file=sys.stderr)
            continue
        tools = got["tools"]
        if not tools:
            failed.append((name, "tools/list returned no tools"))
            print(f"FAIL {name}: no tools", file=sys.stderr)
            continue
        dest = OUT / name
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "tools.json").write_text(json.dumps({"tools": tools}, indent=2, ensure_ascii=False) + "\n")
        server_info = got["init"].get("serverInfo", {})
        source = {
            "server": name,
            "registry": entry["registry"],
            "package": entry["package"],
            "version": installed_version(entry),
            "licence": licence_of(entry),
            "captured": CAPTURED,
            "method": "tools/list over stdio with the official MCP Python SDK client (mcp "
            + _sdk_version() + ")",
            "command": shown_command(entry),
            "env": {k: v.replace("{tmp}", "$SCRATCH") for k, v in entry.get("env", {}).items()},
            **({"files": {f"$SCRATCH/{k}": v for k, v in entry["files"].items()}} if entry.get("files") else {}),
            "protocol_version": got["init"].get("protocolVersion"),
            "server_info": {k: server_info[k] for k in ("name", "version") if k in server_info},
            "pages": got["pages"],
            "tool_count": len(tools),
            "annotated_tools": sum(1 for t in tools if t.get("annotations")),
            "domain": entry["domain"],
        }
        if entry.get("note"):
            source["note"] = entry["note"]
        (dest / "SOURCE.json").write_text(json.dumps(source, indent=2, ensure_ascii=False) + "\n")
        print(f"ok   {name}: {len(tools)} tools ({source['annotated_tools']} annotated)", file=sys.stderr)
    if failed:
        print("\nnot captured:", file=sys.stderr)
        for name, msg in failed:
            print(f"  {name}: {msg}", file=sys.stderr)
    return 0


def _reason(e: BaseException) -> str:
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    text = f"{type(e).__name__}: {e}"
    return re.sub(r"\s+", " ", text)[:300]


def _sdk_version() -> str:
    import importlib.metadata as m

    return m.version("mcp")


if __name__ == "__main__":
    sys.exit(main())

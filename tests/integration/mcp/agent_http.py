"""A scripted agent over Streamable HTTP: the official MCP Python SDK's
`mcp.client.streamable_http` client, run against `telos mcp-proxy --listen`.
Usage: agent_http.py URL HEADERS_JSON SCRIPT_JSON

HEADERS_JSON is an object of HTTP headers sent with every request (for
example `X-Telos-Workflow`). SCRIPT_JSON and the output are those of
agent.py: the workflow id from `initialize`'s `_meta`, the listed tool
names, and per call either `{"ok": true, "is_error": ..., "text": ...}` or
`{"ok": false, "code": ..., "message": ..., "data": ...}`.
"""

import asyncio
import json
import sys

import httpx2
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client


async def main() -> None:
    url = sys.argv[1]
    headers = json.loads(sys.argv[2])
    calls = json.loads(sys.argv[3])
    out = {"calls": []}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                meta = init.model_dump(by_alias=True, mode="json").get("_meta") or {}
                out["workflow_id"] = meta.get("telos/workflow_id")
                listed = await session.list_tools()
                out["tools"] = [t.name for t in listed.tools]
                for call in calls:
                    try:
                        r = await session.call_tool(call["tool"], call.get("arguments") or {})
                        text = "".join(getattr(c, "text", "") for c in r.content)
                        out["calls"].append(
                            {"ok": True, "is_error": bool(r.is_error), "text": text}
                        )
                    except MCPError as e:
                        out["calls"].append(
                            {"ok": False, "code": e.code, "message": e.message, "data": e.data}
                        )
    print(json.dumps(out))


asyncio.run(main())

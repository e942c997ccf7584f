"""A scripted agent over Streamable HTTP: the official MCP Python SDK's
client, with the workflow and the agent's identity in headers (as a
gateway's clients send them). Usage: http_agent.py URL WORKFLOW AGENT SCRIPT_JSON

SCRIPT_JSON is a list of `{"tool": NAME, "arguments": {...}}` calls, made in
order. Prints one JSON object: the listed tool names and, per call, either
`{"ok": true, "is_error": ..., "text": ...}` or `{"ok": false, "code": ...,
"message": ..., "data": ...}`.
"""

import asyncio
import json
import sys

from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def main() -> None:
    url, workflow, agent, script = sys.argv[1:5]
    headers = {"X-Telos-Workflow": workflow, "X-Telos-Agent": agent}
    out = {"calls": []}
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_tools()
                out["tools"] = sorted(t.name for t in listed.tools)
                for call in json.loads(script):
                    try:
                        r = await session.call_tool(call["tool"], call.get("arguments") or {})
                        text = "".join(getattr(c, "text", "") for c in r.content)
                        out["calls"].append({"ok": True, "is_error": bool(r.is_error), "text": text})
                    except MCPError as e:
                        out["calls"].append(
                            {"ok": False, "code": e.code, "message": e.message, "data": e.data}
                        )
    print(json.dumps(out))


asyncio.run(main())

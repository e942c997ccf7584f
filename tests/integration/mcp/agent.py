"""A scripted agent: the official MCP Python SDK's stdio client, run against
`telos mcp-proxy`. Usage: agent.py SCRIPT_JSON PROXY_COMMAND [ARGS...]

SCRIPT_JSON is a list of `{"tool": NAME, "arguments": {...}}` calls, made
in order. Prints one JSON object on stdout: the workflow id from
`initialize`'s `_meta`, the listed tool names, and per call either
`{"ok": true, "is_error": ..., "text": ...}` or `{"ok": false, "code": ...,
"message": ..., "data": ...}`.
"""

import asyncio
import json
import sys

from mcp import ClientSession, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main() -> None:
    calls = json.loads(sys.argv[1])
    params = StdioServerParameters(command=sys.argv[2], args=sys.argv[3:])
    out = {"calls": []}
    async with stdio_client(params) as (read, write):
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
                    out["calls"].append({"ok": True, "is_error": bool(r.is_error), "text": text})
                except MCPError as e:
                    out["calls"].append(
                        {"ok": False, "code": e.code, "message": e.message, "data": e.data}
                    )
    print(json.dumps(out))


asyncio.run(main())

"""Latency of one allowed `tools/call`, direct and through `telos mcp-proxy`,
measured with the official MCP Python SDK's stdio client.

Usage: overhead.py N DIRECT_COMMAND_JSON PROXIED_COMMAND_JSON
Each command is a JSON array (program and arguments) of an MCP stdio server
offering `get_current_time`. Warms up with 20 calls, times N calls one after
another, and prints {"direct": {...}, "proxied": {...}} with p50 and p90 in
milliseconds.
"""

import asyncio
import json
import statistics
import sys
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def measure(command, n):
    params = StdioServerParameters(command=command[0], args=command[1:])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            args = {"timezone": "Europe/Paris"}
            for _ in range(20):
                r = await session.call_tool("get_current_time", args)
                assert not r.is_error, r
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                r = await session.call_tool("get_current_time", args)
                times.append((time.perf_counter() - t0) * 1000.0)
                assert not r.is_error, r
    times.sort()
    return {
        "n": n,
        "p50_ms": round(statistics.median(times), 3),
        "p90_ms": round(times[int(0.9 * (n - 1))], 3),
    }


async def main():
    n = int(sys.argv[1])
    direct = await measure(json.loads(sys.argv[2]), n)
    proxied = await measure(json.loads(sys.argv[3]), n)
    print(json.dumps({"direct": direct, "proxied": proxied,
                      "added_p50_ms": round(proxied["p50_ms"] - direct["p50_ms"], 3),
                      "ratio_p50": round(proxied["p50_ms"] / direct["p50_ms"], 3)}))


asyncio.run(main())

"""A small MCP server on the Streamable HTTP transport, built with the
official MCP Python SDK (`MCPServer`), for the forward-auth test.
Usage: http_server.py PORT DIR

Notes are files of DIR. Tools: `read_note` (read-only) returns a note,
`delete_note` (destructive) deletes one. Every call that reaches the server
is appended to DIR/calls.log first, so a test can check that a refused call
never arrived.
"""

import pathlib
import sys

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

port = int(sys.argv[1])
notes = pathlib.Path(sys.argv[2])
server = MCPServer("notes")


def log(line: str) -> None:
    with open(notes / "calls.log", "a") as f:
        f.write(line + "\n")


@server.tool(description="Read a note and return its text.", annotations=ToolAnnotations(read_only_hint=True))
def read_note(name: str) -> str:
    log(f"read_note {name}")
    return (notes / f"{name}.txt").read_text()


@server.tool(description="Delete a note permanently.", annotations=ToolAnnotations(destructive_hint=True))
def delete_note(name: str) -> str:
    log(f"delete_note {name}")
    (notes / f"{name}.txt").unlink()
    return f"deleted {name}"


server.run(transport="streamable-http", host="127.0.0.1", port=port)

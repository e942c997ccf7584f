"""An MCP server on the official Python SDK's Streamable HTTP transport
(`MCPServer.run("streamable-http")`), for the gateway's HTTP-upstream test.
Usage: notes_http_server.py DIR PORT

Its notes are the files of DIR: `read_note` reads one (read-only),
`delete_note` deletes one (destructive), so a test sees in DIR whether a
call reached it. Serves http://127.0.0.1:PORT/mcp.
"""

import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

root = Path(sys.argv[1])
server = MCPServer("notes")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def read_note(name: str) -> str:
    """Read the note with this name and return its text."""
    return (root / Path(name).name).read_text()


@server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True))
def delete_note(name: str) -> str:
    """Delete the note with this name."""
    (root / Path(name).name).unlink()
    return f"deleted {name}"


server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))

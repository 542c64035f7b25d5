"""Front doors: the `servewise` command line and the MCP server. Translation only, no logic."""

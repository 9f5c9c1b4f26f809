"""Redis: version-guarded listing writes, review aggregates, their Lua scripts and the read client."""

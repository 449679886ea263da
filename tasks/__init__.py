"""Task families: each module turns one paper benchmark into the harness Task contract."""

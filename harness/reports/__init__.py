"""Report formats, each rendered from the JSON report (the source of truth)."""

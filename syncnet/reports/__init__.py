"""Reports a person can read (placeholder of branch h8; the report package's own __init__ replaces it)."""

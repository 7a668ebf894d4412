"""Who may call the scheduler: API keys, watch tokens, roles, tenants and per-credential limits."""

"""A small multi-tenant FastAPI app that runs on the embedded default: no server, no settings."""

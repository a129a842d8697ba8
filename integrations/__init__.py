"""Framework integrations, installed as `tenant_middleware.integrations`."""

"""What operators do with tenants, as services `Tenancy` delegates to: one per concern.

`tenant_middleware.assembly.build` makes them, each with the collaborators it needs.
"""

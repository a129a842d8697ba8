"""Telemetry on the built components: their operations' methods replaced, once, by traced ones.

Only `build` calls this, and only with a backend (`Tenancy(telemetry=...)`); the cache's loader
and the pools' opener are wrapped before those are built, in `build` itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenant_middleware._types import Scope
    from tenant_middleware.operations.schema import SchemaOperations
    from tenant_middleware.provisioning.workflow import ProvisioningWorkflow
    from tenant_middleware.resolver import Resolution, Resolver
    from tenant_middleware.schema.service import SchemaService
    from tenant_middleware.telemetry import Instrumentation

__all__ = ["instrument"]


def instrument(
    telemetry: Instrumentation,
    *,
    resolver: Resolver,
    workflow: ProvisioningWorkflow,
    schema: SchemaService,
    schemas: SchemaOperations,
) -> None:
    """Trace provisioning and migrations; tag requests' spans with their tenant."""
    # Instance attributes shadow the methods: whoever reads them after this (the middleware
    # reads `resolver.resolve` when it is built) gets the traced ones.
    setattr(resolver, "resolve", telemetry.resolver(resolver.resolve))  # noqa: B010
    # Every request then takes the traced `resolve`: the synchronous cached path would not
    # tag its span.
    setattr(resolver, "resolve_now", _never_now)  # noqa: B010
    setattr(workflow, "run", telemetry.traced("tenant_middleware.provision", workflow.run))  # noqa: B010
    applied = telemetry.traced("tenant_middleware.schema.apply", schema.bring_up_to_date)
    setattr(schema, "bring_up_to_date", applied)  # noqa: B010
    setattr(schemas, "migrate", telemetry.traced("tenant_middleware.migrate", schemas.migrate))  # noqa: B010


def _never_now(scope: Scope) -> Resolution | None:
    return None

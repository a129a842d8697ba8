"""What operators do with tenants, as parts of `Tenancy`: one mixin per concern.

`Tenancy` (in `tenant_middleware.runtime`) inherits them; they are not used on their own.
`_parts.RuntimeParts` names what they use of the runtime.
"""

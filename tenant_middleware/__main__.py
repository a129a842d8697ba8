"""`python -m tenant_middleware`: the operator CLI."""

from tenant_middleware.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

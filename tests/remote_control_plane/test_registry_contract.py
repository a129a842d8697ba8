"""The registry contract on a remote control plane.

The shared tests (tests/registry/test_registry_contract.py and test_credentials.py) are
imported, so pytest collects them here again with this directory's `registry` fixture: an
`SQLRegistry` on a sqld namespace, over Hrana.
"""

from __future__ import annotations

from tests.registry.test_credentials import *  # noqa: F403 -- collected again here
from tests.registry.test_registry_contract import *  # noqa: F403 -- collected again here

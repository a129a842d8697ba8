"""Credentials at rest: tenant database tokens encrypted with AES-256-GCM under rotating keys.

```python
ring = KeyRing.parse(config_value)          # "k2:<base64url>,k1:<base64url>", k2 active
blob = ring.encrypt(token, associated_data=token_binding(tenant.id))
token = ring.decrypt(blob, associated_data=token_binding(tenant.id))   # a Secret
connection = await connect(url, token=token.reveal())                  # the one reveal
```

Every envelope names its key (format in `tenant_middleware.secrets._keyring`), so several keys
can be configured at once. Rotation: prepend a `generate_key()` entry to the setting on every
instance (the old key stays for decryption), re-encrypt every row whose envelope
`ring.needs_rotation(...)` with `ring.reencrypt(...)` (`Tenancy.rotate_keys()` does it for
every tenant), then drop the old key; envelopes still under it then fail
with a `CredentialError` naming the missing key id. Nothing here logs; decrypted values are
`Secret`s, which show as `***`.
"""

from tenant_middleware.secrets._keyring import (
    KeyRing,
    key_id_of,
    namespace_key_binding,
    token_binding,
)
from tenant_middleware.secrets._keys import generate_key
from tenant_middleware.secrets._secret import Secret

__all__ = [
    "KeyRing",
    "Secret",
    "generate_key",
    "key_id_of",
    "namespace_key_binding",
    "token_binding",
]

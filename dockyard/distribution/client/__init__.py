"""Registry client: ping, auth (Basic, Bearer tokens), manifests and blobs over the v2 API."""

from .auth import Credentials, credentials_from_json, decode_registry_auth, is_insecure, registry_host
from .registry import Manifest, RegistryClient

__all__ = ["Credentials", "Manifest", "RegistryClient", "credentials_from_json", "decode_registry_auth",
           "is_insecure", "registry_host"]

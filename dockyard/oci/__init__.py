"""Pure OCI/Docker data: digests, image references, image configs and manifests.

Nothing in this package does I/O; stores and services build on it.
"""

"""`dockyard registry`: an OCI Distribution 1.1 / Docker Registry v2 server.

Layers, outermost first: cli (process, config) -> app (aiohttp, thin) ->
services (blobs, uploads, manifests, tags, referrers, repos) -> storage
driver (filesystem or S3).  Services raise RegistryError subclasses from
errors.py; app.py turns them into the spec's JSON error bodies.
"""

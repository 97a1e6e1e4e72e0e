"""Distribution's `validation.manifests` settings as one policy object the manifest service asks.

- indexes.platforms: `all` (default) — every child of an index must exist in the repository;
  `none` — none need to ("sparse" indexes, to mirror one platform of a multi-platform image);
  `list` — only children whose platform is in platformlist must exist (a child naming no
  platform must exist: nothing says it may be left out).
- urls.allow / urls.deny: regular expressions that the `urls` of layer descriptors must match /
  must not match.  With neither configured, URLs are accepted as before (Distribution refuses
  them unless allowed; the OCI conformance suite pushes foreign layers with URLs).
"""

from __future__ import annotations

import re
from typing import Any

from .config import ValidationConfig
from .errors import RegistryError


class ManifestPolicy:
    def __init__(self, cfg: ValidationConfig | None = None) -> None:
        cfg = cfg or ValidationConfig()
        self.index_platforms = cfg.index_platforms
        self.platforms = set(cfg.platform_list)
        self.allow = [re.compile(r) for r in cfg.url_allow]
        self.deny = [re.compile(r) for r in cfg.url_deny]

    def child_must_exist(self, child: dict[str, Any]) -> bool:
        if self.index_platforms == "none":
            return False
        if self.index_platforms == "all":
            return True
        p = child.get("platform")
        if not isinstance(p, dict):
            return True
        return (p.get("os"), p.get("architecture")) in self.platforms

    def check_urls(self, desc: dict[str, Any], where: str) -> None:
        urls = desc.get("urls")
        if urls is None or not (self.allow or self.deny):
            return
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise RegistryError("MANIFEST_INVALID", f"{where}: urls must be a list of strings")
        for u in urls:
            allowed = any(rx.search(u) for rx in self.allow) if self.allow else True
            if not allowed or any(rx.search(u) for rx in self.deny):
                raise RegistryError("MANIFEST_INVALID", f"{where}: URL {u[:200]!r} is not allowed by the "
                                    "registry's validation.manifests.urls", {"url": u[:200]})

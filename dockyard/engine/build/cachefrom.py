"""`--cache-from`: images named as cache sources give cache hits by their history.

The legacy builder (moby daemon/images/cache.go) matches a step against a source image
when the image being built so far (the parent) is a prefix of the source — same history
entries, same layers — and the source's next history entry was made by the same command
(`created_by` equals the step's command). It then makes an image for that step from the
source's history entry and layer, child of the local parent, so a source pulled from a
registry (whose local parent chain is unknown) still gives hits. Once a source matched,
only it is tried for the following steps, as dockerd does.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from ...errors import NotFound

log = logging.getLogger(__name__)


def _history(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    return list(cfg.get("history") or [])


def _diff_ids(cfg: dict[str, Any]) -> list[str]:
    return list((cfg.get("rootfs") or {}).get("diff_ids") or [])


def valid_parent(target: dict[str, Any], parent: dict[str, Any] | None) -> bool:
    """moby's isValidParent: the parent's history and layers begin the target's."""
    th, ph = _history(target), _history(parent or {})
    if not th:
        return False
    if parent is None or (not ph and not _diff_ids(parent)):
        return True
    if len(ph) >= len(th) or len(_diff_ids(parent)) > len(_diff_ids(target)):
        return False
    return th[:len(ph)] == ph and _diff_ids(target)[:len(_diff_ids(parent))] == _diff_ids(parent)


def layer_for_history_index(target: dict[str, Any], index: int) -> str | None:
    """The diff ID the target's history entry `index` added; None for an empty-layer entry."""
    layer = 0
    for i, h in enumerate(_history(target)):
        if i == index:
            if h.get("empty_layer"):
                return None
            break
        if not h.get("empty_layer"):
            layer += 1
    ids = _diff_ids(target)
    return ids[layer] if layer < len(ids) else None


class CacheSources:
    def __init__(self, images: Any, refs: list[str]) -> None:
        self.images = images
        self.sources: list[tuple[str, dict[str, Any]]] = []
        for ref in refs:
            try:
                img = images.resolve(ref)
            except NotFound:  # dockerd: "Could not look up … for cache resolution, skipping"
                log.warning("could not look up %s for cache resolution, skipping", ref)
                continue
            self.sources.append((img.id, img.config))

    def probe(self, parent_id: str | None, command: list[str], config_after: dict[str, Any],
              container_config: dict[str, Any]) -> str | None:
        """The image this step would make, from a source; None on a miss.

        `command` is the step's run config Cmd (what its history records as created_by),
        `config_after` the image config the step leaves.
        """
        if not self.sources:
            return None
        parent = self.images.resolve(parent_id).config if parent_id else None
        n = len(_history(parent or {}))
        created_by = " ".join(command)
        for target_id, target in self.sources:
            if not valid_parent(target, parent) or len(_history(target)) <= n:
                continue
            if (_history(target)[n].get("created_by") or "") != created_by:
                continue
            self.sources = [(target_id, target)]  # keep following this source only
            if len(_history(target)) - 1 == n:
                return target_id  # the source itself is the result of this step
            return self._restore(parent_id, parent, target, n, config_after, container_config)
        return None

    def _restore(self, parent_id: str | None, parent: dict[str, Any] | None, target: dict[str, Any],
                 n: int, config_after: dict[str, Any], container_config: dict[str, Any]) -> str:
        entry = _history(target)[n]
        diff_ids = _diff_ids(parent or {})
        layer = layer_for_history_index(target, n)
        if layer is not None:
            diff_ids.append(layer)
        cfg: dict[str, Any] = {
            "architecture": target.get("architecture"), "os": target.get("os"),
            "config": copy.deepcopy(config_after), "container_config": copy.deepcopy(container_config),
            "created": entry.get("created"), "docker_version": target.get("docker_version", ""),
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": _history(parent or {}) + [entry],
        }
        if target.get("author"):
            cfg["author"] = target["author"]
        return self.images.create_image(cfg, parent=parent_id or "")

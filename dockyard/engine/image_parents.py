"""`docker rmi`'s pruning of parents: the untagged images a deleted image was built on.

The legacy builder leaves an untagged image per step, each the parent of the next.
dockerd (daemon/images/image_delete.go, imageDeleteHelper with prune) deletes,
after an image, its parent, then that one's parent, and so on, each as a quiet,
unforced delete: the walk stops, silently, at the first image with a tag or
digest, another child, or a container (running or stopped) using it.  Each
deleted parent adds `Deleted: <id>` and then a `Deleted: <chain id>` per layer
freed, as the image itself does.  `noprune=1` (`docker rmi --no-prune`) skips it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import Conflict

if TYPE_CHECKING:
    from .images import ImageService


async def delete_parents(images: "ImageService", parent_id: str, records: list[dict[str, str]]) -> None:
    """Delete `parent_id` and its ancestors while nothing else needs them."""
    while parent_id:
        img = images._get(parent_id)
        if img is None:
            return
        try:
            # Every conflict possible here is quiet in dockerd: a tag or another child
            # makes the image not dangling, and a container is a use.
            images._check_conflicts(img, hard_only=False)
        except Conflict:
            return
        removed = await images._delete_image(img.id)
        records.append({"Deleted": img.id})
        records.extend({"Deleted": c} for c in removed)
        parent_id = img.parent

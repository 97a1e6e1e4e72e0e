"""Tags: name -> manifest digest links, listed in ASCII order with n/last paging."""

from __future__ import annotations

from . import paths
from .errors import RegistryError, manifest_unknown, name_unknown
from .names import Digest, is_tag, parse_digest
from .storage import PathNotFound, StorageDriver


def paginate(items: list[str], n: int | None, last: str | None) -> tuple[list[str], bool]:
    """Items after `last` (exclusive), at most n of them; and whether more remain."""
    items = sorted(items)
    if last is not None:
        items = [i for i in items if i > last]
    if n is None:
        return items, False
    return items[:n], len(items) > n


def parse_n(value: str | None, maximum: int = 10000) -> int | None:
    if value is None or value == "":
        return None
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0 or n > maximum:
        raise RegistryError("PAGINATION_NUMBER_INVALID", f"invalid page size n={value[:50]!r}",
                            {"n": value[:50], "max": maximum})
    return n


class TagService:
    def __init__(self, driver: StorageDriver, delete_enabled: bool = True) -> None:
        self.driver = driver
        self.delete_enabled = delete_enabled

    def resolve(self, repo: str, tag: str) -> Digest:
        try:
            return parse_digest(self.driver.get_content(paths.tag_link(repo, tag)).decode().strip())
        except (PathNotFound, UnicodeDecodeError, RegistryError):
            raise manifest_unknown(tag) from None

    def set(self, repo: str, tag: str, d: Digest) -> None:
        if not is_tag(tag):
            raise RegistryError("TAG_INVALID", f"invalid tag {tag[:200]!r}", {"tag": tag[:200]})
        self.driver.put_content(paths.tag_link(repo, tag), str(d).encode())

    def all(self, repo: str) -> list[str]:
        try:
            return [p.rsplit("/", 1)[1] for p in self.driver.list(paths.tags(repo))]
        except PathNotFound:
            return []

    def pointing_to(self, repo: str, d: Digest) -> list[str]:
        out = []
        for t in self.all(repo):
            try:
                if self.resolve(repo, t) == d:
                    out.append(t)
            except RegistryError:
                continue
        return out

    def list(self, repo: str, n: int | None, last: str | None) -> tuple[list[str], bool]:
        if not self.driver.exists(paths.repo(repo)):
            raise name_unknown(repo)
        return paginate(self.all(repo), n, last)

    def delete(self, repo: str, tag: str) -> None:
        if not self.delete_enabled:
            raise RegistryError("UNSUPPORTED", "deletion is disabled")
        try:
            self.driver.delete(paths.tag_dir(repo, tag))
        except PathNotFound:
            raise manifest_unknown(tag) from None

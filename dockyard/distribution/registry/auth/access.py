"""Who may do what: scopes ("repository:name:pull,push") and the access rules that grant them."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from ..config import AccessRule

ALL_ACTIONS = ("pull", "push", "delete")


@dataclass(frozen=True)
class Scope:
    type: str  # "repository" or "registry"
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


def parse_scope(value: str) -> Scope | None:
    """`type:name:actions`; the name may itself hold colons in theory, so split from both ends."""
    head, sep, actions = value.rpartition(":")
    if not sep:
        return None
    typ, sep, name = head.partition(":")
    if not sep or not typ or not name:
        return None
    typ = typ.split("(", 1)[0]  # "repository(plugin)" -> "repository"
    acts = tuple(a for a in actions.split(",") if a)
    return Scope(typ, name, acts)


class AccessPolicy:
    def __init__(self, rules: list[AccessRule], anonymous_pull: bool) -> None:
        self.rules = rules
        self.anonymous_pull = anonymous_pull

    def granted(self, account: str | None, scope: Scope) -> tuple[str, ...]:
        """The subset of scope.actions that `account` (None = anonymous) may perform."""
        allowed = self._allowed(account, scope)
        return tuple(a for a in scope.actions if a in allowed or "*" in allowed)

    def _allowed(self, account: str | None, scope: Scope) -> set[str]:
        if scope.type == "registry":
            # The catalog: any signed-in user, or everyone when anonymous pull is on.
            return {"*"} if account or self.anonymous_pull else set()
        if scope.type != "repository":
            return set()
        if self.rules:
            for r in self.rules:
                acct_ok = (account is not None and fnmatch.fnmatchcase(account, r.account)) or \
                    (account is None and r.account == "")
                if acct_ok and fnmatch.fnmatchcase(scope.name, r.repository):
                    return set(r.actions)
        if account is not None:
            return set(ALL_ACTIONS) if not self.rules else set()
        return {"pull"} if self.anonymous_pull else set()

"""Docker image references: parse, normalise, and print as Docker prints them.

The grammar is distribution/reference's:

    reference   := name [ ":" tag ] [ "@" digest ]
    name        := [domain "/"] path-component ["/" path-component]*
    domain      := host [":" port]          (host: DNS name, IPv4 or [IPv6])
    path-component := [a-z0-9]+ (separator [a-z0-9]+)*   separator := [._] | __ | -+
    tag         := [\\w][\\w.-]{0,127}
    digest      := algorithm ":" hex

Normalisation follows Docker: the first component is a registry only if it
contains "." or ":" or is "localhost" (or has upper case); otherwise the
reference is on docker.io, and single-component names live under `library/`.
`busybox` is therefore docker.io/library/busybox(:latest) and Docker prints it
back as `busybox:latest` (the "familiar" form).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidParameter

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_MAX = 255

_alnum = r"[a-z0-9]+"
_sep = r"(?:[._]|__|[-]+)"
_path_component = rf"{_alnum}(?:{_sep}{_alnum})*"
_domain_component = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_ipv6 = r"\[(?:[a-fA-F0-9:]+)\]"
_host = rf"(?:{_domain_component}(?:\.{_domain_component})*|{_ipv6})"
_domain = rf"{_host}(?::[0-9]+)?"
_tag = r"[\w][\w.-]{0,127}"
_digest = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_name = rf"(?:{_domain}/)?{_path_component}(?:/{_path_component})*"

REFERENCE_RE = re.compile(rf"^({_name})(?::({_tag}))?(?:@({_digest}))?$")
TAG_RE = re.compile(rf"^{_tag}$")
DOMAIN_RE = re.compile(rf"^{_domain}$")
ID_RE = re.compile(r"^[a-f0-9]{64}$")
SHORT_ID_RE = re.compile(r"^(?:sha256:)?[a-f0-9]{1,64}$")
DIGEST_ONLY_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    """A normalised reference: domain and path always set, tag and/or digest optional."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Full repository name, e.g. docker.io/library/busybox."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    @property
    def familiar_name(self) -> str:
        """The name as Docker shows it: busybox, user/app, host:5000/a/b."""
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_PREFIX) and self.path.count("/") == 1:
                return self.path[len(OFFICIAL_PREFIX):]
            return self.path
        return self.name

    def familiar(self) -> str:
        """The whole reference as Docker shows it: busybox:latest, a/b@sha256:..."""
        s = self.familiar_name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def with_tag(self, tag: str) -> "Reference":
        if not TAG_RE.match(tag):
            raise InvalidParameter("invalid tag format")
        return Reference(self.domain, self.path, tag, None)

    def tag_name_only(self) -> "Reference":
        """Docker's TagNameOnly: add :latest when there is neither tag nor digest."""
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, DEFAULT_TAG, None)
        return self

    def name_only(self) -> "Reference":
        return Reference(self.domain, self.path)


def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    first = name[:i] if i >= 0 else ""
    if i == -1 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, rest = DEFAULT_DOMAIN, name
    else:
        domain, rest = first, name[i + 1:]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in rest:
        rest = OFFICIAL_PREFIX + rest
    return domain, rest


def _parse_full(s: str) -> Reference:
    """distribution/reference.Parse on an already domain-qualified string."""
    m = REFERENCE_RE.match(s)
    if m is None:
        if not s:
            raise InvalidParameter("invalid reference format: repository name must have at least one component")
        if REFERENCE_RE.match(s.lower()):
            raise InvalidParameter("invalid reference format: repository name must be lowercase")
        raise InvalidParameter("invalid reference format")
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    if len(name) > NAME_TOTAL_MAX:
        raise InvalidParameter(
            f"invalid reference format: repository name must not be more than {NAME_TOTAL_MAX} characters"
        )
    if digest is not None:
        algo, _, hexpart = digest.partition(":")
        if algo != "sha256":
            raise InvalidParameter(f"invalid reference format: unsupported digest algorithm {algo}")
        if len(hexpart) != 64:
            raise InvalidParameter("invalid checksum digest length")
        if hexpart != hexpart.lower():
            raise InvalidParameter("invalid checksum digest format")
    domain, _, path = name.partition("/")
    return Reference(domain, path, tag, digest)


def parse(s: str) -> Reference:
    """ParseNormalizedNamed: `busybox` -> docker.io/library/busybox (no tag added)."""
    if not isinstance(s, str):
        raise InvalidParameter("invalid reference format")
    if ID_RE.match(s):
        raise InvalidParameter(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    domain, rest = _split_domain(s)
    remote = rest.split(":", 1)[0] if ":" in rest else rest
    remote = remote.split("@", 1)[0]
    if remote.lower() != remote:
        raise InvalidParameter(f"invalid reference format: repository name ({remote}) must be lowercase")
    ref = _parse_full(f"{domain}/{rest}")
    if not DOMAIN_RE.match(ref.domain):
        raise InvalidParameter("invalid reference format")
    return ref


def parse_tagged(s: str) -> Reference:
    """parse() then default the tag to latest, as `docker pull busybox` does."""
    return parse(s).tag_name_only()


def repo_tag(repo: str, tag: str | None) -> Reference:
    """The reference named by `repo` and `tag` query parameters (tag, import)."""
    if not repo:
        raise InvalidParameter("invalid reference format: repository name must have at least one component")
    ref = parse(repo)
    if ref.digest is not None:
        raise InvalidParameter("cannot create a tag with a digest")
    if tag:
        # As Docker's WithTag: a tag in `repo` is replaced by `tag`.
        return ref.with_tag(tag)
    return ref.tag_name_only()


def is_id_prefix(image_id: str, s: str) -> bool:
    """True if `s` names `image_id` by ID or ID prefix (with or without sha256:)."""
    if not SHORT_ID_RE.match(s):
        return False
    hexpart = s[7:] if s.startswith("sha256:") else s
    return image_id[7:].startswith(hexpart)


def glob_match(pattern: str, value: str) -> bool:
    """Go's path.Match: `*` and `?` never cross "/"; `[...]` classes."""
    return _glob_re(pattern).match(value) is not None


def _glob_re(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 2)
            if j == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:j]
                if body.startswith("^"):
                    body = "!" + body[1:]
                neg = body.startswith("!")
                body = body[1:] if neg else body
                body = body.replace("\\", "\\\\")
                out.append(("[^" if neg else "[") + body + "]")
                i = j
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.compile("^" + "".join(out) + "$")
    except re.error:
        raise InvalidParameter(f"invalid reference filter pattern: {pattern}") from None


def familiar_match(pattern: str, ref: Reference) -> bool:
    """Docker's FamiliarMatch, used by the `reference` image filter."""
    return glob_match(pattern, ref.familiar()) or glob_match(pattern, ref.familiar_name)

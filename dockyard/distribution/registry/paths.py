"""Where things live in the storage driver's namespace (a Distribution-like layout).

    /blobs/<alg>/<hh>/<hex>/data                             every blob, stored once
    /repositories/<name>/_layers/<alg>/<hex>/link              the repository may serve that blob
    /repositories/<name>/_manifests/revisions/<alg>/<hex>/link  "<digest>\\n<media type>"
    /repositories/<name>/_manifests/tags/<tag>/current/link     "<digest>"
    /repositories/<name>/_referrers/<salg>/<shex>/<alg>/<hex>/link  descriptor JSON of a referrer
    /repositories/<name>/_uploads/<uuid>/data, /startedat       upload sessions
    /repositories/<name>/_uploads/<uuid>/hashstates/<alg>/<offset>  running hash at offset

Repository path components never start with "_", so the "_" directories cannot
collide with a nested repository name.
"""

from __future__ import annotations

from .names import Digest

BLOBS = "/blobs"
REPOS = "/repositories"


def blob_dir(d: Digest) -> str:
    return f"{BLOBS}/{d.algorithm}/{d.hex[:2]}/{d.hex}"


def blob_data(d: Digest) -> str:
    return f"{blob_dir(d)}/data"


def repo(name: str) -> str:
    return f"{REPOS}/{name}"


def layer_link(name: str, d: Digest) -> str:
    return f"{REPOS}/{name}/_layers/{d.algorithm}/{d.hex}/link"


def revision_link(name: str, d: Digest) -> str:
    return f"{REPOS}/{name}/_manifests/revisions/{d.algorithm}/{d.hex}/link"


def revisions(name: str) -> str:
    return f"{REPOS}/{name}/_manifests/revisions"


def tags(name: str) -> str:
    return f"{REPOS}/{name}/_manifests/tags"


def tag_link(name: str, tag: str) -> str:
    return f"{REPOS}/{name}/_manifests/tags/{tag}/current/link"


def tag_dir(name: str, tag: str) -> str:
    return f"{REPOS}/{name}/_manifests/tags/{tag}"


def referrers_dir(name: str, subject: Digest) -> str:
    return f"{REPOS}/{name}/_referrers/{subject.algorithm}/{subject.hex}"


def referrer_link(name: str, subject: Digest, d: Digest) -> str:
    return f"{referrers_dir(name, subject)}/{d.algorithm}/{d.hex}/link"


def upload_dir(name: str, upload_id: str) -> str:
    return f"{REPOS}/{name}/_uploads/{upload_id}"


def upload_data(name: str, upload_id: str) -> str:
    return f"{upload_dir(name, upload_id)}/data"


def upload_info(name: str, upload_id: str) -> str:
    return f"{upload_dir(name, upload_id)}/startedat"


def upload_hashstate(name: str, upload_id: str, algorithm: str, offset: int) -> str:
    return f"{upload_dir(name, upload_id)}/hashstates/{algorithm}/{offset}"

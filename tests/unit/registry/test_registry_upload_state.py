"""The pieces that let replicas continue each other's uploads: the resumable hash and the
signed `_state` token."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.distribution.registry.errors import RegistryError
from dockyard.distribution.registry.hashstate import ResumableHash
from dockyard.distribution.registry.uploadstate import UploadStateSigner


@settings(suppress_health_check=list(HealthCheck), deadline=None, max_examples=60)
@given(st.sampled_from(["sha256", "sha512"]), st.lists(st.binary(max_size=300), max_size=6),
       st.integers(min_value=0, max_value=6))
def test_hash_resumed_from_saved_state_equals_hashlib(alg, pieces, cut):
    h = ResumableHash(alg)
    for p in pieces[:cut]:
        h.update(p)
    state = h.state()
    assert state is not None
    resumed = ResumableHash.from_state(alg, state)
    assert resumed is not None
    for p in pieces[cut:]:
        resumed.update(p)
    assert resumed.hexdigest() == hashlib.new(alg, b"".join(pieces)).hexdigest()
    # hexdigest() does not end the hash: it can go on.
    resumed.update(b"more")
    assert resumed.hexdigest() == hashlib.new(alg, b"".join(pieces) + b"more").hexdigest()


def test_big_buffers_and_foreign_states():
    data = os.urandom(9 << 20)
    h = ResumableHash("sha256")
    h.update(data[:1])
    h = ResumableHash.from_state("sha256", h.state())
    h.update(data[1:])
    assert h.hexdigest() == hashlib.sha256(data).hexdigest()
    state = h.state()
    assert ResumableHash.from_state("sha512", state) is None  # another algorithm's state
    assert ResumableHash.from_state("sha256", state[:-1]) is None  # truncated
    assert ResumableHash.from_state("sha256", b"garbage\n" + state.split(b"\n", 1)[1]) is None


def test_state_token_round_trip_and_refusals():
    a, b = UploadStateSigner("s3cr3t"), UploadStateSigner("s3cr3t")
    tok = a.pack("lib/repo", "a" * 32, 1234, 1700000000.5)
    b.verify(tok, "lib/repo", "a" * 32)  # a replica with the same secret accepts it
    body = json.loads(base64.urlsafe_b64decode(tok)[32:])
    assert body == {"Name": "lib/repo", "UUID": "a" * 32, "Offset": 1234,
                    "StartedAt": "2023-11-14T22:13:20.500000Z"}

    def refused(signer: UploadStateSigner, token: str, name: str = "lib/repo", uid: str = "a" * 32) -> str:
        with pytest.raises(RegistryError) as e:
            signer.verify(token, name, uid)
        assert e.value.code == "BLOB_UPLOAD_INVALID" and e.value.status == 400
        return e.value.detail

    assert refused(UploadStateSigner("other"), tok) == "invalid secret"
    assert refused(a, tok, name="lib/other") == "upload state is for another upload"
    assert refused(a, tok, uid="b" * 32) == "upload state is for another upload"
    raw = bytearray(base64.urlsafe_b64decode(tok))
    raw[-2] ^= 1  # tampered payload
    assert refused(a, base64.urlsafe_b64encode(bytes(raw)).decode()) == "invalid secret"
    assert refused(a, "not base64!") == "illegal base64 data in _state"
    assert refused(a, "") == "invalid secret"


def test_without_a_secret_each_process_draws_its_own():
    tok = UploadStateSigner(None).pack("r", "c" * 32, 0, None)
    with pytest.raises(RegistryError):
        UploadStateSigner(None).verify(tok, "r", "c" * 32)

"""`docker rmi` of a built image also deletes its untagged parents, as dockerd does.

dockerd 20.10, for a four-step legacy build tagged `t` on busybox, answers `docker rmi t` with
`Untagged: t:latest`, then `Deleted: <image>` for the image and each untagged parent in turn, each
followed by `Deleted: <chain id>` of the layers it freed; it stops, silently, at an image that is
tagged, has another child or is used by a container.  `--no-prune` (noprune=1) deletes the image only.
"""

from __future__ import annotations

import hashlib
import secrets
import subprocess

import pytest

pytestmark = pytest.mark.usefixtures("cleanup_containers")


def build(engine, tmp_path, tag: str, dockerfile: str) -> str:
    ctx = tmp_path / secrets.token_hex(4)
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    env = {**engine.docker_env, "DOCKER_BUILDKIT": "0"}
    r = subprocess.run(["docker", "build", "-q", "-t", tag, str(ctx)], env=env, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode() + engine.log_tail(1500)
    return r.stdout.decode().strip()


def four_steps(token: str) -> str:
    # the token keeps other tests' build cache out of this chain
    return (f"FROM busybox\nRUN echo {token} > /one\nRUN echo {token} > /two\n"
            f"ENV TOKEN={token}\nCMD [\"sh\"]\n")


def chain(api, image_id: str) -> list[str]:
    """The image and its parents, down to (not including) busybox."""
    base = api.inspect_image("busybox")["Id"]
    out = []
    while image_id and image_id != base:
        out.append(image_id)
        image_id = api.inspect_image(image_id)["Parent"]
    return out


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The image spec's ChainID of each layer."""
    out = [diff_ids[0]]
    for d in diff_ids[1:]:
        out.append("sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


def exists(api, image_id: str) -> bool:
    return any(i["Id"] == image_id for i in api.images(all=True))


def test_rmi_deletes_the_untagged_parents_with_their_layers(engine, api, tmp_path):
    tag = f"rmiparents-{secrets.token_hex(3)}"
    top = build(engine, tmp_path, tag, four_steps(secrets.token_hex(8)))
    images = chain(api, top)
    assert len(images) == 4  # CMD, ENV, RUN two, RUN one
    base_layers = len(api.inspect_image("busybox")["RootFS"]["Layers"])
    layers = chain_ids(api.inspect_image(top)["RootFS"]["Layers"])[base_layers:]
    assert len(layers) == 2  # the two RUN steps

    out = engine.cli_ok("rmi", tag).splitlines()

    # dockerd's order: each image, then the layers that went with it (the RUN steps' own)
    run_two, run_one = images[2], images[3]
    assert out == [f"Untagged: {tag}:latest",
                   f"Deleted: {images[0]}", f"Deleted: {images[1]}",
                   f"Deleted: {run_two}", f"Deleted: {layers[1]}",
                   f"Deleted: {run_one}", f"Deleted: {layers[0]}"]
    assert not any(exists(api, i) for i in images)
    assert exists(api, api.inspect_image("busybox")["Id"])  # a tagged image ends the walk


def test_noprune_keeps_the_parents_and_rmi_of_one_by_id_prunes_below_it(engine, client, tmp_path):
    api = client.api
    tag = f"rmiparents-{secrets.token_hex(3)}"
    top = build(engine, tmp_path, tag, four_steps(secrets.token_hex(8)))
    images = chain(api, top)

    assert api.remove_image(tag, noprune=True) == [{"Untagged": f"{tag}:latest"}, {"Deleted": top}]
    assert all(exists(api, i) for i in images[1:])

    records = api.remove_image(images[1])  # by ID: the now dangling ENV step, then what it stood on
    assert [r["Deleted"] for r in records if r.get("Deleted", "") in images] == images[1:]
    assert not any(exists(api, i) for i in images)


def test_pruning_stops_at_a_parent_in_use_with_another_child_or_tagged(engine, client, tmp_path):
    api = client.api
    token = secrets.token_hex(8)
    tag = f"rmiparents-{secrets.token_hex(3)}"

    # a stopped container of the RUN-two step: the walk ends above it
    images = chain(api, build(engine, tmp_path, tag, four_steps(token)))
    user = api.create_container(images[2], ["true"])["Id"]
    deleted = [r["Deleted"] for r in api.remove_image(tag) if "Deleted" in r]
    assert deleted == images[:2]
    assert exists(api, images[2]) and exists(api, images[3])
    api.remove_container(user)

    # another build shares the RUN-one step (build cache): that parent has a second child
    other = f"{tag}-other"
    other_chain = chain(api, build(engine, tmp_path, other, f"FROM busybox\nRUN echo {token} > /one\nRUN true\n"))
    assert other_chain[-1] == images[3]
    deleted = [r["Deleted"] for r in api.remove_image(images[2]) if "Deleted" in r]
    assert images[2] in deleted and images[3] not in deleted
    assert exists(api, images[3])

    # a tagged parent ends the walk too; deleting that tag then takes the rest
    api.tag(images[3], f"{tag}-kept")
    deleted = [r["Deleted"] for r in api.remove_image(other) if "Deleted" in r]
    assert deleted[0] == other_chain[0] and images[3] not in deleted
    records = api.remove_image(f"{tag}-kept")
    assert records[0] == {"Untagged": f"{tag}-kept:latest"} and {"Deleted": images[3]} in records
    assert not exists(api, images[3])


def test_rmi_of_the_last_tag_of_a_parent_only_untags_it(engine, client):
    """dockerd answers 200 `Untagged` for the last tag of an image with a child, and keeps the image
    (a parent is not dangling); it used to be a 409 "has dependent child images" after the tag was
    already gone.  Deleting the child then prunes the now untagged parent."""
    api = client.api
    tag = f"rmiparents-{secrets.token_hex(3)}"
    ctr = api.create_container("busybox", ["true"])["Id"]
    parent = api.commit(ctr, repository=tag)["Id"]
    api.remove_container(ctr)
    ctr = api.create_container(f"{tag}:latest", ["true"])["Id"]
    child = api.commit(ctr, repository=f"{tag}-child")["Id"]
    api.remove_container(ctr)

    assert api.remove_image(tag) == [{"Untagged": f"{tag}:latest"}]
    assert exists(api, parent) and api.inspect_image(parent)["RepoTags"] == []
    assert api.inspect_image(child)["Parent"] == parent

    deleted = [r["Deleted"] for r in api.remove_image(f"{tag}-child") if "Deleted" in r]
    assert deleted[0] == child and parent in deleted
    assert not exists(api, parent)

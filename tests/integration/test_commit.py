"""docker commit: the writable layer (files added, changed, deleted) becomes an image that runs."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("cleanup_containers")


def test_commit_and_run_the_new_image(engine, client):
    c = client.containers.run("busybox", ["sh", "-c", "echo new > /added; rm /etc/group; mkdir -p /opq; "
                                                      "echo changed >> /etc/passwd; sleep 60"], detach=True)
    import time
    time.sleep(0.5)
    r = engine.cli("commit", "--change", "CMD [\"cat\", \"/added\"]", "--change", "ENV FROM_COMMIT=1",
                   "-m", "a message", "-a", "someone", c.id, "committed:1")
    assert r.returncode == 0, r.stderr
    img = client.images.get("committed:1")
    assert img.attrs["Config"]["Cmd"] == ["cat", "/added"] and "FROM_COMMIT=1" in img.attrs["Config"]["Env"]
    assert img.attrs["Author"] == "someone" and img.attrs["Comment"] == "a message"
    base = client.images.get("busybox")
    assert len(img.attrs["RootFS"]["Layers"]) == len(base.attrs["RootFS"]["Layers"]) + 1
    hist = img.history()
    assert hist[0]["Comment"] == "a message"
    assert client.containers.run("committed:1", remove=True) == b"new\n"
    out = client.containers.run("committed:1", ["sh", "-c", "ls /etc/group 2>&1; tail -1 /etc/passwd"], remove=True)
    assert b"No such file" in out and out.endswith(b"changed\n")
    assert client.api.inspect_container(c.id)["State"]["Running"]  # paused for the commit, then resumed


def test_commit_errors(client):
    import docker.errors
    with pytest.raises(docker.errors.NotFound):
        client.api.commit("nosuchcontainer", repository="x")
    c = client.containers.create("busybox", "true")
    with pytest.raises(docker.errors.APIError) as e:
        client.api.commit(c.id, repository="x", changes=["RUN echo no"])
    assert e.value.status_code == 400


def test_commit_while_the_process_exits_never_fails(client):
    """Start `true` and commit at once, many times: whether the process still runs, is exiting or
    has exited, commit (pausing when it can) succeeds, as with dockerd."""
    images = []
    try:
        for i in range(25):
            c = client.containers.create("busybox", ["sh", "-c", f"echo {i} > /n"])
            c.start()
            images.append(client.api.commit(c.id, pause=True)["Id"])
            assert c.wait(timeout=60)["StatusCode"] == 0
        # a commit taken after the write holds it; one taken before may not, but never fails
        c = client.containers.create("busybox", ["sh", "-c", "echo done > /n"])
        c.start()
        c.wait(timeout=60)
        images.append(client.api.commit(c.id)["Id"])
        out = client.containers.run(images[-1], ["cat", "/n"], remove=True)
        assert out == b"done\n"
    finally:
        for img in images:
            try:
                client.api.remove_image(img, force=True)
            except Exception:
                pass


def test_commit_pauses_a_running_container(client):
    import time
    c = client.containers.run("busybox", ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /c.tmp; "
                                                      "mv /c.tmp /count; done"], detach=True)
    deadline = time.time() + 60
    while c.exec_run(["test", "-s", "/count"]).exit_code != 0 and time.time() < deadline:
        time.sleep(0.1)
    img = client.api.commit(c.id, pause=True)["Id"]
    try:
        out = client.containers.run(img, ["cat", "/count"], remove=True)
        assert out.strip().isdigit()
        assert client.api.inspect_container(c.id)["State"]["Status"] == "running"  # resumed
    finally:
        c.remove(force=True)
        client.api.remove_image(img, force=True)

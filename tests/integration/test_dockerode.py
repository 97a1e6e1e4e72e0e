"""dockerode (Node.js, npm) against the engine: image load, build progress streams, attach streams.

The checks are tests/node/dockerode_checks.js; each prints what dockerode saw as JSON.  The
package is installed by scripts/install-deps.sh (`npm ci` in tests/node).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from engine_harness import uniq  # noqa: E402

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
SCRIPT = NODE_DIR / "dockerode_checks.js"
BUILDKIT_MOUNT = ("the --mount option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ "
                  "to learn how to build images with BuildKit enabled")


def dockerode(engine, *args: str, timeout: float = 180) -> dict:
    assert (NODE_DIR / "node_modules" / "dockerode").is_dir(), "run scripts/install-deps.sh (npm ci in tests/node)"
    r = subprocess.run([shutil.which("node") or "node", str(SCRIPT), *args], cwd=NODE_DIR,
                       env={**os.environ, "DOCKER_SOCKET": engine.socket}, capture_output=True, timeout=timeout)
    assert r.returncode == 0, f"dockerode {args}: {r.stderr.decode()}\n{engine.log_tail(2000)}"
    return json.loads(r.stdout)


@pytest.fixture
def images(engine):
    made: list[str] = []
    yield made
    api = engine.api()
    for ref in made:
        try:
            api.remove_image(ref, force=True)
        except Exception:
            pass


def test_load_a_saved_image(engine, images, tmp_path):
    src = uniq("node-load").lower() + ":v1"
    images.append(src)
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tf:  # an image of its own (its own ID)
        data = src.encode()
        info = tarfile.TarInfo("marker")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    engine.cli_ok("import", str(rootfs), src)
    image_id = engine.api().inspect_image(src)["Id"]
    engine.cli_ok("save", "-o", str(tmp_path / "img.tar"), src)
    engine.cli_ok("rmi", src)
    got = dockerode(engine, "load", str(tmp_path / "img.tar"), src)
    assert got["tags"] == [src] and got["id"] == image_id
    assert any(f"Loaded image: {src}" in (m.get("stream") or "") for m in got["messages"])


def test_build_progress_stream(engine, images, tmp_path):
    tag = uniq("node-build").lower() + ":v1"
    images.append(tag)
    (tmp_path / "Dockerfile").write_text("FROM busybox:latest\nRUN echo building-now\nCMD [\"true\"]\n")
    got = dockerode(engine, "build", str(tmp_path), tag)
    assert got["httpStatus"] == 200
    text = "".join(m.get("stream", "") for m in got["messages"])
    assert "Step 1/3 : FROM busybox:latest" in text
    assert "Step 2/3 : RUN echo building-now" in text and "\nbuilding-now\n" in text
    assert f"Successfully tagged {tag}" in text
    image_id = engine.api().inspect_image(tag)["Id"]
    assert {"ID": image_id} in [m.get("aux") for m in got["messages"]]
    assert not any("error" in m for m in got["messages"])


def test_build_error_after_the_start_is_in_the_stream(engine, images, tmp_path):
    """dockerd answers 200, runs the steps before, and reports the step it cannot run in the stream."""
    tag = uniq("node-mount").lower() + ":v1"
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox:latest\nRUN echo before-the-mount\nRUN --mount=type=cache,target=/cache echo never\n")
    got = dockerode(engine, "build", str(tmp_path), tag)
    assert got["httpStatus"] == 200
    msgs = got["messages"]
    text = "".join(m.get("stream", "") for m in msgs)
    assert "Step 2/3 : RUN echo before-the-mount" in text and "before-the-mount\n" in text
    assert "Step 3/3 : RUN --mount=type=cache,target=/cache echo never" in text
    assert msgs[-1] == {"errorDetail": {"message": BUILDKIT_MOUNT}, "error": BUILDKIT_MOUNT}
    assert "\nnever\n" not in text  # the step did not run
    # COPY --chmod alike
    (tmp_path / "Dockerfile").write_text("FROM busybox:latest\nCOPY --chmod=755 Dockerfile /x\n")
    msgs = dockerode(engine, "build", str(tmp_path), tag)["messages"]
    assert msgs[-1]["error"].startswith("the --chmod option requires BuildKit")


def test_build_parse_errors_are_http_errors(engine, tmp_path):
    """A Dockerfile dockerd cannot parse (or an unknown flag) is refused before anything is streamed."""
    for text, message in (("FROM busybox:latest\nBOGUS x\n", "unknown instruction: BOGUS"),
                          ("FROM busybox:latest\nRUN --bogus=1 true\n", "Unknown flag: bogus")):
        (tmp_path / "Dockerfile").write_text(text)
        got = dockerode(engine, "build", str(tmp_path), "node-never:v1")
        assert got["httpStatus"] == 400, got
        assert message in got["httpError"]


@pytest.mark.parametrize("mode", ["multiplexed", "tty"])
def test_attach_streams(engine, mode):
    got = dockerode(engine, "attach", "busybox:latest", mode)
    assert got["exit"] == 0
    if mode == "tty":  # one raw stream: the echoed input and both outputs
        assert "out:ping" in got["raw"] and "err:ping" in got["raw"]
        assert got["stdout"] == got["stderr"] == ""
    else:
        assert got["stdout"] == "out:ping\n"
        assert got["stderr"] == "err:ping\n"

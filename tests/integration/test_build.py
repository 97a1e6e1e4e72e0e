"""docker build (the legacy builder, POST /build) through the real docker CLI and docker-py."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile

import docker.errors
import pytest


def cli_build(engine, ctx, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**engine.docker_env, "DOCKER_BUILDKIT": "0"}
    return subprocess.run(["docker", "build", *args, str(ctx)], env=env, capture_output=True,
                          timeout=timeout)


def all_containers(engine) -> set[str]:
    return {c["Id"] for c in engine.api().containers(all=True)}


def write(ctx, files: dict[str, str]) -> None:
    for name, text in files.items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


MULTI_STEP = """\
FROM busybox
ARG GREETING=hello
ARG WHO
ENV APP_HOME=/srv/app MESSAGE="${GREETING} ${WHO:-nobody}"
WORKDIR $APP_HOME
COPY --chown=1000:1000 data/ ./data/
COPY --chown=1000 note.txt .
RUN echo "$MESSAGE" > message.txt && mkdir -p /run/created
WORKDIR sub
RUN pwd > /srv/app/workdir.txt
USER 1000
EXPOSE 8080/tcp 53/udp
LABEL org.example.name="multi step" stage=final
VOLUME /cache
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --retries=5 CMD test -f /srv/app/message.txt
ENTRYPOINT ["/bin/sh", "-c", "cat /srv/app/message.txt /srv/app/workdir.txt; \\
  ls -ln /srv/app/data /srv/app/note.txt; id -u; echo \\"$@\\"", "sh"]
CMD ["default", "args"]
"""


def test_multi_step_build_shows_every_instruction(engine, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": MULTI_STEP, "data/a.txt": "A\n", "data/b/c.txt": "C\n", "note.txt": "note\n"})
    before = all_containers(engine)
    r = cli_build(engine, ctx, "-t", "built/multi:1", "-t", "built/multi:latest", "--build-arg", "WHO=world")
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode() + engine.log_tail()
    steps = MULTI_STEP.replace("\\\n", "").count("\n")
    assert f"Step 1/{steps} : FROM busybox" in out and f"Step {steps}/{steps} : CMD" in out
    assert out.count(" ---> Running in ") == 2 and out.count("Removing intermediate container") == 2
    assert "Successfully tagged built/multi:1" in out and "Successfully tagged built/multi:latest" in out
    assert all_containers(engine) == before  # intermediate containers all removed

    client = engine.client()
    img = client.images.get("built/multi:1")
    assert out.strip().splitlines()[-3] == f"Successfully built {img.id[7:19]}"
    cfg = img.attrs["Config"]
    assert "APP_HOME=/srv/app" in cfg["Env"] and "MESSAGE=hello world" in cfg["Env"]
    assert not any(e.startswith(("WHO=", "GREETING=")) for e in cfg["Env"])  # ARGs are not kept
    assert cfg["WorkingDir"] == "/srv/app/sub" and cfg["User"] == "1000"
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert cfg["Labels"] == {"org.example.name": "multi step", "stage": "final"}
    assert cfg["Volumes"] == {"/cache": {}} and cfg["StopSignal"] == "SIGQUIT"
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "test -f /srv/app/message.txt"],
                                  "Interval": 30_000_000_000, "Retries": 5}
    assert cfg["Cmd"] == ["default", "args"] and cfg["Entrypoint"][0] == "/bin/sh"

    run = client.containers.run("built/multi:1", remove=True).decode()
    lines = run.splitlines()
    assert lines[0] == "hello world" and lines[1] == "/srv/app/sub"
    assert any(l.split()[2:4] == ["1000", "1000"] and l.endswith("a.txt") for l in lines)   # --chown=1000:1000
    assert any(l.split()[2:4] == ["1000", "1000"] and l.endswith("/srv/app/note.txt") for l in lines)
    assert lines[-2:] == ["1000", "default args"]  # USER, then ENTRYPOINT receiving CMD
    nested = client.containers.run("built/multi:1", entrypoint=["cat", "/srv/app/data/b/c.txt"], remove=True)
    assert nested == b"C\n"

    history = [h["CreatedBy"] for h in img.history()]
    for fragment in ["CMD [\"default\" \"args\"]", "ENTRYPOINT", "HEALTHCHECK", "STOPSIGNAL SIGQUIT",
                     "VOLUME [/cache]", "LABEL", "EXPOSE", "USER 1000", "|2 GREETING=hello WHO=world /bin/sh -c pwd",
                     "WORKDIR /srv/app/sub", "COPY --chown=1000 file:", "COPY --chown=1000:1000 dir:",
                     "WORKDIR /srv/app", "ENV APP_HOME=/srv/app", "ARG WHO", "ARG GREETING=hello"]:
        assert any(fragment in h for h in history), (fragment, history)
    assert len(history) == steps - 1 + len(client.images.get("busybox").history())
    r = engine.cli("history", "--no-trunc", "built/multi:1")
    assert r.returncode == 0 and "|2 GREETING=hello WHO=world /bin/sh -c echo \"$MESSAGE\"" in r.stdout.decode()


def test_multi_stage_copy_from_with_docker_py(engine, client, tmp_path):
    df = (b"FROM busybox AS builder\n"
          b"RUN mkdir -p /out/lib && echo artifact > /out/lib/thing && echo unused > /out/unused\n"
          b"FROM busybox AS other\n"
          b"RUN echo other > /other\n"
          b"FROM scratch\n"
          b"COPY --from=builder /out/lib /lib/\n"
          b"COPY --from=0 /bin/busybox /bin/busybox\n"
          b"COPY --from=other /other /other\n"
          b"ENTRYPOINT [\"/bin/busybox\"]\n")
    before = all_containers(engine)
    img, logs = client.images.build(fileobj=io.BytesIO(df), tag="built/stages", rm=True)
    logs = list(logs)
    assert {"aux": {"ID": img.id}} in logs
    assert client.containers.run(img.id, ["cat", "/lib/thing", "/other"], remove=True) == b"artifact\nother\n"
    assert b"No such file" in client.containers.run(img.id, ["sh", "-c", "ls /unused 2>&1; true"], remove=True)
    assert len(img.attrs["RootFS"]["Layers"]) == 3  # FROM scratch: only what was copied
    assert all_containers(engine) == before

    # target: the build stops after the named stage
    first, _ = client.images.build(fileobj=io.BytesIO(df), target="builder", rm=True)
    assert client.containers.run(first.id, ["cat", "/out/unused"], remove=True) == b"unused\n"
    with pytest.raises(docker.errors.APIError) as e:
        client.images.build(fileobj=io.BytesIO(df), target="nope")
    assert e.value.status_code == 400 and "failed to reach build target nope" in e.value.explanation


def test_second_build_is_all_cache_and_a_changed_file_misses(engine, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": "FROM busybox\nENV A=1\nRUN echo run-one > /one\nCOPY app.txt /app.txt\n"
                              "RUN cat /app.txt > /copy\nCMD [\"cat\", \"/copy\"]\n",
                "app.txt": "version 1\n"})
    first = cli_build(engine, ctx, "-t", "built/cache")
    assert first.returncode == 0, first.stderr.decode()
    id1 = engine.client().images.get("built/cache").id
    second = cli_build(engine, ctx, "-t", "built/cache")
    out = second.stdout.decode()
    assert second.returncode == 0 and out.count(" ---> Using cache") == 5 and " ---> Running in" not in out
    assert engine.client().images.get("built/cache").id == id1

    (ctx / "app.txt").write_text("version 2\n")
    third = cli_build(engine, ctx, "-t", "built/cache")
    out = third.stdout.decode()
    assert third.returncode == 0
    assert out.count(" ---> Using cache") == 2          # ENV and the first RUN only
    assert out.count(" ---> Running in") == 1           # the RUN after the COPY runs again
    assert engine.client().containers.run("built/cache", remove=True) == b"version 2\n"

    nocache = cli_build(engine, ctx, "--no-cache", "-t", "built/cache")
    assert nocache.returncode == 0 and " ---> Using cache" not in nocache.stdout.decode()
    r = engine.api().prune_builds()
    assert r["SpaceReclaimed"] == 0 and len(r["CachesDeleted"]) >= 5
    after = cli_build(engine, ctx, "-t", "built/cache")
    assert after.returncode == 0 and " ---> Using cache" not in after.stdout.decode()


def test_dockerignore(engine, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY . /ctx/\nCMD [\"find\", \"/ctx\", \"-type\", \"f\"]\n",
                ".dockerignore": "secret.txt\n**/*.log\nbuild\n!build/keep.txt\n",
                "secret.txt": "s", "app/main.txt": "m", "app/debug.log": "l", "build/out.bin": "b",
                "build/keep.txt": "k"})
    r = cli_build(engine, ctx, "-t", "built/ignore")
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    files = set(engine.client().containers.run("built/ignore", remove=True).decode().split())
    assert files == {"/ctx/Dockerfile", "/ctx/.dockerignore", "/ctx/app/main.txt", "/ctx/build/keep.txt"}
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY secret.txt /\n")
    r = cli_build(engine, ctx)
    assert r.returncode == 1
    assert "file not found in build context or excluded by .dockerignore" in r.stderr.decode()


def test_failing_run(engine, client, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": "FROM busybox\nRUN echo before-failure; false\nRUN echo never\n"})
    before = all_containers(engine)
    r = cli_build(engine, ctx, "--force-rm", "-t", "built/fails")
    assert r.returncode == 1
    assert "The command '/bin/sh -c echo before-failure; false' returned a non-zero code: 1" in r.stderr.decode()
    assert "before-failure" in r.stdout.decode() and "never" not in r.stdout.decode().replace("RUN echo never", "")
    assert all_containers(engine) == before   # --force-rm: the failed step's container went too
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("built/fails")

    write(ctx, {"Dockerfile": "FROM busybox\nRUN exit 3\n"})
    r = cli_build(engine, ctx, "--force-rm")
    assert r.returncode == 3   # the CLI exits with the command's code, as with dockerd
    with pytest.raises(docker.errors.BuildError) as e:
        client.images.build(path=str(ctx), forcerm=True)
    assert e.value.msg == "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert list(e.value.build_log)[-1]["errorDetail"]["code"] == 3
    # without --force-rm, dockerd keeps the failed container for inspection
    r = cli_build(engine, ctx)
    left = all_containers(engine) - before
    assert r.returncode == 3 and len(left) == 1
    assert engine.api().inspect_container(left.pop())["State"]["ExitCode"] == 3
    engine.remove_all_containers()


def test_run_network_modes(engine, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": "FROM busybox\nRUN echo ifaces: $(ls /sys/class/net | sort)\n"})
    none = cli_build(engine, ctx, "--network", "none")
    assert none.returncode == 0 and "ifaces: lo\n" in none.stdout.decode()
    bridge = cli_build(engine, ctx, "--no-cache")
    assert bridge.returncode == 0 and "ifaces: eth0 lo\n" in bridge.stdout.decode()


def test_add_local_archive_and_refused_url(engine, client, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    with tarfile.open(ctx / "payload.tar.gz", "w:gz") as tf:
        data = b"packed\n"
        ti = tarfile.TarInfo("pkg/file.txt")
        ti.size, ti.mode, ti.uid, ti.gid = len(data), 0o640, 7, 8
        tf.addfile(ti, io.BytesIO(data))
    write(ctx, {"Dockerfile": "FROM busybox\nADD payload.tar.gz /opt/\nCOPY payload.tar.gz /raw/\n"})
    img, _ = client.images.build(path=str(ctx), rm=True)
    out = client.containers.run(img.id, ["sh", "-c", "cat /opt/pkg/file.txt; stat -c '%a %u %g' "
                                         "/opt/pkg/file.txt; ls /raw"], remove=True)
    assert out == b"packed\n640 7 8\npayload.tar.gz\n"   # ADD unpacks, COPY does not
    write(ctx, {"Dockerfile": "FROM busybox\nADD https://example.invalid/file /x\n"})
    with pytest.raises(docker.errors.BuildError) as e:
        client.images.build(path=str(ctx))
    assert "remote sources are not supported" in e.value.msg


@pytest.mark.parametrize("dockerfile, message", [
    (b"FROM busybox\nFROBNICATE x\n", "unknown instruction: FROBNICATE"),
    (b"RUN true\n", "no build stage in current context"),
    (b"FROM busybox\nCOPY justone\n", "COPY requires at least two arguments"),
    (b"", "cannot be empty"),
])
def test_bad_dockerfiles_are_400(client, dockerfile, message):
    with pytest.raises(docker.errors.APIError) as e:
        client.images.build(fileobj=io.BytesIO(dockerfile))
    assert e.value.status_code == 400 and message in e.value.explanation


def test_missing_dockerfile_and_bad_tag(api):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("Dockerfile")
        ti.size = 13
        tf.addfile(ti, io.BytesIO(b"FROM busybox\n"))
    with pytest.raises(docker.errors.APIError) as e:
        list(api.build(fileobj=io.BytesIO(buf.getvalue()), custom_context=True, dockerfile="nope/Dockerfile"))
    assert e.value.status_code == 400 and "Cannot locate specified Dockerfile: nope/Dockerfile" in e.value.explanation
    resp = api._post(api._url("/build"), params={"t": "Bad:tag"}, data=buf.getvalue(),
                     headers={"Content-Type": "application/x-tar"})
    assert resp.status_code == 400 and "must be lowercase" in resp.json()["message"]
    resp = api._post(api._url("/build"), params={"buildargs": "[1]"}, data=buf.getvalue(),
                     headers={"Content-Type": "application/x-tar"})
    assert resp.status_code == 400 and "invalid buildargs" in resp.json()["message"]


def test_quiet_labels_and_dockerfile_path(engine, client, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"docker/app.Dockerfile": "FROM busybox\nLABEL from=file\nRUN echo noisy\n"})
    r = cli_build(engine, ctx, "-q", "-f", str(ctx / "docker/app.Dockerfile"), "--label", "extra=yes", "-t", "built/quiet")
    assert r.returncode == 0, r.stderr.decode()
    image_id = r.stdout.decode().strip()
    assert image_id.startswith("sha256:") and "noisy" not in r.stdout.decode()
    img = client.images.get("built/quiet")
    assert img.id == image_id and img.labels == {"from": "file", "extra": "yes"}
    # an unused --build-arg is reported, as dockerd does
    r = cli_build(engine, ctx, "-f", str(ctx / "docker/app.Dockerfile"), "--build-arg", "UNUSED=1")
    assert r.returncode == 0 and "[Warning] One or more build-args [UNUSED] were not consumed" in r.stdout.decode()


def test_onbuild_triggers_run_in_the_child_build(engine, client):
    parent = b"FROM busybox\nONBUILD RUN echo triggered > /trigger\nCMD [\"true\"]\n"
    base, _ = client.images.build(fileobj=io.BytesIO(parent), tag="built/onbuild-base", rm=True)
    assert base.attrs["Config"]["OnBuild"] == ["RUN echo triggered > /trigger"]
    child, logs = client.images.build(fileobj=io.BytesIO(b"FROM built/onbuild-base\nRUN cat /trigger\n"), rm=True)
    text = "".join(m.get("stream", "") for m in logs)
    assert "# Executing 1 build trigger" in text and "triggered\n" in text
    assert not child.attrs["Config"].get("OnBuild")  # triggers fire once
    assert json.loads(json.dumps(child.attrs["Config"]["Cmd"])) == ["true"]


def test_dockerfile_outside_the_context_and_compressed(engine, tmp_path):
    ctx, elsewhere = tmp_path / "ctx", tmp_path / "elsewhere"
    write(ctx, {"f": "from the context\n"})
    write(elsewhere, {"Build.file": "FROM busybox\nCOPY f /f\nRUN cat /f\n"})
    # the CLI appends the Dockerfile to the context tar under a random name (unpadded, as Go writes it)
    for extra in ([], ["--compress"]):
        r = cli_build(engine, ctx, *extra, "--no-cache", "-f", str(elsewhere / "Build.file"))
        assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
        assert "from the context\n" in r.stdout.decode()


def test_client_going_away_cancels_the_build(engine, tmp_path):
    import time

    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": "FROM busybox\nRUN echo started; sleep 60\n"})
    before = all_containers(engine)
    env = {**engine.docker_env, "DOCKER_BUILDKIT": "0"}
    proc = subprocess.Popen(["docker", "build", "--no-cache", str(ctx)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while not (all_containers(engine) - before) and time.time() < deadline:
            time.sleep(0.1)
        assert all_containers(engine) - before, "the RUN container never appeared"
    finally:
        proc.kill()
        proc.wait()
    deadline = time.time() + 30
    while all_containers(engine) - before and time.time() < deadline:
        time.sleep(0.2)
    assert all_containers(engine) == before  # the running step was killed and removed


def test_extra_hosts_reach_run_steps(client):
    """docker-py sends each extra host as its own `extrahosts` parameter, as the CLI does."""
    df = b"FROM busybox\nRUN grep -E '10.1.2.3\\s+myhost' /etc/hosts && grep -E '10.1.2.4\\s+other' /etc/hosts\n"
    img, _ = client.images.build(fileobj=io.BytesIO(df), extra_hosts={"myhost": "10.1.2.3", "other": "10.1.2.4"},
                                 tag="built/extrahosts", rm=True, nocache=True)
    client.images.remove(img.id, force=True)


def _messages(logs) -> str:
    return "".join(m.get("stream", "") for m in logs)


def _remove_images_since(client, before: set[str]) -> None:
    """Every image made since `before`, intermediate ones too, newest first."""
    made = [i for i in client.api.images(all=True) if i["Id"] not in before]
    for i in sorted(made, key=lambda i: i["Created"], reverse=True):
        try:
            client.api.remove_image(i["Id"], force=True)
        except docker.errors.NotFound:
            pass


def test_cache_from_gives_hits_without_the_local_chain(engine, client, tmp_path):
    """An image named in cache_from gives cache hits by its history, even when it came from
    `docker load` (none of its intermediate images, no local cache records), as dockerd's."""
    df = b"FROM busybox\nRUN echo a > /a\nLABEL step=two\nRUN echo b > /b\nCMD [\"cat\", \"/b\"]\n"
    before = {i["Id"] for i in client.api.images(all=True)}
    src, _ = client.images.build(fileobj=io.BytesIO(df), tag="built/cachesrc:1", rm=True)
    saved = b"".join(src.save(named=True))
    _remove_images_since(client, before)  # the image and its intermediate images
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(src.id)
    client.images.load(saved)
    try:
        # no source: every step runs
        plain, logs = client.images.build(fileobj=io.BytesIO(df), rm=True)
        assert "Using cache" not in _messages(logs) and plain.id != src.id
        _remove_images_since(client, before | {src.id})
        # with the source: every step is a hit, and the result is the source itself
        img, logs = client.images.build(fileobj=io.BytesIO(df), cache_from=["built/cachesrc:1"], rm=True,
                                        tag="built/cachehit:1")
        out = _messages(logs)
        assert out.count(" ---> Using cache") == 4 and " ---> Running in" not in out, out
        assert img.id == src.id
        assert client.containers.run(img.id, remove=True) == b"b\n"
        # a changed step misses from there on
        changed = df.replace(b"echo b", b"echo c")
        img2, logs = client.images.build(fileobj=io.BytesIO(changed), cache_from=["built/cachesrc:1"], rm=True)
        out = _messages(logs)
        assert out.count(" ---> Using cache") == 2 and " ---> Running in" in out, out
        assert client.containers.run(img2.id, remove=True) == b"c\n"
        client.images.remove(img2.id)
        # an unknown source is skipped, as dockerd does; a malformed list is a 400
        client.images.build(fileobj=io.BytesIO(df), cache_from=["no/such:image"], rm=True)
        r = client.api._post(client.api._url("/build"), params={"cachefrom": "{}"}, data=b"")
        assert r.status_code == 400
    finally:
        _remove_images_since(client, before)

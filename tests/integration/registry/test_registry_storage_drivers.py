"""One storage-driver test suite, run against the filesystem driver and the S3 driver
(moto's S3 server on loopback)."""

from __future__ import annotations

import os
import time
import uuid

import pytest
import requests

from dockyard.distribution.registry.storage import PathNotFound, StorageDriver
from dockyard.distribution.registry.storage.driver import InvalidPath
from dockyard.distribution.registry.storage.filesystem import FilesystemDriver
from dockyard.distribution.registry.storage.s3 import S3Driver


@pytest.fixture(params=["filesystem", "s3"])
def make_driver(request, tmp_path):
    """A factory: each call opens another driver instance on the *same* storage, as a second
    replica would."""
    made: list[StorageDriver] = []
    prefix = f"t-{uuid.uuid4().hex[:8]}"

    def make() -> StorageDriver:
        if request.param == "filesystem":
            d: StorageDriver = FilesystemDriver(str(tmp_path / "root"))
        else:
            d = S3Driver(bucket="drivers", endpoint_url=request.getfixturevalue("s3_server"),
                         access_key="test", secret_key="test", prefix=prefix, create_bucket=True)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def driver_name(d: StorageDriver) -> str:
    return d.name


@pytest.fixture
def driver(make_driver) -> StorageDriver:
    return make_driver()


def test_put_get_overwrite(driver):
    driver.put_content("/a/b/c", b"one")
    assert driver.get_content("/a/b/c") == b"one"
    driver.put_content("/a/b/c", b"two")
    assert driver.get_content("/a/b/c") == b"two"
    assert driver.stat("/a/b/c").size == 3 and not driver.stat("/a/b/c").is_dir
    assert driver.stat("/a/b").is_dir


def test_missing_paths(driver):
    for call in (lambda: driver.get_content("/nope"), lambda: driver.stat("/nope"),
                 lambda: driver.reader("/nope"), lambda: driver.list("/nope"),
                 lambda: driver.delete("/nope"), lambda: driver.move("/nope", "/x"),
                 lambda: list(driver.walk("/nope"))):
        with pytest.raises(PathNotFound):
            call()
    assert not driver.exists("/nope")


def test_invalid_paths(driver):
    for bad in ("relative", "/a/../b", "/a//b", "/a/", "/a b"):
        with pytest.raises(InvalidPath):
            driver.put_content(bad, b"x")


def test_reader_at_offset(driver):
    data = bytes(range(256)) * 100
    driver.put_content("/r/data", data)
    with driver.reader("/r/data", 1000) as f:
        assert f.read() == data[1000:]
    with driver.reader("/r/data") as f:
        assert f.read(10) == data[:10]


def test_writer_commit_close_resume_cancel(driver):
    w = driver.writer("/w/data")
    w.write(b"hello ")
    assert w.size == 6
    w.close()
    w = driver.writer("/w/data", append=True)
    assert w.size == 6  # resumed where the closed writer stopped
    w.writelines([b"wor", b"ld"])
    assert w.size == 11
    w.commit()
    assert driver.get_content("/w/data") == b"hello world"
    w = driver.writer("/w/data", append=True)  # resume from committed content
    assert w.size == 11
    w.write(b"!")
    w.commit()
    assert driver.get_content("/w/data") == b"hello world!"
    w = driver.writer("/w/other")
    w.write(b"discard")
    w.cancel()
    assert not driver.exists("/w/other")


def test_big_writer(driver):
    chunk = b"x" * (1 << 20)
    w = driver.writer("/big/data")
    for _ in range(8):
        w.write(chunk)
    w.commit()
    assert driver.stat("/big/data").size == 8 << 20


def test_list_walk_move_delete(driver):
    for p in ("/l/a/1", "/l/a/2", "/l/b/c/3", "/l/top"):
        driver.put_content(p, p.encode())
    assert driver.list("/l") == ["/l/a", "/l/b", "/l/top"]
    assert driver.list("/l/a") == ["/l/a/1", "/l/a/2"]
    walked = sorted(f.path for f in driver.walk("/l"))
    assert walked == ["/l/a/1", "/l/a/2", "/l/b/c/3", "/l/top"]
    assert all(f.size == len(f.path) for f in driver.walk("/l"))
    driver.move("/l/top", "/m/moved")
    assert driver.get_content("/m/moved") == b"/l/top" and not driver.exists("/l/top")
    driver.put_content("/m/target", b"old")
    driver.move("/m/moved", "/m/target")  # overwrite
    assert driver.get_content("/m/target") == b"/l/top"
    driver.delete("/l/a")
    assert not driver.exists("/l/a/1") and driver.exists("/l/b/c/3")
    driver.delete("/l/b/c/3")
    assert not driver.exists("/l/b/c/3")


def test_root_listing(driver):
    driver.put_content("/x1/y", b"1")
    assert "/x1" in driver.list("/")


def test_writer_resumes_on_another_instance(make_driver):
    """Data kept by close() on one instance is resumed, read and committed by another."""
    a, b = make_driver(), make_driver()
    part = os.urandom(6 << 20)  # above S3's minimum part size: a multipart session
    w = a.writer("/up/data", append=True)
    w.write(part)
    w.close()
    w = b.writer("/up/data", append=True)
    assert w.size == len(part)
    w.write(b"small tail")  # a session below the minimum part size
    w.close()
    w = a.writer("/up/data", append=True)
    assert w.size == len(part) + 10
    w.write(b"!")
    w.close()
    with b.reader("/up/data") as f:  # kept data is readable before commit
        assert f.read() == part + b"small tail!"
    with b.reader("/up/data", len(part) + 3) as f:
        assert f.read() == b"ll tail!"
    w = b.writer("/up/data", append=True)
    w.commit("/final/data")
    assert a.get_content("/final/data") == part + b"small tail!"
    assert not a.exists("/up/data")


def test_writer_token_names_the_data(make_driver):
    a, b = make_driver(), make_driver()
    w = a.writer("/tok/data", append=True)
    empty = w.token
    w.write(b"abc")
    w.close()
    r = b.writer("/tok/data", append=True)
    assert r.token == w.token != empty and r.size == 3
    r.close()  # nothing written: same data, same token
    assert a.writer("/tok/data", append=True).token == w.token


def test_commit_composes_many_small_and_large_sessions(make_driver):
    """Sessions of every size around S3's 5 MiB part minimum make one correct object."""
    a, b = make_driver(), make_driver()
    pieces = [os.urandom(n) for n in (3, 5 << 20, (5 << 20) - 1, 1, (7 << 20) + 5, 100)]
    for i, p in enumerate(pieces):
        w = (a if i % 2 else b).writer("/c/data", append=True)
        w.write(p)
        w.close()
    w = a.writer("/c/data", append=True)
    assert w.size == sum(map(len, pieces))
    w.commit()
    assert b.get_content("/c/data") == b"".join(pieces)


def test_unclosed_writer_leaves_no_data(make_driver):
    """A writer that dies before close() (a killed replica) leaves what close() kept plus, on a
    filesystem, what reached the file: a resumed writer's size says which, and the data agrees."""
    a, b = make_driver(), make_driver()
    w = a.writer("/k/data", append=True)
    w.write(b"kept")
    w.close()
    big = os.urandom(12 << 20)
    w = a.writer("/k/data", append=True)
    w.write(big)  # S3: parts sent, never completed
    if driver_name(a) == "filesystem":
        w._f.flush()  # the kernel has what a killed process wrote
    r = b.writer("/k/data", append=True)
    assert r.size == (4 + len(big) if driver_name(a) == "filesystem" else 4)
    if driver_name(a) == "s3":
        assert b.abort_uploads("/k", time.time() + 60) == 1
        assert b.abort_uploads("/k", time.time() + 60) == 0
    r.write(b" more")
    r.commit()
    assert a.get_content("/k/data") == (b"kept" + big)[:r.size - 5] + b" more"


def test_cancel_discards(make_driver):
    a, b = make_driver(), make_driver()
    w = a.writer("/x/data", append=True)
    w.write(b"123")
    w.close()
    b.writer("/x/data", append=True).cancel()
    assert a.writer("/x/data", append=True).size == 0


def test_hidden_write_state_is_not_listed(driver):
    w = driver.writer("/h/u/data", append=True)
    w.write(b"abc")
    w.close()
    driver.put_content("/h/u/startedat", b"1")
    assert driver.list("/h/u") in (["/h/u/data", "/h/u/startedat"], ["/h/u/startedat"])
    assert all(".chunks" not in f.path for f in driver.walk("/h"))
    driver.delete("/h/u")
    assert not driver.exists("/h/u/startedat")
    with pytest.raises(PathNotFound):
        driver.reader("/h/u/data")


def test_redirect_url(driver):
    driver.put_content("/red/data", b"via the bucket")
    url = driver.redirect_url("/red/data", "GET")
    if driver.name == "filesystem":
        assert url is None
        return
    assert requests.get(url, timeout=30).content == b"via the bucket"
    assert requests.head(driver.redirect_url("/red/data", "HEAD"), timeout=30).headers["Content-Length"] == "14"
    assert driver.redirect_url("/red/data", "PUT") is None

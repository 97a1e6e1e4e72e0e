"""One storage-driver test suite, run against the filesystem driver and the S3 driver
(moto's S3 server on loopback)."""

from __future__ import annotations

import uuid

import pytest

from dockyard.distribution.registry.storage import PathNotFound, StorageDriver
from dockyard.distribution.registry.storage.driver import InvalidPath
from dockyard.distribution.registry.storage.filesystem import FilesystemDriver
from dockyard.distribution.registry.storage.s3 import S3Driver


@pytest.fixture(params=["filesystem", "s3"])
def driver(request, tmp_path) -> StorageDriver:
    if request.param == "filesystem":
        d: StorageDriver = FilesystemDriver(str(tmp_path / "root"))
    else:
        endpoint = request.getfixturevalue("s3_server")
        d = S3Driver(bucket="drivers", endpoint_url=endpoint, access_key="test", secret_key="test",
                     prefix=f"t-{uuid.uuid4().hex[:8]}", spool_dir=str(tmp_path / "spool"), create_bucket=True)
    yield d
    d.close()


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

"""`dockyard registry --config` with Distribution's config.yml: refusals name the key, and
Distribution's S3 keys really serve from S3 (not silently from the local filesystem)."""

from __future__ import annotations

import subprocess
import sys

import boto3
import requests
import yaml

from conftest import make_bucket
from regclient import push_blob


def _start_fails(tmp_path, doc: dict, env: dict | None = None) -> str:
    cfg = tmp_path / "config.yml"
    cfg.write_text(yaml.safe_dump(doc))
    r = subprocess.run([sys.executable, "-m", "dockyard.cli", "registry", "--addr", "127.0.0.1:1",
                        "--root", str(tmp_path / "root"), "--config", str(cfg)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    return r.stderr


def test_misspelt_or_unsupported_keys_stop_the_start(tmp_path):
    err = _start_fails(tmp_path, {"storage": {"s3": {"bucket": "b", "region": "r", "regionendpoit": "http://x"}}})
    assert "storage.s3.regionendpoit: unknown configuration key" in err
    err = _start_fails(tmp_path, {"middleware": {"storage": [{"name": "cloudfront"}]}})
    assert "middleware: not supported by dockyard" in err
    assert not (tmp_path / "root").exists()  # refused before anything was created


def test_distribution_s3_keys_serve_from_the_bucket(registry_factory, s3_server):
    make_bucket(s3_server, "cfg-dist")
    srv = registry_factory({"version": 0.1, "storage": {
        "s3": {"bucket": "cfg-dist", "region": "us-east-1", "regionendpoint": s3_server,
               "accesskey": "test", "secretkey": "test", "rootdirectory": "/reg", "encrypt": True,
               "storageclass": "REDUCED_REDUNDANCY"},
        "cache": {"blobdescriptor": "inmemory"}},
        "http": {"headers": {"X-Content-Type-Options": ["nosniff"]}}}, "cfg-s3")
    d = push_blob(srv.url, "cfg/repo", b"stored in the bucket")
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="cfg-dist", Prefix="reg/")["Contents"]]
    assert f"reg/blobs/sha256/{d[7:9]}/{d[7:]}/data" in keys
    assert not (srv.root / "blobs").exists()
    head = s3.head_object(Bucket="cfg-dist", Key=f"reg/blobs/sha256/{d[7:9]}/{d[7:]}/data")
    assert head["ServerSideEncryption"] == "AES256" and head["StorageClass"] == "REDUCED_REDUNDANCY"
    r = requests.get(f"{srv.url}/v2/")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "storage.cache: accepted and ignored" in srv.log_tail()

"""`dockyard registry --config` with Distribution's config.yml: refusals name the key, and
Distribution's S3 keys really serve from S3 (not silently from the local filesystem)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import boto3
import pytest
import requests
import yaml

from conftest import _stop, free_port, make_bucket
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


def test_tls_clientcas_and_minimumtls(registry_factory, tmp_path):
    """http.tls.clientcas: clients must present a certificate the CA issued; minimumtls: older
    protocol versions are refused."""
    import ssl

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test CA",
            "-keyout", str(tmp_path / "ca.key"), "-out", str(tmp_path / "ca.crt"))
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(tmp_path / f"{name}.key"),
                "-out", str(tmp_path / f"{name}.csr"))
        (tmp_path / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", str(tmp_path / f"{name}.csr"), "-CA", str(tmp_path / "ca.crt"),
                "-CAkey", str(tmp_path / "ca.key"), "-CAcreateserial", "-days", "1",
                "-extfile", str(tmp_path / f"{name}.ext"), "-out", str(tmp_path / f"{name}.crt"))
    port = free_port()
    cfg = tmp_path / "config.yml"
    cfg.write_text(yaml.safe_dump({"http": {"tls": {
        "certificate": str(tmp_path / "server.crt"), "key": str(tmp_path / "server.key"),
        "clientcas": [str(tmp_path / "ca.crt")], "minimumtls": "tls1.3"}}}))
    proc = subprocess.Popen([sys.executable, "-m", "dockyard.cli", "registry", "--addr", f"127.0.0.1:{port}",
                             "--root", str(tmp_path / "root"), "--config", str(cfg)],
                            stdout=(tmp_path / "log").open("wb"), stderr=subprocess.STDOUT)
    try:
        url = f"https://127.0.0.1:{port}/v2/"
        deadline = time.monotonic() + 30
        while True:
            try:
                r = requests.get(url, verify=str(tmp_path / "ca.crt"),
                                 cert=(str(tmp_path / "client.crt"), str(tmp_path / "client.key")), timeout=5)
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "log").read_text()
                time.sleep(0.1)
        assert r.status_code == 200
        with pytest.raises(requests.exceptions.RequestException):  # no client certificate
            requests.get(url, verify=str(tmp_path / "ca.crt"), timeout=5)
        ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
        ctx.load_cert_chain(str(tmp_path / "client.crt"), str(tmp_path / "client.key"))
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(ssl.SSLError):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                ctx.wrap_socket(s, server_hostname="127.0.0.1")
    finally:
        _stop(proc)

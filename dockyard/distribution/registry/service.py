"""The Registry object: one place that builds the driver and wires the services together."""

from __future__ import annotations

import os
from typing import cast

from .auth import Authenticator
from .blobs import BlobService
from .config import RegistryConfig
from .health import HealthChecks
from .manifests import ManifestService
from .metrics import InstrumentedDriver, Metrics
from .notifications import Notifier
from .proxy import PullThrough
from .referrers import ReferrerService
from .repos import RepositoryService
from .storage import StorageDriver, make_driver
from .tags import TagService
from .uploads import UploadService
from .validation import ManifestPolicy


class Registry:
    def __init__(self, cfg: RegistryConfig, driver: StorageDriver | None = None) -> None:
        self.cfg = cfg
        self.metrics = Metrics()
        self.driver = driver or make_driver(cfg.driver, cfg.root, cfg.driver_options)
        if cfg.http.debug.prometheus:
            self.driver = cast(StorageDriver, InstrumentedDriver(self.driver, self.metrics))
        self.blobs = BlobService(self.driver, cfg.delete_enabled)
        self.uploads = UploadService(self.driver, self.blobs, cfg.http.secret)
        self.tags = TagService(self.driver, cfg.delete_enabled)
        self.referrers = ReferrerService(self.driver)
        self.manifests = ManifestService(self.driver, self.blobs, self.tags, self.referrers,
                                         cfg.manifest_size, cfg.delete_enabled, ManifestPolicy(cfg.validation))
        self.repos = RepositoryService(self.driver)
        self.auth = Authenticator(cfg.auth)
        self.health = HealthChecks(cfg.health, self.driver, cfg.driver)
        self.notifier = Notifier(cfg.notifications, cfg.root, cfg.addr, self.metrics)
        self.proxy = PullThrough(self, cfg.proxy, self.metrics) if cfg.proxy is not None else None
        # The GC lock lives on local disk even when blobs live in S3.
        self.lock_dir = cfg.root
        os.makedirs(self.lock_dir, exist_ok=True)

    def close(self) -> None:
        self.driver.close()

"""The OCI runtime (runc) and the per-container monitor (conmon)."""

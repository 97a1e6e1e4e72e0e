"""Distribution: the OCI registry server (registry/) and, later, the registry client."""

"""What dockerd finds wrong in log options only when it starts the logger, checked at create.

dockerd compiles `labels-regex`/`env-regex` (json-file, in ExtraAttributes) and
parses and runs the `tag` template (json-file when given, syslog always; named
"log-tag", with its template functions, on a *logger.Info), and syslog over
tcp+tls reads its CA, certificate and key files, when a container starts, and
fails the start with Go's message.  dockyard checks the other option values at
create already (validate_log_config), so these too: the same texts, as a 400
before anything is made (the files are read again at start).
"""

from __future__ import annotations

from ... import goregexp, gotemplate
from ...gotemplate import ANY, STRING, STRING_MAP, GoType
from . import attrs

# daemon/logger/templates: the functions a tag template may call besides Go's own, by arity
# (none variadic), from the ones the tag is rendered with
TAG_FUNCS = {name: (len(f.params), False) for name, f in attrs.TAG_FUNCS.items()}
STRINGS = GoType("[]string")
# time.Time's methods (Go 1.19, dockerd 20.10's) by arity; their results are not modelled
TIME = GoType("time.Time", methods={**{m: (0, ANY) for m in (
    "Clock", "Date", "Day", "GoString", "GobEncode", "Hour", "ISOWeek", "IsDST", "IsZero", "Local",
    "Location", "MarshalBinary", "MarshalJSON", "MarshalText", "Minute", "Month", "Nanosecond",
    "Second", "String", "UTC", "Unix", "UnixMicro", "UnixMilli", "UnixNano", "Weekday", "Year",
    "YearDay", "Zone", "ZoneBounds")}, **{m: (1, ANY) for m in (
    "Add", "After", "Before", "Equal", "Format", "In", "Round", "Sub", "Truncate")},
    "AppendFormat": (2, ANY), "AddDate": (3, ANY)})
# daemon/logger.Info: its fields and the methods a tag may call
LOGGER_INFO = GoType(
    "*logger.Info",
    fields={"Config": STRING_MAP, "ContainerID": STRING, "ContainerName": STRING,
            "ContainerEntrypoint": STRING, "ContainerArgs": STRINGS, "ContainerImageID": STRING,
            "ContainerImageName": STRING, "ContainerCreated": TIME, "ContainerEnv": STRINGS,
            "ContainerLabels": STRING_MAP, "LogPath": STRING, "DaemonName": STRING},
    methods={"ID": (0, STRING), "FullID": (0, STRING), "Name": (0, STRING), "ImageID": (0, STRING),
             "ImageFullID": (0, STRING), "ImageName": (0, STRING), "Command": (0, STRING),
             "Hostname": (0, STRING), "ExtraAttributes": (1, STRING_MAP)},
)


def check_start_options(driver: str, opts: dict[str, str]) -> None:
    """Raise InvalidParameter as the driver's start would, in dockerd's order."""
    if driver == "json-file":
        for key in ("labels-regex", "env-regex"):
            if opts.get(key):
                goregexp.check(opts[key])
    if driver in ("json-file", "syslog") and opts.get("tag"):
        gotemplate.check("log-tag", opts["tag"], TAG_FUNCS, LOGGER_INFO)
    if driver == "syslog":
        from . import syslog, syslogtls  # (ssl) only where a syslog driver is asked for

        if syslog.parse_address(opts.get("syslog-address", "")).proto == "tcp+tls":
            # the CA, certificate and key files are read (tlsconfig.Client) only for a tcp+tls address
            syslogtls.client_context(opts)

#!/usr/bin/env python3
"""Checks a CDI spec written by `daxpoolctl cdi` against the rules of the CDI version it
declares, as the CDI library of a container engine applies them when it loads the file:
strict decoding (an unknown field fails the whole file), the version, the kind and device name
syntax, non-empty device edits, KEY=VALUE environment entries, mounts with both paths, the
fields each version introduced. Then daxpool's own promises: the socket is mounted where
DAXPOOL_SOCKET points, "daxpool:any" sets no DAXPOOL_SLICE, every other device sets
DAXPOOL_SLICE to its own name.

    cdi-check.py SPEC [--devices NAME,NAME,...] [--host-socket PATH] [--schema DIR]

--schema DIR also validates SPEC against the CDI project's own JSON schema (DIR/schema.json and
the defs.json it refers to), as Debian ships it with the CDI library's sources
(golang-github-container-orchestrated-devices-container-device-interface-dev), through
python3-jsonschema.

Exit 0 when the spec passes, 1 with every finding on stderr otherwise.
"""
import argparse
import json
import re
import sys

# Versions the CDI library of Debian 12's podman 4.3 accepts (it refuses any other).
ACCEPTED = ("0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0")
ALNUM = r"[A-Za-z0-9]"
DEVICE_NAME = re.compile(rf"^{ALNUM}([A-Za-z0-9_.:-]*{ALNUM})?$")
VENDOR = re.compile(rf"^[A-Za-z]([A-Za-z0-9_.-]*{ALNUM})?$")
CLASS = re.compile(rf"^{ALNUM}([A-Za-z0-9_-]*{ALNUM})?$")
SPEC_KEYS = {"cdiVersion", "kind", "devices", "containerEdits"}
DEVICE_KEYS = {"name", "containerEdits"}
EDITS_KEYS = {"env", "deviceNodes", "hooks", "mounts"}
MOUNT_KEYS = {"hostPath", "containerPath", "options", "type"}
NODE_KEYS = {"path", "hostPath", "type", "major", "minor", "fileMode", "permissions", "uid", "gid"}
HOOK_KEYS = {"hookName", "path", "args", "env", "timeout"}

findings = []


def bad(msg):
    findings.append(msg)


def vtuple(v):
    return tuple(int(x) for x in v.split("."))


def check_keys(where, obj, allowed, required=()):
    if not isinstance(obj, dict):
        bad(f"{where}: not an object")
        return False
    for k in obj:
        if k not in allowed:
            bad(f"{where}: unknown field {k!r} (strict decoding refuses the file)")
    for k in required:
        if k not in obj:
            bad(f"{where}: missing {k!r}")
    return True


def check_strings(where, v):
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        bad(f"{where}: not a list of strings")
        return []
    return v


def check_edits(where, e, version):
    if not check_keys(where, e, EDITS_KEYS):
        return {}
    for s in check_strings(f"{where}.env", e.get("env", [])):
        if "=" not in s or s.startswith("="):
            bad(f"{where}.env: {s!r} is not KEY=VALUE")
    for i, m in enumerate(e.get("mounts", [])):
        w = f"{where}.mounts[{i}]"
        if check_keys(w, m, MOUNT_KEYS, ("hostPath", "containerPath")):
            for k in ("hostPath", "containerPath"):
                if not isinstance(m.get(k), str) or not m.get(k, "").startswith("/"):
                    bad(f"{w}.{k}: not an absolute path")
            check_strings(f"{w}.options", m.get("options", []))
            if "type" in m and vtuple(version) < (0, 4, 0):
                bad(f"{w}.type: needs CDI 0.4.0, the spec declares {version}")
    for i, d in enumerate(e.get("deviceNodes", [])):
        w = f"{where}.deviceNodes[{i}]"
        if check_keys(w, d, NODE_KEYS, ("path",)):
            if "hostPath" in d and vtuple(version) < (0, 5, 0):
                bad(f"{w}.hostPath: needs CDI 0.5.0, the spec declares {version}")
    for i, h in enumerate(e.get("hooks", [])):
        check_keys(f"{where}.hooks[{i}]", h, HOOK_KEYS, ("hookName", "path"))
    return e


def check_schema(spec, directory):
    import os
    import warnings
    try:
        import jsonschema
    except ImportError:
        bad("--schema: python3-jsonschema is not installed")
        return
    with open(os.path.join(directory, "schema.json"), encoding="utf-8") as f:
        schema = json.load(f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # RefResolver: kept for Debian's 4.10
        resolver = jsonschema.RefResolver(base_uri="file://" + os.path.abspath(directory) + "/",
                                          referrer=schema)
        validator = jsonschema.Draft7Validator(schema, resolver=resolver)
        for e in validator.iter_errors(spec):
            bad(f"CDI schema: {'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}")


def env_map(edits):
    out = {}
    for s in edits.get("env", []) if isinstance(edits, dict) else []:
        if isinstance(s, str) and "=" in s:
            k, v = s.split("=", 1)
            out[k] = v
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("spec")
    ap.add_argument("--devices", help="the exact set of device names expected, comma-separated")
    ap.add_argument("--host-socket", help="the socket's path on the host")
    ap.add_argument("--schema", help="directory of the CDI project's schema.json and defs.json")
    args = ap.parse_args()

    with open(args.spec, encoding="utf-8") as f:
        spec = json.load(f)
    if args.schema:
        check_schema(spec, args.schema)
    check_keys("spec", spec, SPEC_KEYS, ("cdiVersion", "kind", "devices"))
    version = spec.get("cdiVersion", "")
    if version not in ACCEPTED:
        bad(f"cdiVersion {version!r}: Debian 12's podman accepts only {', '.join(ACCEPTED)}")
        version = "0.0.0"
    kind = spec.get("kind", "")
    vendor, _, cls = kind.partition("/")
    if not VENDOR.match(vendor) or not CLASS.match(cls) or "/" in cls:
        bad(f"kind {kind!r} is not VENDOR/CLASS")

    top = check_edits("spec.containerEdits", spec.get("containerEdits", {}), version)
    top_env = env_map(top)
    names = []
    devices = spec.get("devices")
    if not isinstance(devices, list) or not devices:
        bad("devices: not a non-empty list")
        devices = []
    for i, d in enumerate(devices):
        w = f"devices[{i}]"
        if not check_keys(w, d, DEVICE_KEYS, ("name", "containerEdits")):
            continue
        name = d.get("name", "")
        names.append(name)
        if not isinstance(name, str) or not DEVICE_NAME.match(name):
            bad(f"{w}: {name!r} is not a CDI device name")
        elif not name[0].isalpha() and vtuple(version) < (0, 5, 0):
            bad(f"{w}: {name!r} starts with a digit, which needs CDI 0.5.0 (declared {version})")
        e = d.get("containerEdits", {})
        if not e or not any(e.get(k) for k in EDITS_KEYS if isinstance(e, dict)):
            bad(f"{w} ({name}): empty container edits (CDI refuses the device)")
        check_edits(f"{w}.containerEdits", e, version)
        env = env_map(e)
        if name == "daxpool:any":
            if "DAXPOOL_SLICE" in env:
                bad(f"{w}: the socket-only device sets DAXPOOL_SLICE")
        elif env.get("DAXPOOL_SLICE") != name:
            bad(f"{w}: DAXPOOL_SLICE={env.get('DAXPOOL_SLICE')!r}, expected {name!r}")
    if len(set(names)) != len(names):
        bad(f"device names repeat: {names}")
    if "daxpool:any" not in names:
        bad("no device daxpool:any")
    if args.devices is not None:
        want = set(x for x in args.devices.split(",") if x)
        if set(names) != want:
            bad(f"devices {sorted(names)}, expected {sorted(want)}")

    # The socket: mounted once, at the path DAXPOOL_SOCKET names.
    sock = top_env.get("DAXPOOL_SOCKET")
    mounts = [m for m in top.get("mounts", []) if isinstance(m, dict)]
    if not sock:
        bad("the spec's containerEdits set no DAXPOOL_SOCKET")
    if [m.get("containerPath") for m in mounts] != [sock]:
        bad(f"mounts {mounts}: expected exactly the socket at {sock}")
    elif args.host_socket and mounts[0].get("hostPath") != args.host_socket:
        bad(f"hostPath {mounts[0].get('hostPath')!r}, expected {args.host_socket!r}")
    elif "bind" not in mounts[0].get("options", []) and "rbind" not in mounts[0].get("options", []):
        bad("the socket's mount is not a bind mount")

    for msg in findings:
        print(f"cdi-check: {args.spec}: {msg}", file=sys.stderr)
    if not findings:
        print(f"cdi-check: {args.spec}: CDI {version}, kind {kind}, {len(names)} devices: ok")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""merge-json FRAGMENT TARGET MODE [OWNER]: merge ec2-executor's JSON fragment into a
file the AMI may already have (/etc/docker/daemon.json, ~/.docker/config.json).

Objects merge key by key, lists keep the fragment's entries first and then the file's
others, and any other value is the fragment's. The file is rewritten (atomically, with
MODE and OWNER) only when the merge changes it. Prints "changed" or "unchanged", so the
caller restarts Docker only when needed. A target that is not valid JSON is an error:
Docker would not start with it either."""
import json, os, shutil, sys, tempfile


def merge(dst, src):
    if isinstance(dst, dict) and isinstance(src, dict):
        out = dict(dst)
        for k, v in src.items():
            out[k] = merge(dst[k], v) if k in dst else v
        return out
    if isinstance(dst, list) and isinstance(src, list):
        return list(src) + [x for x in dst if x not in src]
    return src


def main(fragment, target, mode, owner=None):
    with open(fragment) as f:
        src = json.load(f)
    try:
        with open(target) as f:
            old = json.load(f)
    except FileNotFoundError:
        old = None
    except ValueError as e:
        sys.exit("merge-json: %s is not valid JSON: %s" % (target, e))
    new = merge(old if old is not None else {}, src)
    if new == old:
        print("unchanged")
        return
    d = os.path.dirname(target)
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".merge-json-")
    with os.fdopen(fd, "w") as f:
        json.dump(new, f, indent=2, sort_keys=True)
        f.write("\n")
    os.chmod(tmp, int(mode, 8))
    if owner:
        user, _, group = owner.partition(":")
        shutil.chown(tmp, user, group or None)
        shutil.chown(d, user, group or None)
    os.replace(tmp, target)
    print("changed")


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    main(*sys.argv[1:])

#!/usr/bin/env python3
"""Lists a tar archive with Python's own tarfile (an independent reader), strictly.

  tar_list.py ARCHIVE   prints [{"name", "type", "mode", "uid", "gid", "uname", "size", "mtime",
                        "data" (base64)}] for every member; fails on any header error
"""
import base64
import json
import sys
import tarfile

members = []
# errorlevel 2: any problem with a header is an error, not a warning.
with tarfile.open(sys.argv[1], mode="r:", errorlevel=2, ignore_zeros=False) as archive:
    for member in archive:
        data = archive.extractfile(member).read() if member.isfile() else b""
        members.append({
            "name": member.name, "type": member.type.decode(), "mode": member.mode, "uid": member.uid, "gid": member.gid,
            "uname": member.uname, "size": member.size, "mtime": member.mtime, "data": base64.b64encode(data).decode(),
        })
print(json.dumps(members))

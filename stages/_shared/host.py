"""The stage side of the stage host (tools/host.py): a stage script hands itself to the host.

Only the standard library: a stage calls `delegate` before it imports anything else.
"""

from __future__ import annotations

import array
import json
import os
import socket
import struct
import sys

ENV = "DEAL_STAGE_HOST"
PID_ENV = "DEAL_STAGE_HOST_PID"  # the host's pid: a stage that cannot reach it tells a dead host from none


def address(name: str) -> str:
    """$DEAL_STAGE_HOST as a socket address: `@name` is in Linux's abstract namespace (no file to leave
    behind: it goes with the host, however the host dies)."""
    return "\0" + name[1:] if name.startswith("@") else name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dvc_above() -> bool:
    """A live `dvc` process started this one (its parent, or the shell's parent): a stage of a DVC that
    outlived the host on purpose (a `dvc queue start` worker), not of one the host took along."""
    pid = os.getppid()
    for _ in range(3):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                words = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if any(os.path.basename(w) == b"dvc" for w in words[:4]):  # dvc, python .../dvc, python -m dvc
            return True
        if pid <= 1:
            return False
        pid = parent
    return False


def delegate(script: str) -> None:
    """Run `script` in the host named by $DEAL_STAGE_HOST and exit with its status.

    Returns (and the caller runs the script itself) when there is no host, or one cannot be reached
    that is not known to be dead, or inside the host's own child. A stage whose host died
    ($DEAL_STAGE_HOST_PID gone: a SIGKILLed `make repro`) stops instead: nobody would stop it.
    """
    path = os.environ.get(ENV)
    if not path or os.environ.get("DEAL_STAGE_HOST_CHILD"):
        return
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(address(path))
    except OSError:
        host = os.environ.get(PID_ENV, "")
        if host.isdigit() and not _alive(int(host)) and not _dvc_above():
            sys.exit(f"tools/host.py: the stage host (pid {host}) that started this command is gone; not running "
                     f"{os.path.relpath(script)} without it (run `make repro` again)")
        return
    request = json.dumps(
        {"script": os.path.abspath(script), "argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}
    ).encode()
    fds = array.array("i", [0, 1, 2])
    gone = "tools/host.py: the stage host stopped or died before the stage finished"
    try:
        conn.sendmsg([struct.pack("!I", len(request)), request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        reply = b""
        while len(reply) < 4:
            chunk = conn.recv(4 - len(reply))
            if not chunk:
                sys.exit(gone)
            reply += chunk
    except OSError:  # it hung up first (it serves its own user's stages only)
        sys.exit(gone)
    sys.exit(struct.unpack("!i", reply)[0])

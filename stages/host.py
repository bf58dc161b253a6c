"""A fork server that keeps torch imported for the pipeline's stage scripts.

Importing torch and torchvision costs about 4 s on this 2-core machine, and a
7-round, 4-method pipeline runs ~90 stages that need them: 6 of the 10
minutes a default `dvc repro` may take. The host imports them once; each
stage script then asks it to fork a child that runs the script with the
caller's argv, working directory, environment and standard streams (passed
as file descriptors), and exits with the child's status. Without a host
(plain `dvc repro`) the scripts run as usual, only slower to start.

    python stages/host.py dvc repro        # run a command with a host beside it

The child is a fresh fork of a process that has imported modules but run no
torch op (no thread pools yet), so it behaves as a newly started script.
"""

from __future__ import annotations

import array
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import traceback

ENV = "DEAL_STAGE_HOST"
# What stage scripts import, so a forked stage starts with it loaded: torch
# (~4 s), matplotlib for the figures of select/analyze/report (~0.8 s).
PRELOAD = ("torch", "torchvision", "deal.models", "deal.training", "deal.data.transforms", "deal.data.memory",
           "deal.acquisition.runner", "deal.figures", "deal.plots", "matplotlib.figure",
           "matplotlib.backends.backend_agg", "matplotlib.pyplot", "yaml")


def delegate(script: str) -> None:
    """Run `script` in the host named by $DEAL_STAGE_HOST and exit with its status.

    Returns (and the caller runs the script itself) when there is no host or
    it cannot be reached, or inside the host's own child.
    """
    path = os.environ.get(ENV)
    if not path or os.environ.get("DEAL_STAGE_HOST_CHILD"):
        return
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
    except OSError:
        return
    request = json.dumps(
        {"script": os.path.abspath(script), "argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}
    ).encode()
    fds = array.array("i", [0, 1, 2])
    conn.sendmsg([struct.pack("!I", len(request)), request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
    reply = b""
    while len(reply) < 4:
        chunk = conn.recv(4 - len(reply))
        if not chunk:
            sys.exit("stages/host.py: the stage host died while running the stage; rerun without it")
        reply += chunk
    sys.exit(struct.unpack("!i", reply)[0])


def _recv_request(conn: socket.socket) -> tuple[dict, list[int]]:
    head, ancillary, _, _ = conn.recvmsg(4, socket.CMSG_SPACE(3 * array.array("i").itemsize))
    fds = array.array("i")
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    size = struct.unpack("!I", head)[0]
    body = b""
    while len(body) < size:
        body += conn.recv(size - len(body))
    return json.loads(body), list(fds)


def _run_child(request: dict, fds: list[int]) -> None:
    """In the forked child: become the stage script, never return."""
    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", closefd=False, buffering=1)
        sys.stderr = open(2, "w", closefd=False, buffering=1)
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["DEAL_STAGE_HOST_CHILD"] = "1"
        os.chdir(request["cwd"])
        sys.argv = [request["script"], *request["argv"]]
        sys.path[0] = os.path.dirname(request["script"])
        import runpy

        runpy.run_path(request["script"], run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _serve_one(conn: socket.socket) -> None:
    with conn:
        request, fds = _recv_request(conn)
        pid = os.fork()
        if pid == 0:
            conn.close()
            _run_child(request, fds)
        for fd in fds:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        conn.sendall(struct.pack("!i", code if code >= 0 else 128 - code))


def serve(listener: socket.socket) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:  # closed: the wrapped command is done
            return
        threading.Thread(target=_serve_one, args=(conn,), daemon=True).start()


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[-3], file=sys.stderr)
        return 2
    import importlib

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import matplotlib

    matplotlib.use("Agg")  # no display: what every stage's figures use anyway
    for name in PRELOAD:
        importlib.import_module(name)
    folder = tempfile.mkdtemp(prefix="deal-host-")
    path = os.path.join(folder, "host.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    threading.Thread(target=serve, args=(listener,), daemon=True).start()
    try:
        return subprocess.call(sys.argv[1:], env={**os.environ, ENV: path})
    finally:
        listener.close()
        os.unlink(path)
        os.rmdir(folder)


if __name__ == "__main__":
    sys.exit(main())

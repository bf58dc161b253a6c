"""A fork server that keeps torch imported for the pipeline's stage scripts.

Importing torch and torchvision is the largest fixed cost of a stage (seconds
on 2 cores; `bench/round.py` measures it per stage kind, docs/performance.md),
and a pipeline runs one stage per (seed, method, round) and kind, most of
them needing torch. The host imports them once; each
stage script then asks it to fork a child that runs the script with the
caller's argv, working directory, environment and standard streams (passed
as file descriptors), and exits with the child's status. Without a host
(plain `dvc repro`) the scripts run as usual, only slower to start.

    python tools/host.py dvc repro        # run a command with a host beside it

The child is a fresh fork of a process that has imported modules but run no
torch op (no thread pools yet), so it behaves as a newly started script.
It never outlives its caller: the host SIGKILLs it when the calling script
dies (as when dvc is killed), when the wrapped command ends and when the host
is sent SIGTERM; the kernel SIGKILLs it when the host itself dies, and the
wrapped command too (PR_SET_PDEATHSIG), so a killed `make repro` leaves no
DVC starting stages. The socket is in Linux's abstract namespace (nothing
left on disk by a killed host) and serves this user's processes only. Before
`dvc repro|exp ...`, and after one that failed, the host repairs what killed
DVC processes leave (tools/repair.py: a truncated dvc.lock, a killed
`dvc exp run`'s detached HEAD and staged repro.dat), one line each.
"""

from __future__ import annotations

import array
import json
import os
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import traceback

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(TOOLS))  # the repository: the stage side of the host is stages/_shared/host.py
from stages._shared.host import ENV, PID_ENV, address  # noqa: E402

PRELOAD_ENV = "DEAL_STAGE_HOST_PRELOAD"
# Third-party modules the stage scripts import, so a forked stage starts with
# them loaded (torch's import is the largest fixed cost of a stage: bench/round.py).
# Never the project's own modules (deal.*, stages/*.py): a forked stage would run
# the code the host loaded while DVC records the hash of the code on disk, so a
# library edit during a run would go unseen. Each stage imports those afresh.
PRELOAD = ("torch", "torchvision", "torchvision.transforms.v2", "matplotlib.figure",
           "matplotlib.backends.backend_agg", "matplotlib.pyplot", "numpy", "yaml", "tqdm.auto")
# top-level names of the project's modules: the library, the stage scripts' shared code and the
# tools the host imports (the params check, the repairs)
PROJECT_MODULES = ("deal", "stages") + tuple(name[:-3] for name in os.listdir(TOOLS) if name.endswith(".py"))
USAGE = """usage: python tools/host.py COMMAND [ARG ...]

Run COMMAND beside a stage host: a process that imports torch once and forks
itself to run each stage script that COMMAND starts (found via $DEAL_STAGE_HOST),
sparing every stage the import. Exits with COMMAND's status.

    python tools/host.py dvc repro
"""
PR_SET_PDEATHSIG = 1
_die_with_parent = None  # set by main(), before the first fork
_lock = threading.Condition()  # guards the two below
_workers: dict[int, int] = {}  # pid -> pidfd of every worker not yet reaped
_closing = False  # the wrapped command is done: fork no more workers


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


def _run_child(request: dict, fds: list[int], host: int) -> None:
    """In the forked child: become the stage script, never return."""
    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        # Die with the host: a SIGKILLed host cannot stop its workers. (The kernel
        # sends this when the forking thread exits; it waits for us, see _serve_one.)
        _die_with_parent()
        if os.getppid() != host:  # the host died before prctl: nobody would stop us
            os._exit(1)
        # What a fresh interpreter has, not the host's handlers (see main)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
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


def _kill(pidfd: int) -> None:
    # By pidfd, not pid: once the worker is reaped its pid may name another process
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass  # exited already


def _watch(conn: socket.socket, pidfd: int) -> None:
    """Return when the worker exits; SIGKILL it first if its client hangs up.

    The client sends nothing after its request, so the connection turns
    readable only when the client dies (dvc killed, Ctrl-C): then its worker
    must not go on writing the stage's outputs.
    """
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(conn, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == pidfd:
                return
            try:
                gone = not conn.recv(1)
            except OSError:
                gone = True
            if gone:
                _kill(pidfd)
                poller.unregister(conn)


def _serve_one(conn: socket.socket) -> None:
    with conn:
        # an abstract socket has no file permissions: serve this user's processes only
        _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        if uid != os.getuid():
            return
        request, fds = _recv_request(conn)
        host = os.getpid()
        with _lock:
            if _closing:  # the wrapped command is done: its client gets EOF
                for fd in fds:
                    os.close(fd)
                return
            pid = os.fork()
            if pid == 0:
                conn.close()
                _run_child(request, fds, host)
            pidfd = os.pidfd_open(pid)  # before waitpid, so the pid is still ours
            _workers[pid] = pidfd
        # This thread must live until the worker is reaped: its exit sends the
        # worker PR_SET_PDEATHSIG.
        try:
            for fd in fds:
                os.close(fd)
            _watch(conn, pidfd)
        finally:
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            try:
                conn.sendall(struct.pack("!i", code if code >= 0 else 128 - code))
            except OSError:
                pass  # the client is gone
            finally:
                with _lock:
                    del _workers[pid]
                    os.close(pidfd)
                    _lock.notify_all()


def _stop_workers(timeout: float = 30.0) -> int:
    """Fork no more workers, SIGKILL the running ones and wait until they are
    reaped; return how many were running."""
    global _closing
    with _lock:
        _closing = True
        running = len(_workers)
        for pidfd in _workers.values():
            _kill(pidfd)
        _lock.wait_for(lambda: not _workers, timeout)
    return running


def serve(listener: socket.socket) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:  # closed: the wrapped command is done
            return
        threading.Thread(target=_serve_one, args=(conn,), daemon=True).start()


def _dvc_subcommand(command: list[str]) -> tuple[list[str], str]:
    """(the words from DVC's subcommand on, the folder it runs in) of a `dvc ...` command line;
    ([], "") for any other command. DVC's global options (-v, -q, --cd DIR) come before it."""
    if not command or os.path.basename(command[0]) != "dvc":
        return [], ""
    folder, i = ".", 1
    while i < len(command) and command[i].startswith("-"):
        if command[i] == "--cd" and i + 1 < len(command):
            folder, i = command[i + 1], i + 1
        i += 1
    return command[i:], folder


def _check_params(command: list[str]) -> list[str]:
    """The problems of params.yaml (with `exp run -S` values) when `command` is
    `dvc repro` or `dvc exp run`; [] for any other command."""
    args, folder = _dvc_subcommand(command)
    if not (args[:1] == ["repro"] or args[:2] == ["exp", "run"]):
        return []
    sys.path.insert(0, TOOLS)
    from check_params import overrides, problems

    here = os.getcwd()
    try:
        os.chdir(folder)  # params.yaml and relative data paths, as DVC will see them
        return problems(overrides(args))
    except OSError as exc:
        return [f"{folder}: {exc.strerror}; run from the repository root"]
    finally:
        os.chdir(here)


def forget_project_modules() -> None:
    """Drop the project's modules the host imported (the params check): each forked
    stage then imports them from disk, as DVC hashed them."""
    for name in list(sys.modules):
        if name.split(".")[0] in PROJECT_MODULES:
            del sys.modules[name]


def _sweep(command: list[str]) -> None:
    """After `dvc repro|exp run`: what killed stage writers left (a stage DVC then
    served from its run-cache never ran the sweep of its own)."""
    args, folder = _dvc_subcommand(command)
    if args[:1] in (["repro"], ["exp"]):
        try:
            from stages._shared.files import sweep_stale

            sweep_stale(folder)
        except Exception as exc:  # never mask the command's own status
            print(f"tools/host.py: could not remove stale temporaries ({exc})", file=sys.stderr)


def _repair(command: list[str], after: bool = False) -> None:
    """Before `dvc repro|exp ...`, and after one that failed: a lock a killed DVC cut short, and what a
    killed `dvc exp run` left in git (tools/repair.py), each repaired with one line."""
    args, folder = _dvc_subcommand(command)
    if args[:1] not in (["repro"], ["exp"]):
        return
    try:
        sys.path.insert(0, TOOLS)
        from repair import broken_locks, recover_experiment, restore_lock

        for path, why in broken_locks(folder):
            print(f"tools/host.py: {os.path.relpath(path)}: {why} (DVC was killed while it wrote it); "
                  f"{restore_lock(path, folder)}", file=sys.stderr)
        if args[:1] == ["exp"]:
            done = recover_experiment(folder)
            if done:
                print(f"tools/host.py: a killed `dvc exp run` left git as it was mid-run: {'; '.join(done)}; its params "
                      "stay in the workspace (git checkout params.yaml drops them)", file=sys.stderr)
    except Exception as exc:  # never mask the command's own status or error
        print(f"tools/host.py: could not check what killed DVC runs left ({exc})", file=sys.stderr)


class _Terminated(Exception):
    pass


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        asked = len(sys.argv) > 1
        print(USAGE, end="", file=sys.stdout if asked else sys.stderr)
        return 0 if asked else 2
    problems = _check_params(sys.argv[1:])
    if problems:  # before DVC resolves dvc.yaml: an unsafe id never reaches a path DVC deletes
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        return 1
    _repair(sys.argv[1:])
    import ctypes
    import importlib

    global _die_with_parent
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4

    def _die_with_parent():
        if prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")

        # $DEAL_STAGE_HOST_PRELOAD (comma-separated, may be empty) replaces PRELOAD:
    # a host that starts at once, for stages that need none of it (its tests)
    preload = PRELOAD if PRELOAD_ENV not in os.environ else tuple(filter(None, os.environ[PRELOAD_ENV].split(",")))
    if any(name.startswith("matplotlib") for name in preload):
        import matplotlib

        matplotlib.use("Agg")  # no display: what every stage's figures use anyway
    for name in preload:
        if name.split(".")[0] in PROJECT_MODULES:
            raise SystemExit(f"tools/host.py: {PRELOAD_ENV} names {name!r}, a module of this project; "
                             "preload third-party modules only")
        importlib.import_module(name)
    forget_project_modules()

    terminated = waiting = False

    def on_sigterm(signum, frame):
        nonlocal terminated, waiting
        terminated = True
        if waiting:  # raise only out of command.wait(), never from the cleanup
            waiting = False
            raise _Terminated

    signal.signal(signal.SIGTERM, on_sigterm)
    # Ctrl-C reaches the command and its stages too (one foreground group):
    # wait for the command to stop, as a shell does, rather than SIGKILLing dvc
    # mid-way; its exit stops the workers below.
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    # in the abstract namespace: nothing on disk that a SIGKILLed host would leave behind
    name = f"@deal-host-{os.getpid()}-{secrets.token_hex(8)}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address(name))
    listener.listen(8)
    host = os.getpid()

    def die_with_host():
        # In the command's process, between fork and exec: a SIGKILLed host (no cleanup of ours runs)
        # takes DVC along, so DVC starts no stage after `make repro` has returned.
        _die_with_parent()
        if os.getppid() != host:  # the host died before prctl
            os._exit(1)

    command = None
    try:
        try:
            command = subprocess.Popen(sys.argv[1:], env={**os.environ, ENV: name, PID_ENV: str(host)},
                                       preexec_fn=die_with_host)
        except OSError as exc:
            print(f"tools/host.py: cannot run {sys.argv[1]!r} ({exc.strerror}); is the venv's bin on PATH "
                  "(make repro sets it)?", file=sys.stderr)
            return 127
        # accepting from here on (after the fork above, which then ran in a process of one thread): a
        # stage that connects earlier waits in the listen queue
        threading.Thread(target=serve, args=(listener,), daemon=True).start()
        waiting = True
        if not terminated:
            command.wait()
        waiting = False
    except _Terminated:
        pass
    finally:
        waiting = False
        if terminated and command is not None and command.poll() is None:
            command.terminate()
        # Whatever ended the command (its own exit, a kill, SIGTERM to us), no
        # stage may go on without it: stages of a killed dvc still run here.
        stopped = _stop_workers()
        if command is not None:
            try:
                command.wait(timeout=10)
            except subprocess.TimeoutExpired:
                command.kill()
                command.wait()
        _sweep(sys.argv[1:])
        if command is not None and command.returncode != 0:
            _repair(sys.argv[1:], after=True)
        listener.close()
    if stopped:
        print(f"tools/host.py: stopped {stopped} stage(s) still running", file=sys.stderr)
    if terminated:
        return 128 + signal.SIGTERM
    code = command.returncode
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())

"""A DVC remote that speaks S3 (dvc-s3) to moto's S3 server on localhost: push, a fresh clone pulls
and has nothing to run; a push killed mid-way and rerun leaves every object in the bucket.

The server runs in this process (moto.server.ThreadedMotoServer on a free port of 127.0.0.1) for the
module and stops after it; dvc talks to it over HTTP as to any S3 endpoint (`endpointurl`). moto takes
any credentials, botocore wants some: dummy ones, through `dvc remote modify --local` (kept out of
git, as a team keeps its keys) or the AWS_* variables. Nothing leaves the machine.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from moto.moto_server.threaded_moto_server import (  # moto 5.2 (pinned): the server's own parts
    DomainDispatcherApplication, MotoRequestHandler, ThreadedMotoServer, create_backend_app, make_server)

from pipeline_utils import BIN, clone_run, env, repro, run

pytestmark = pytest.mark.slow  # the real dvc push / pull of a real run: `make test-fast` leaves them out

KEY, SECRET = "deal-test-key", "deal-test-secret"  # moto accepts any; dvc must send some
REGION = "us-east-1"


class ThrottledMotoServer(ThreadedMotoServer):
    """moto's threaded server whose PUTs each wait `delay` seconds first: a push of a few hundred
    objects then takes long enough to be killed between two of them, whatever the machine's speed."""

    delay = 0.0

    def _server_entry(self) -> None:  # ThreadedMotoServer's, with the app wrapped
        app = DomainDispatcherApplication(create_backend_app)

        def throttled(environ, start_response):
            if self.delay and environ["REQUEST_METHOD"] == "PUT":
                time.sleep(self.delay)
            return app(environ, start_response)

        self._server = make_server(self._ip_address, self._port, throttled, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """The S3 endpoint: url, a boto3 client on it, the server (its `delay`)."""
    with pytest.MonkeyPatch.context() as mp:
        # no credentials, profile or proxy of whoever runs the tests, and no EC2 metadata look-up
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                     "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(name, raising=False)
        absent = tmp_path_factory.mktemp("aws") / "absent"
        mp.setenv("AWS_CONFIG_FILE", str(absent))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(absent))
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("no_proxy", "127.0.0.1,localhost")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        server = ThrottledMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            url = f"http://{host}:{port}"
            client = boto3.client("s3", endpoint_url=url, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                                  region_name=REGION)
            yield SimpleNamespace(url=url, client=client, server=server)
        finally:
            server.stop()


def _keys(client, bucket: str) -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def _dvc(root: Path, *args: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([str(BIN / "dvc"), *args], cwd=root, env={**env(), **(extra_env or {})},
                          capture_output=True, text=True)
    assert done.returncode == 0, f"dvc {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _add_s3_remote(root: Path, name: str, bucket: str, url: str, default: bool = False) -> None:
    """The remote as a team commits it: bucket and endpoint in .dvc/config, no credentials."""
    _dvc(root, "remote", "add", *(["-d"] if default else []), name, f"s3://{bucket}/cache")
    _dvc(root, "remote", "modify", name, "endpointurl", url)
    _dvc(root, "remote", "modify", name, "region", REGION)


def _credentials(root: Path, name: str) -> None:
    """This machine's keys: .dvc/config.local, which git ignores."""
    _dvc(root, "remote", "modify", "--local", name, "access_key_id", KEY)
    _dvc(root, "remote", "modify", "--local", name, "secret_access_key", SECRET)


def _cache_objects(root: Path) -> set[str]:
    """The objects of a DVC cache, named as on the remote under its `cache/` prefix."""
    files = root / ".dvc" / "cache" / "files"
    return {"cache/files/" + p.relative_to(files).as_posix() for p in files.rglob("*") if p.is_file()}


def test_push_to_s3_then_a_fresh_clone_pulls_and_has_nothing_to_run(project, s3, tmp_path):
    root, _ = project
    source = clone_run(root, tmp_path / "source")  # the shared run stays as it is
    s3.client.create_bucket(Bucket="team")
    _add_s3_remote(source, "team", "team", s3.url, default=True)
    _credentials(source, "team")
    run(["git", "add", ".dvc/config"], source)
    run(["git", "commit", "-qm", "team remote"], source)
    assert "secret_access_key" not in run(["git", "show", "HEAD:.dvc/config"], source).stdout
    assert run(["git", "check-ignore", ".dvc/config.local"], source).stdout.strip() == ".dvc/config.local"

    _dvc(source, "push")
    pushed = _keys(s3.client, "team")
    assert pushed and all(k.startswith("cache/files/md5/") for k in pushed)
    assert "in sync" in _dvc(source, "status", "--cloud").stdout

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(source), str(clone)], tmp_path)
    assert not (clone / ".dvc" / "config.local").exists()  # the keys did not travel with git
    _credentials(clone, "team")
    _dvc(clone, "pull")
    # the clone's cache holds exactly what the bucket holds: everything came over S3
    assert _cache_objects(clone) == pushed
    assert "up to date" in _dvc(clone, "status").stdout.lower()
    assert repro(clone) == []
    for name in ("curves.csv", "paired.csv", "summary.json"):
        assert (clone / "metrics" / name).read_bytes() == (source / "metrics" / name).read_bytes()
    assert (clone / "runs/seed1/deal_de/r1/model.pt").read_bytes() == (source / "runs/seed1/deal_de/r1/model.pt").read_bytes()


def test_a_push_killed_mid_way_and_rerun_leaves_the_remote_complete(project, s3, tmp_path):
    root, _ = project
    source = clone_run(root, tmp_path / "source")
    for bucket in ("whole", "interrupted"):
        s3.client.create_bucket(Bucket=bucket)
    _add_s3_remote(source, "whole", "whole", s3.url)
    _add_s3_remote(source, "team", "interrupted", s3.url, default=True)
    run(["git", "add", ".dvc/config"], source)
    run(["git", "commit", "-qm", "remotes"], source)
    keys = {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}  # the other way to give them

    _dvc(source, "push", "-r", "whole", extra_env=keys)  # one push that ran to its end: what complete is
    whole = _keys(s3.client, "whole")
    assert len(whole) > 50

    s3.server.delay = 0.1  # ~0.1 s a PUT: the push below would take len(whole) / 10 seconds
    try:
        push = subprocess.Popen([str(BIN / "dvc"), "push", "-j", "1"], cwd=source, env={**env(), **keys},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 300
        while len(_keys(s3.client, "interrupted")) < 3 and push.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(push.pid, signal.SIGKILL)  # dvc and anything it started
        push.wait()
    finally:
        s3.server.delay = 0.0
    # a PUT the server had read in full when dvc died still lands (as on S3): wait until none is left
    partial, previous = _keys(s3.client, "interrupted"), None
    while partial != previous:
        time.sleep(0.5)
        partial, previous = _keys(s3.client, "interrupted"), partial
    assert 3 <= len(partial) < len(whole) and partial < whole, (len(partial), len(whole))
    missing = json.loads(_dvc(source, "status", "--cloud", "--json", extra_env=keys).stdout)
    assert missing and set(missing.values()) <= {"new"}, missing  # new: in the cache, not on the remote

    done = _dvc(source, "push", extra_env=keys)  # uploads only what is missing
    assert f"{len(whole) - len(partial)} files pushed" in done.stdout, (done.stdout, len(whole), len(partial))
    assert _keys(s3.client, "interrupted") == whole
    # every object holds its bytes: none was left truncated by the kill
    cache = source / ".dvc" / "cache"
    for key in sorted(whole):
        body = s3.client.get_object(Bucket="interrupted", Key=key)["Body"].read()
        assert body == (cache / key.removeprefix("cache/")).read_bytes(), key
    assert "in sync" in _dvc(source, "status", "--cloud", extra_env=keys).stdout

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(source), str(clone)], tmp_path)
    _dvc(clone, "pull", extra_env=keys)
    assert "up to date" in _dvc(clone, "status").stdout.lower()
    assert "in sync" in _dvc(clone, "status", "--cloud", extra_env=keys).stdout
    assert (clone / "metrics" / "curves.csv").read_bytes() == (source / "metrics" / "curves.csv").read_bytes()

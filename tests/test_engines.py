"""The engine seam without a cluster: Ray stays optional (never imported unless chosen, a clear error
when missing); the real two-node tests are in test_engine_ray.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from repbench.cli import main
from repbench.engines import make_engine
from repbench.engines.worker import BackboneRequest
from repbench.errors import RepbenchError

SRC = Path(__file__).resolve().parents[1] / "src"


def test_importing_repbench_and_its_commands_does_not_import_ray(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "a", "text": "one two"}\n{"_id": "b", "text": "three"}\n')
    code = ("import sys, repbench, repbench.cli, repbench.engines, repbench.commands.encode, "
            "repbench.commands.evaluate\n"
            f"rc = repbench.cli.main(['encode', {str(corpus)!r}, '--backbone', 'tiny-ar', '--out', "
            f"{str(tmp_path / 'o')!r}, '--device', 'cpu'])\n"
            "assert rc == 0, rc\n"
            "assert 'ray' not in sys.modules, 'ray was imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                               "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "o" / "manifest.json").exists()


def test_ray_engine_without_ray_is_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(RepbenchError, match=r"pip install 'repbench\[ray\]'"):
        make_engine("ray").workers(BackboneRequest("tiny-ar", device="cpu"))
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "a", "text": "one"}\n')
    rc = main(["encode", str(corpus), "--backbone", "tiny-ar", "--out", str(tmp_path / "o"), "--engine", "ray"])
    assert rc == 2
    assert "needs Ray" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written before the engine is up


@pytest.mark.parametrize("bad", [["--ray-workers", "0"], ["--ray-cpus-per-worker", "0"]])
def test_engine_options_are_checked(bad, tmp_path, capsys):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "a", "text": "one"}\n')
    rc = main(["encode", str(corpus), "--backbone", "tiny-ar", "--out", str(tmp_path / "o"), "--engine", "ray", *bad])
    assert rc == 2
    assert "must be a positive integer" in capsys.readouterr().err


@pytest.mark.parametrize("address,message", [("127.0.0.1:{port}", "no Ray cluster answers at 127.0.0.1:"),
                                             ("nonsense", "must be auto or HOST:PORT")])
def test_a_wrong_ray_address_fails_fast_with_a_clear_error(address, message, tmp_path, capsys):
    pytest.importorskip("ray", reason="the Ray engine is optional")
    from repbench.engines.cluster import free_ports

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "a", "text": "one"}\n')
    addr = address.format(port=free_ports(1)[0])  # nothing listens there
    rc = main(["encode", str(corpus), "--backbone", "tiny-ar", "--out", str(tmp_path / "o"), "--engine", "ray",
               "--ray-address", addr])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_loopback_only_reads_the_interfaces():
    from repbench.engines.netns import loopback_only

    assert loopback_only(lambda: [(1, "lo")])
    assert not loopback_only(lambda: [(1, "lo"), (2, "eth0")])

    def fails():
        raise OSError("no netlink")

    assert not loopback_only(fails)


@pytest.mark.parametrize("reply", [b"", b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
                                   b"-ERR unknown command\r\n"], ids=["silent", "http", "redis-like"])
def test_a_port_that_is_not_ray_fails_within_10_s(reply, tmp_path, capsys):
    """Something listens but is no Ray head (a web server, a database, a silent port): ray.init used to
    wait > 150 s there. The HTTP/2 probe of the GCS (gRPC) tells within seconds."""
    pytest.importorskip("ray", reason="the Ray engine is optional")
    import socket
    import threading
    import time

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        held = []
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)
            if reply:
                conn.sendall(reply)
        for conn in held:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "a", "text": "one"}\n')
    try:
        t0 = time.monotonic()
        rc = main(["encode", str(corpus), "--backbone", "tiny-ar", "--out", str(tmp_path / "o"), "--engine", "ray",
                   "--ray-address", f"127.0.0.1:{port}"])
        elapsed = time.monotonic() - t0
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
    err = capsys.readouterr().err
    assert rc == 2, err
    assert elapsed < 10, elapsed
    assert f"127.0.0.1:{port}" in err and "Ray cluster head" in err, err
    assert not (tmp_path / "o").exists()


def test_the_driver_sees_the_workers_mask_token_and_family():
    """`evaluate --engine ray` with a diffusion backbone was refused before it started: the driver's stand-in
    for the workers' backbone had no mask token. BackboneInfo carries it (and the family)."""
    from repbench.engines.worker import BackboneInfo

    bb = BackboneRequest("tiny-diffusion", device="cpu").load()
    info = BackboneInfo.of(bb)
    assert bb.mask_token_id is not None and info.mask_token_id == bb.mask_token_id
    assert info.family == bb.spec.family == "diffusion"
    assert BackboneInfo.of(BackboneRequest("tiny-ar", device="cpu").load()).mask_token_id is None

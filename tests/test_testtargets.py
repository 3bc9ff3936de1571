"""Fetching and reading NLB's released test targets, against a local HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from nlbsuite import testtargets
from nlbsuite.cli import build_parser, main
from nlbsuite.errors import UserError
from nlbsuite.testtargets import (
    FILE_NAME,
    TestTargets,
    check_group,
    expected_shapes,
    fetch_test_targets,
    targets_path,
)

BODY = np.random.default_rng(0).bytes(300_000)
SHA = hashlib.sha256(BODY).hexdigest()


class _Server:
    """Serves BODY at /file (with Range), /norange (ignores Range), /redirect -> /file."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None, int]] = []  # (path, Range, bytes sent)
        log = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                if self.path == "/redirect":
                    log.append((self.path, rng, 0))
                    self.send_response(302)
                    self.send_header("Location", "/file")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                if rng and self.path == "/file":
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                body = BODY[start:]
                log.append((self.path, rng, len(body)))
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str = "/file") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Digest memo and data dir in the test's own folder."""
    monkeypatch.setenv("NLBSUITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NLBSUITE_DATA", str(tmp_path / "data"))


def _fetch(server: _Server, root: Path, path: str = "/file", sha: str = SHA) -> Path:
    return fetch_test_targets(root, url=server.url(path), size=len(BODY), sha256=sha)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_full_download(server: _Server, tmp_path: Path) -> None:
    path = _fetch(server, tmp_path)
    assert path == tmp_path / "nlb_test_targets" / FILE_NAME
    assert path.read_bytes() == BODY
    assert server.requests == [("/file", None, len(BODY))]
    assert sorted(p.name for p in path.parent.iterdir()) == [FILE_NAME]  # no .part left
    assert _fetch(server, tmp_path) == path  # already there: no second request
    assert len(server.requests) == 1


def test_resume_requests_only_the_remaining_bytes(server: _Server, tmp_path: Path) -> None:
    part = tmp_path / "nlb_test_targets" / (FILE_NAME + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(BODY[:123_456])
    path = _fetch(server, tmp_path)
    assert path.read_bytes() == BODY
    assert server.requests == [("/file", "bytes=123456-", len(BODY) - 123_456)]
    assert not part.exists()


def test_server_ignoring_range_restarts_from_zero(server: _Server, tmp_path: Path) -> None:
    part = tmp_path / "nlb_test_targets" / (FILE_NAME + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 1000)  # wrong bytes: kept only if the server resumed
    path = _fetch(server, tmp_path, "/norange")
    assert path.read_bytes() == BODY
    assert server.requests == [("/norange", "bytes=1000-", len(BODY))]


def test_redirect_is_followed(server: _Server, tmp_path: Path) -> None:
    assert _fetch(server, tmp_path, "/redirect").read_bytes() == BODY
    assert [r[0] for r in server.requests] == ["/redirect", "/file"]


def test_checksum_mismatch_is_refused_and_discarded(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not match") as err:
        _fetch(server, tmp_path, sha="0" * 64)
    assert "\n" not in str(err.value) and "0" * 64 in str(err.value)
    assert list((tmp_path / "nlb_test_targets").iterdir()) == []  # nothing half-written


def test_server_down_is_one_line_under_two_seconds(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/file"
    start = time.perf_counter()
    with pytest.raises(UserError) as err:
        fetch_test_targets(tmp_path, url=url, size=len(BODY), sha256=SHA)
    assert time.perf_counter() - start < 2.0
    msg = str(err.value)
    assert "\n" not in msg
    dest = tmp_path / "nlb_test_targets" / FILE_NAME
    assert FILE_NAME in msg and SHA in msg and str(dest) in msg and str(len(BODY)) in msg


def test_cli_fetch_offline_exit_2_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NLBSUITE_TEST_TARGETS_URL", f"http://127.0.0.1:{_closed_port()}/x.h5")
    build_parser()  # imports of every command, outside the timed part
    start = time.perf_counter()
    code = main(["fetch", "test-targets", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert time.perf_counter() - start < 2.0
    assert code == 2 and err.count("\n") == 1 and testtargets.SHA256 in err


def test_existing_file_with_wrong_size_or_checksum_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "nlb_test_targets" / FILE_NAME
    dest.parent.mkdir(parents=True)
    dest.write_bytes(BODY[:-1])
    with pytest.raises(UserError, match=f"{len(BODY) - 1} bytes, expected {len(BODY)}"):
        targets_path(tmp_path, size=len(BODY), sha256=SHA)
    dest.write_bytes(bytes(len(BODY)))
    with pytest.raises(UserError, match="refusing to use it"):
        targets_path(tmp_path, size=len(BODY), sha256=SHA)
    with pytest.raises(UserError, match="refusing to use it"):  # fetch does not overwrite it
        fetch_test_targets(tmp_path, url="http://127.0.0.1:9/", size=len(BODY), sha256=SHA)


def test_verification_is_remembered(
    monkeypatch: pytest.MonkeyPatch, server: _Server, tmp_path: Path
) -> None:
    from nlbsuite.nlb import cache

    path = _fetch(server, tmp_path)
    calls: list[Path] = []
    real = cache._sha256
    monkeypatch.setattr(cache, "_sha256", lambda p: calls.append(p) or real(p))
    for _ in range(3):
        assert targets_path(tmp_path, size=len(BODY), sha256=SHA) == path
    assert calls == [path]  # hashed once, then remembered
    os.utime(path, ns=(0, 0))  # a changed file is hashed again
    assert targets_path(tmp_path, size=len(BODY), sha256=SHA) == path
    assert len(calls) == 2


def test_missing_file_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="nlbsuite fetch test-targets") as err:
        targets_path(tmp_path)
    assert "\n" not in str(err.value) and testtargets.SHA256 in str(err.value)


# ----------------------------------------------------------------------------------------
# Layout
# ----------------------------------------------------------------------------------------


def _group(key: str, n_eval: int = 100, n_train: int = 100) -> dict[str, np.ndarray]:
    shapes = expected_shapes(key, n_eval, n_train)
    names = ["eval_spikes_heldout", "eval_spikes_heldin_forward", "eval_spikes_heldout_forward"]
    names += ["train_behavior", "eval_behavior"]
    return {n: np.zeros(shapes[n], np.float32) for n in names}


def test_expected_shapes_of_the_scaling_split() -> None:
    s = expected_shapes("mc_maze_small_20")
    assert s["eval_spikes_heldout"] == (100, 35, 35)
    assert s["eval_spikes_heldin_forward"] == (100, 10, 107)
    assert s["train_behavior"] == (100, 35, 2)
    assert expected_shapes("mc_maze_large")["train_behavior"] == (500, 140, 2)
    assert expected_shapes("dmfc_rsg", 7, 9)["train_behavior"] == (9, 5)
    assert expected_shapes("mc_rtt_20", 7, 9)["eval_spikes_heldout"] == (7, 30, 32)


def test_check_group_accepts_the_layout_and_names_every_problem() -> None:
    check_group("mc_maze_small", _group("mc_maze_small"))
    check_group("mc_rtt", _group("mc_rtt", 271, 1080))
    bad = _group("mc_maze_medium", n_train=250)
    del bad["eval_behavior"]
    bad["eval_rates_heldout"] = np.zeros(3)
    bad["eval_spikes_heldout"] = np.zeros((99, 140, 38))
    with pytest.raises(UserError) as err:
        check_group("mc_maze_medium", bad, "t.h5")
    msg = str(err.value)
    assert msg.startswith("t.h5 group 'mc_maze_medium': ") and "\n" not in msg
    assert "missing 'eval_behavior'" in msg and "eval_rates_heldout" not in msg
    assert "'eval_spikes_heldout' has shape (99, 140, 38), expected (100, 140, 38)" in msg
    extra = _group("mc_maze_small") | {"eval_rates_heldout": np.zeros(3)}
    assert check_group("mc_maze_small", extra, "t.h5") == [
        "t.h5 group 'mc_maze_small': unexpected 'eval_rates_heldout' (not scored)"
    ]
    area = _group("area2_bump", 20, 30)  # trial counts must agree across arrays
    area["eval_decode_mask"] = np.zeros((21, 2), bool)
    with pytest.raises(UserError, match=r"'eval_decode_mask' has shape \(21, 2\), expected \(20"):
        check_group("area2_bump", area)


def test_test_targets_reads_groups_lazily(tmp_path: Path) -> None:
    path = tmp_path / "t.h5"
    with h5py.File(path, "w") as f:
        for key in ("mc_maze_small_20", "mc_maze_small"):
            for name, arr in _group(key).items():
                f[f"{key}/{name}"] = arr
        f["mc_maze_medium/eval_spikes_heldout"] = np.zeros((100, 140, 1))
    with TestTargets(path) as t:
        assert t.keys() == ["mc_maze_medium", "mc_maze_small", "mc_maze_small_20"]
        group = t.group("mc_maze_small_20")
        assert isinstance(group, h5py.Group)  # arrays stay on disk until read
        with pytest.raises(UserError, match="group 'mc_maze_medium': missing"):
            t.group("mc_maze_medium")
        with pytest.raises(UserError, match="no group 'mc_rtt'"):
            t.group("mc_rtt")


# ----------------------------------------------------------------------------------------
# nlbsuite score SUBMISSION (no --target): the released test targets
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def released_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A stand-in released file (scaling split at 20 ms, plus mc_rtt_20) and a submission."""
    from nlbsuite.submission import write_submission, write_target
    from nlbsuite.synthetic_targets import make_case

    folder = tmp_path_factory.mktemp("released")
    targets, subs = {}, {}
    sizes = {"mc_maze_small_20": (100, 100), "mc_maze_medium_20": (250, 100), "mc_rtt_20": (20, 20)}
    for i, (key, (n_train, n_eval)) in enumerate(sizes.items()):
        targets[key], subs[key] = make_case(key, n_train, n_eval, seed=i, phase="test")
    del subs["mc_maze_medium_20"]  # a submission need not cover every group
    subs["lorenz"] = make_case("mc_maze_small_20", 10, 10)[1]  # nor only released ones
    return write_target(folder / FILE_NAME, targets), write_submission(folder / "sub.h5", subs)


@pytest.fixture
def released(
    released_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[Path, Path]:
    """The stand-in in the data dir, accepted as if it had the released checksum."""
    import shutil

    path = tmp_path / "data" / "nlb_test_targets" / FILE_NAME
    path.parent.mkdir(parents=True)
    shutil.copy(released_files[0], path)
    monkeypatch.setattr(testtargets, "SIZE", path.stat().st_size)
    monkeypatch.setattr(testtargets, "SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    return path, released_files[1]


def _score_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict, str]:
    import json

    code = main(["score", *argv, "--json"])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if code == 0 else {}), out.err


def test_score_without_target_uses_the_released_file(
    released: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, sub = released
    code, got, err = _score_json([str(sub)], capsys)
    assert code == 0
    assert list(got) == ["mc_rtt_20", "mc_maze_small_20"]
    assert "'lorenz' is not in the target file" in err
    _, explicit, _ = _score_json([str(sub), "--target", str(path)], capsys)
    assert got == explicit
    assert set(got["mc_maze_small_20"]) == {"co-bps", "vel R2", "psth R2", "fp-bps"}
    assert all(np.isfinite(v) for v in got["mc_maze_small_20"].values())


def test_score_refuses_a_released_file_with_another_checksum(
    released: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, sub = released
    with h5py.File(path, "a") as f:  # same size is not enough: the checksum differs
        f["mc_maze_small_20/eval_spikes_heldout"][0, 0, 0] += 1
    code, _, err = _score_json([str(sub)], capsys)
    assert code == 2 and err.count("\n") == 1 and "refusing to use it" in err


def test_score_without_target_and_without_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nlbsuite.submission import write_submission
    from nlbsuite.synthetic_targets import make_case

    sub = write_submission(tmp_path / "s.h5", {"mc_maze_small": make_case("mc_maze_small")[1]})
    code, _, err = _score_json([str(sub)], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "nlbsuite fetch test-targets" in err and "--target" in err

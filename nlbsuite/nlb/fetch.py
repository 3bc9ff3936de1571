"""Download an NLB dandiset through the ``dandi`` client's Python API.

Files land in ``<data dir>/<dandiset id>/...`` (the layout ``dandi download`` makes, which
:func:`~nlbsuite.nlb.prepare.find_nwb_files` reads). The download resumes and skips files
already complete (``existing="refresh"``; the client verifies digests), and afterwards
every asset's size is checked against the archive's metadata.

Offline, the dandi client would retry for about a minute; :func:`check_reachable` first
tries one TCP connection with a short deadline and fails in under 2 seconds with one line.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from nlbsuite.errors import UserError
from nlbsuite.nlb.specs import DatasetSpec, get_spec

DEFAULT_API = "https://api.dandiarchive.org/api"
CONNECT_DEADLINE_S = 1.5


def api_url() -> str:
    """DANDI API URL: ``$NLBSUITE_DANDI_API`` or the public archive."""
    return os.environ.get("NLBSUITE_DANDI_API", DEFAULT_API)


def check_reachable(url: str | None = None, deadline_s: float = CONNECT_DEADLINE_S) -> None:
    """One TCP connection to the API host within ``deadline_s`` (DNS included), else
    :class:`UserError`."""
    url = url or api_url()
    parsed = urlparse(url)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=deadline_s):
                outcome.append(None)
        except OSError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(deadline_s)
    if not outcome or outcome[0] is not None:
        why = "timed out" if not outcome else str(outcome[0]) or type(outcome[0]).__name__
        raise UserError(
            f"cannot reach the DANDI archive at {host}:{port} ({why}); download the NWB files "
            "elsewhere and pass them (--nwb on the command line, nwb_paths= in Python), or put "
            "them under $NLBSUITE_DATA/<dandiset id>/"
        )


def _asset_sizes(spec: DatasetSpec) -> dict[str, int]:
    from dandi.dandiapi import DandiAPIClient

    with DandiAPIClient(api_url=api_url()) as client:
        dandiset = client.get_dandiset(spec.dandiset, spec.version)
        return {a.path: a.size for a in dandiset.get_assets()}


def fetch(dataset: str, root: Path | None = None) -> list[Path]:
    """Download (or complete) the dataset's files; returns the NWB paths on disk."""
    from nlbsuite.nlb.prepare import data_dir

    spec = get_spec(dataset)
    root = Path(root) if root is not None else data_dir()
    check_reachable()
    try:
        from dandi.download import DownloadExisting, DownloadFormat, download

        root.mkdir(parents=True, exist_ok=True)
        download(
            f"DANDI:{spec.dandiset}/{spec.version}",
            root,
            existing=DownloadExisting.REFRESH,
            format=DownloadFormat.DEBUG,
            get_metadata=True,
        )
        sizes = _asset_sizes(spec)
    except UserError:
        raise
    except Exception as exc:  # the dandi client raises many types; one line for the user
        raise UserError(f"DANDI:{spec.dandiset}/{spec.version}: download failed ({exc})") from None
    folder = root / spec.dandiset
    paths = []
    for rel, size in sorted(sizes.items()):
        path = folder / rel
        if not path.is_file() or path.stat().st_size != size:
            got = path.stat().st_size if path.is_file() else "missing"
            raise UserError(
                f"{path}: expected {size} bytes from DANDI, found {got}; run fetch again"
            )
        if path.suffix == ".nwb":
            paths.append(path)
    return paths

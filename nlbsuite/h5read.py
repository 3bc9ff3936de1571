"""Whole-dataset reads of h5py datasets, faster than ``ds[()]`` and equal to it.

Scoring from files is dominated by reading them, so the scorer reads every array through
:func:`read_dataset`, which returns exactly ``ds[()]`` (values, dtype and shape) by one
of two fast paths, or by ``ds[()]`` itself for anything else:

* contiguous, unfiltered data: a read-only array on a memory map of the file (no copy:
  the page cache is mapped directly);
* chunked data whose filters are deflate (gzip), optionally after shuffle: each chunk's
  stored bytes are inflated, straight from a memory map of the file, on a thread per core
  (zlib releases the GIL while inflating), then placed into the output.

Both need a file opened read-only with HDF5's default ``sec2`` driver (its descriptor is
read directly), a numeric dtype stored exactly as numpy lays it out, and at least
``_MIN_NBYTES`` of data (below that, the checks and threads cost more than they save).
"""

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache, partial
from zlib import decompress as _inflate
from zlib import error as _InflateError

import h5py
import numpy as np

_MIN_NBYTES = 1 << 20


def read_dataset(ds: h5py.Dataset) -> np.ndarray:
    """``ds[()]``: the whole dataset (``ds.shape``, ``ds.dtype``), read-only when it is
    memory-mapped."""
    fd = _raw_descriptor(ds)
    if fd is None:
        return ds[()]
    dcpl = ds.id.get_create_plist()
    layout = dcpl.get_layout()
    fast = None
    if layout == h5py.h5d.CONTIGUOUS and not dcpl.get_external_count():
        fast = _mapped(ds, fd)
    elif layout == h5py.h5d.CHUNKED:
        fast = _inflated(ds, fd, dcpl)
    return ds[()] if fast is None else fast


def _raw_descriptor(ds: h5py.Dataset) -> int | None:
    """HDF5's descriptor of ``ds``'s file if its stored bytes can be read as numpy data:
    an array (no scalar) of at least ``_MIN_NBYTES`` of a plain numeric dtype in a file
    opened read-only with the ``sec2`` driver; else None."""
    if ds.nbytes < _MIN_NBYTES or not ds.shape:  # ds[()] of a scalar is no array
        return None
    dtype = ds.dtype
    if dtype.kind not in "biuf" or dtype.fields or dtype.subdtype or dtype.metadata:
        return None  # strings, vlen/object, compound, enum, ...
    if not ds.id.get_type().equal(h5py.h5t.py_create(dtype)):  # e.g. odd precision/padding
        return None
    f = ds.file
    if f.mode != "r" or f.swmr_mode or f.driver != "sec2":
        return None
    return f.id.get_vfd_handle()


def _mapped(ds: h5py.Dataset, fd: int) -> np.ndarray | None:
    """A read-only view of contiguous data on a memory map; None if not allocated."""
    offset = ds.id.get_offset()
    if offset is None or os.fstat(fd).st_size < offset + ds.nbytes:
        return None
    buffer = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    return np.frombuffer(buffer, ds.dtype, count=ds.size, offset=offset).reshape(ds.shape)


_Decoder = Callable[[bytes | memoryview], bytes | memoryview]


class _UnexpectedChunk(Exception):
    """A stored chunk does not decode to a full chunk: let HDF5 read the dataset."""


def _inflated(ds: h5py.Dataset, fd: int, dcpl: h5py.h5p.PropDCID) -> np.ndarray | None:
    """A deflate(+shuffle)-chunked dataset decoded chunk by chunk in threads; else None
    (other filters, unallocated chunks, chunks that do not decode as expected)."""
    shape, dtype, chunk_shape = ds.shape, ds.dtype, ds.chunks
    chunk_nbytes = math.prod(chunk_shape) * dtype.itemsize
    decoders = _decoders(dcpl, dtype.itemsize, chunk_nbytes)
    if decoders is None or not hasattr(ds.id, "chunk_iter"):  # HDF5 builds before 1.12.3
        return None
    chunks: list[h5py.h5d.StoreInfo] = []
    ds.id.chunk_iter(chunks.append)
    if len(chunks) != math.prod(-(-n // c) for n, c in zip(shape, chunk_shape, strict=True)):
        return None  # unallocated chunks read as the fill value
    stored = memoryview(mmap.mmap(fd, 0, access=mmap.ACCESS_READ))
    out = np.empty(shape, dtype)

    def place(batch: Sequence[h5py.h5d.StoreInfo]) -> bool:
        """Decode the chunks of ``batch`` into ``out``; False at one that does not decode."""
        # no h5py calls here: the caller may hold h5py's global lock (e.g. iterating items)
        try:
            for chunk in batch:
                data = stored[chunk.byte_offset : chunk.byte_offset + chunk.size]
                for index in reversed(range(len(decoders))):  # filters undone last to first
                    if not chunk.filter_mask >> index & 1:  # set bit: filter skipped on write
                        data = decoders[index](data)
                if len(data) != chunk_nbytes:
                    return False
                region = tuple(
                    slice(o, min(o + c, n))
                    for o, c, n in zip(chunk.chunk_offset, chunk_shape, shape, strict=True)
                )
                decoded = np.frombuffer(data, dtype).reshape(chunk_shape)
                out[region] = decoded[tuple(slice(0, r.stop - r.start) for r in region)]  # edges
        except (_InflateError, _UnexpectedChunk):
            return False
        return True

    n_batches = min(len(chunks), _cores())
    if n_batches == 1:
        placed = [place(chunks)]
    else:  # interleaved batches, each with an even share of the dataset; list() waits for all
        batches = [chunks[i::n_batches] for i in range(n_batches)]
        placed = list(_executor(os.getpid()).map(place, batches))
    return out if all(placed) else None


def _decoders(dcpl: h5py.h5p.PropDCID, itemsize: int, chunk_nbytes: int) -> list[_Decoder] | None:
    """Decoders of the filter pipeline, in pipeline order, if it is deflate, or shuffle
    then deflate; else None."""
    codes = [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]
    deflate = partial(_inflate, bufsize=chunk_nbytes)
    if codes == [h5py.h5z.FILTER_DEFLATE]:
        return [deflate]
    if codes == [h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_DEFLATE]:
        return [partial(_unshuffle, itemsize=itemsize), deflate]
    return None


def _unshuffle(data: bytes | memoryview, itemsize: int) -> bytes:
    """Undo HDF5's shuffle filter: byte planes (all first bytes, all second bytes, ...)
    back to whole elements."""
    if len(data) % itemsize:
        raise _UnexpectedChunk
    return np.frombuffer(data, np.uint8).reshape(itemsize, -1).T.tobytes()


@cache
def _cores() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@cache
def _executor(pid: int) -> ThreadPoolExecutor:
    """Threads that decode chunks, one per core, started once per process ``pid`` (a
    forked child has none of its parent's threads)."""
    return ThreadPoolExecutor(_cores(), thread_name_prefix="h5read")

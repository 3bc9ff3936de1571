"""All fixed points of a piecewise-linear low-rank RNN, found exactly (pure NumPy).

Dynamics (rank R, N units)::

    z_{t+1} = a * z_t + n.T @ phi(m @ z_t + h)        z: (R,), m, n: (N, R), h: (N,), a: (R,)

with ``phi`` the ReLU ``max(x, 0)`` or the clipped ReLU ``clip(x, 0, 1)``; or, in the authors'
parameterisation ("relu_diff"), ``z_{t+1} = a * z_t + n.T @ (relu(m @ z_t + h) - relu(m @ z_t))``
(breakpoints at currents -h_u and 0, height h_u), which is solved as the clipped ReLU network
with ``m_u / |h_u|``, bias 1 or 0 and ``n_u h_u`` (the same map, see
:meth:`PiecewiseLinearRNN.as_clipped`). Each unit is in
one of the states off (x < 0), linear (0 < x < 1, or x > 0 for ReLU) or saturated (x > 1),
and inside one *region* (all unit states fixed) the map is affine, so a region holds at most
one (isolated) fixed point, found by one R x R solve. The unit breakpoints ``m_u . z + h_u =
{0, 1}`` are hyperplanes in the R-dimensional latent space; only the regions of that
arrangement of H = N (ReLU) or 2N (clipped) hyperplanes can be visited, O(H^R) of them
instead of 2^N or 3^N (Pals et al. 2024, "Inferring stochastic low-rank RNNs from neural
data", who solve one system per region around every intersection point).

How it is done here (all exact; pure NumPy):

1. Reduction: with ``Q`` an orthonormal basis of the row space of ``m`` (d = rank(m) <= R
   dims), fixed points are the solutions of ``y = mix phi(g y + h)`` with ``y = Q.T z``,
   ``g = m Q`` and ``mix = Q.T diag(1/(1-a)) n.T``; ``z = n.T phi(g y + h) / (1 - a)``.
2. A box holding every fixed point: the range of the map (clipped ReLU), or for ReLU a
   radius proven on the cube's faces in the homogeneous limit (else the hull of all
   vertices, with its border boxes never dropped).
3. Pruning: the box is bisected; a box is dropped when an interval bound (mean-value form
   with the unit slopes in [0, 1] only for units whose breakpoints meet the box, or the
   direct hull of ``mix phi``) proves ``y - mix phi(g y + h)`` has no zero in it. Boxes met
   by at most ``leaf_planes`` hyperplanes become leaves. ``prune=False`` skips this step
   and enumerates every region of the whole arrangement.
4. Region enumeration inside each leaf, each region exactly once: every bounded region has
   a unique lowest vertex along a fixed generic direction ``c``, and at a vertex (d
   hyperplanes meet) exactly one of the 2^d surrounding regions has it as lowest vertex
   (orthant ``sign(G_S^{-T} c)``). Vertices are visited along lines (d - 1 hyperplanes);
   the other hyperplanes cross a line at sorted positions, and an exclusive cumulative sum
   of the changes of the region map gives every region's map in O(1).
5. Checks: a region's candidate must lie in its tangent cone at the vertex, on its side of
   the next crossing along the line, and on the vertex's side of every unit hyperplane;
   survivors are re-derived from scratch (state vector -> affine map -> solve -> check).

Fixed points on region boundaries and non-isolated fixed points (singular region maps) are
measure-zero cases that are not searched for.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

NONLINEARITIES = ("relu", "clipped_relu", "relu_diff")
#: phi = SLOPE[state] * x + OFFSET[state] for unit states off (0), linear (1), saturated (2).
SLOPE = np.array([0.0, 1.0, 0.0])
OFFSET = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class PiecewiseLinearRNN:
    """Autonomous rank-R dynamics ``z' = a * z + n.T @ phi(m @ z + h)``.

    ``a``: (R,) decay per latent dimension; ``m``, ``n``: (N, R); ``h``: (N,) (a constant
    input ``W_u u`` is folded into ``h``). ``nonlinearity``: "relu" (``max(x, 0)``),
    "clipped_relu" (``clip(x, 0, 1)``) with ``x = m z + h``, or "relu_diff" (the authors'
    unit: ``relu(x + h) - relu(x)`` with ``x = m z``, i.e. ``clip(x + h, 0, h)`` for h > 0).
    Unit states are numbered by the current: 0 below the first breakpoint, then 1, 2.
    """

    a: np.ndarray
    m: np.ndarray
    n: np.ndarray
    h: np.ndarray
    nonlinearity: str = "clipped_relu"

    def __post_init__(self) -> None:
        m = np.asarray(self.m, dtype=np.float64)
        if m.ndim != 2:
            raise ValueError(f"m must be (N, R), got shape {m.shape}")
        n_units, rank = m.shape
        a = np.broadcast_to(np.asarray(self.a, dtype=np.float64), (rank,)).copy()
        n = np.asarray(self.n, dtype=np.float64)
        h = np.asarray(self.h, dtype=np.float64).reshape(-1)
        if n.shape != m.shape or h.shape != (n_units,):
            raise ValueError(f"n must be {m.shape} and h ({n_units},); got {n.shape}, {h.shape}")
        if self.nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}")
        for name, value in (("a", a), ("m", m), ("n", n), ("h", h)):
            object.__setattr__(self, name, value)

    @property
    def rank(self) -> int:
        return self.m.shape[1]

    @property
    def n_units(self) -> int:
        return self.m.shape[0]

    @property
    def breakpoints(self) -> np.ndarray:
        """Unit currents where phi changes slope (ReLU and clipped ReLU, shared by all units):
        (0,) for ReLU, (0, 1) for clipped ReLU."""
        if self.nonlinearity == "relu_diff":
            raise ValueError("relu_diff breakpoints differ per unit: see unit_tables()")
        return np.array([0.0]) if self.nonlinearity == "relu" else np.array([0.0, 1.0])

    def unit_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per unit: input bias (N,) (current ``x = m z + bias``), breakpoints (N, nb) in
        ascending order, and ``phi = slope[state] * x + offset[state]`` tables (N, nb + 1)."""
        n = self.n_units
        if self.nonlinearity == "relu_diff":
            h = self.h
            bps = np.stack([np.minimum(-h, 0.0), np.maximum(-h, 0.0)], axis=1)
            slope = np.stack([np.zeros(n), np.sign(h), np.zeros(n)], axis=1)
            offset = np.stack([np.zeros(n), np.maximum(h, 0.0), h], axis=1)
            return np.zeros(n), bps, slope, offset
        nb = 1 if self.nonlinearity == "relu" else 2
        bps = np.broadcast_to(self.breakpoints, (n, nb))
        return self.h, bps, np.tile(SLOPE[: nb + 1], (n, 1)), np.tile(OFFSET[: nb + 1], (n, 1))

    def phi(self, x: np.ndarray) -> np.ndarray:
        """Unit outputs of currents ``x = m z + h`` (relu_diff: ``x = m z``), (..., N)."""
        if self.nonlinearity == "relu":
            return np.maximum(x, 0.0)
        if self.nonlinearity == "relu_diff":
            return np.maximum(x + self.h, 0.0) - np.maximum(x, 0.0)
        return np.clip(x, 0.0, 1.0)

    def currents(self, z: np.ndarray) -> np.ndarray:
        """Unit currents (..., N) at ``z`` (..., R): ``m z + h`` (relu_diff: ``m z``)."""
        return z @ self.m.T + (0.0 if self.nonlinearity == "relu_diff" else self.h)

    def step(self, z: np.ndarray) -> np.ndarray:
        """One noise-free step; ``z``: (..., R) -> (..., R)."""
        return self.a * z + self.phi(self.currents(z)) @ self.n

    def unit_states(self, z: np.ndarray) -> np.ndarray:
        """State (0 off, 1 linear, 2 saturated) of every unit at ``z`` (..., R) -> (..., N)."""
        _, bps, _, _ = self.unit_tables()
        x = self.currents(z)
        return (x[..., None] > bps).sum(-1)

    def affine_map(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The map ``z' = J z + c`` inside the region of ``states`` (..., N).

        Returns J (..., R, R) (also the Jacobian there) and c (..., R).
        """
        bias, _, slope_tab, offset_tab = self.unit_tables()
        units = np.arange(self.n_units)
        slope, offset = slope_tab[units, states], offset_tab[units, states]
        jac = np.einsum("...u,ur,uc->...rc", slope, self.n, self.m) + np.diag(self.a)
        const = (slope * bias + offset) @ self.n
        return jac, const

    def jacobian(self, z: np.ndarray) -> np.ndarray:
        """Jacobian of the map at ``z`` (..., R) -> (..., R, R)."""
        return self.affine_map(self.unit_states(z))[0]

    def consistent(self, z: np.ndarray, states: np.ndarray, tol: float) -> np.ndarray:
        """Whether each ``z`` (..., R) lies (within ``tol``) in the region of ``states``."""
        _, bps, _, _ = self.unit_tables()
        inf = np.full((self.n_units, 1), np.inf)
        edges = np.concatenate([-inf, bps, inf], axis=1)  # (N, nb + 2)
        units = np.arange(self.n_units)
        x = self.currents(z)
        lower, upper = edges[units, states], edges[units, states + 1]
        return np.all((x >= lower - tol) & (x <= upper + tol), axis=-1)

    def as_clipped(self) -> PiecewiseLinearRNN:
        """The same map as a "clipped_relu" network (relu_diff only): for h_u > 0,
        ``relu(x + h) - relu(x) = h clip(x / h + 1, 0, 1)``; for h_u < 0 it is
        ``h clip(-x / h, 0, 1)``; units with h_u = 0 output 0 and are kept always off.
        Unit states correspond one to one (both number the states by increasing current)."""
        if self.nonlinearity != "relu_diff":
            raise ValueError("as_clipped() converts relu_diff networks only")
        h = self.h
        scale = np.where(h != 0, 1.0 / np.where(h != 0, np.abs(h), 1.0), 0.0)
        return PiecewiseLinearRNN(
            a=self.a,
            m=self.m * scale[:, None],
            n=self.n * h[:, None],
            h=np.where(h > 0, 1.0, np.where(h < 0, 0.0, -1.0)),
            nonlinearity="clipped_relu",
        )


@dataclass
class FixedPoints:
    """Fixed points of a :class:`PiecewiseLinearRNN`.

    ``z``: (K, R); ``eigenvalues``: (K, R) complex, of the Jacobian at each point;
    ``stable``: (K,) all |eigenvalue| < 1; ``states``: (K, N) unit states;
    ``n_regions``: regions (linear systems) examined; ``seconds``: wall time.
    """

    z: np.ndarray
    eigenvalues: np.ndarray
    stable: np.ndarray
    states: np.ndarray
    n_regions: int = 0
    seconds: float = 0.0
    method: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.z.shape[0]

    def kind(self, i: int) -> str:
        """ "stable", "unstable" (all |eig| > 1) or "saddle"."""
        mags = np.abs(self.eigenvalues[i])
        if np.all(mags < 1):
            return "stable"
        return "unstable" if np.all(mags > 1) else "saddle"

    def table(self) -> list[dict[str, object]]:
        """One row per fixed point: coordinates, spectral radius and kind."""
        return [
            {
                "z": [float(v) for v in self.z[i]],
                "spectral_radius": float(np.abs(self.eigenvalues[i]).max()),
                "kind": self.kind(i),
                "eigenvalues": [complex(e) for e in self.eigenvalues[i]],
            }
            for i in range(len(self))
        ]


def _finish(
    net: PiecewiseLinearRNN,
    z: np.ndarray,
    states: np.ndarray,
    n_regions: int,
    start: float,
    method: str,
    tol: float,
) -> FixedPoints:
    """Deduplicate candidate fixed points (K, R) and attach their stability."""
    keep: list[int] = []
    for i in range(z.shape[0]):
        if all(np.max(np.abs(z[i] - z[j])) > tol for j in keep):
            keep.append(i)
    z, states = z[keep], states[keep]
    order = np.lexsort(z.T[::-1]) if len(keep) else np.arange(0)
    z, states = z[order], states[order]
    jac = net.affine_map(states)[0] if len(z) else np.zeros((0, net.rank, net.rank))
    eig = np.linalg.eigvals(jac) if len(z) else np.zeros((0, net.rank), complex)
    return FixedPoints(
        z=z,
        eigenvalues=eig,
        stable=np.all(np.abs(eig) < 1, axis=1),
        states=states.astype(np.int8),
        n_regions=int(n_regions),
        seconds=time.perf_counter() - start,
        method=method,
    )


def _solve(a_mat: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched solve of (M, R, R) x = (M, R); closed forms for R <= 3 (NaN where singular)."""
    r = a_mat.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        if r == 1:
            return b / a_mat[:, 0]
        if r == 2:
            det = a_mat[:, 0, 0] * a_mat[:, 1, 1] - a_mat[:, 0, 1] * a_mat[:, 1, 0]
            x0 = (b[:, 0] * a_mat[:, 1, 1] - a_mat[:, 0, 1] * b[:, 1]) / det
            x1 = (a_mat[:, 0, 0] * b[:, 1] - a_mat[:, 1, 0] * b[:, 0]) / det
            return np.stack([x0, x1], axis=1)
        if r == 3:
            r0, r1, r2 = a_mat[:, 0], a_mat[:, 1], a_mat[:, 2]
            c12, c20, c01 = np.cross(r1, r2), np.cross(r2, r0), np.cross(r0, r1)
            det = np.einsum("mi,mi->m", r0, c12)
            return (b[:, :1] * c12 + b[:, 1:2] * c20 + b[:, 2:3] * c01) / det[:, None]
    out = np.full(b.shape, np.nan)
    ok = np.abs(np.linalg.det(a_mat)) > 1e-300
    if ok.any():
        out[ok] = np.linalg.solve(a_mat[ok], b[ok][..., None])[..., 0]
    return out


def brute_force_fixed_points(
    net: PiecewiseLinearRNN, max_regions: int = 2**16, tol: float = 1e-9
) -> FixedPoints:
    """Fixed points by solving in every one of the 2^N (ReLU) or 3^N (clipped, relu_diff)
    regions, each in the network's own parameterisation.

    Exponential in N: a reference for tests on small networks only.
    """
    start = time.perf_counter()
    n_states = 2 if net.nonlinearity == "relu" else 3
    total = n_states**net.n_units
    if total > max_regions:
        raise ValueError(f"{total} regions exceed max_regions={max_regions}")
    states = np.array(list(itertools.product(range(n_states), repeat=net.n_units)), dtype=np.int64)
    jac, const = net.affine_map(states)
    z = _solve(np.eye(net.rank) - jac, const)
    ok = np.all(np.isfinite(z), axis=1)
    ok[ok] = net.consistent(z[ok], states[ok], tol)
    return _finish(net, z[ok], states[ok], total, start, "brute force", 1e-7)


# ----------------------------------------------------------------------------------------
# Region enumeration
# ----------------------------------------------------------------------------------------


@dataclass
class _Reduced:
    """The fixed-point problem in the row space of ``m``: ``y = mix @ phi(g @ y + h)``.

    ``y = Q.T z`` (d = rank(m) dims); a solution maps back by ``z = n.T phi(g y + h) / (1-a)``.
    ``kappa``: (N, 3, d*d + d) each unit's share of the region map ``y' = J y + c`` (vec J, c)
    in each unit state; planes: every unit's breakpoint hyperplanes ``g_u . y = bp - h_u``.
    """

    g: np.ndarray  # (N, d)
    h: np.ndarray  # (N,)
    mix: np.ndarray  # (d, N)
    bps: np.ndarray  # (nb,)
    kappa: np.ndarray  # (N, 3, L)
    plane_g: np.ndarray  # (N * nb, d)
    plane_theta: np.ndarray  # (N * nb,)

    @property
    def dim(self) -> int:
        return self.g.shape[1]

    def phi(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0.0) if self.bps.size == 1 else np.clip(x, 0.0, 1.0)

    def states(self, y: np.ndarray) -> np.ndarray:
        x = y @ self.g.T + self.h
        return np.searchsorted(self.bps, x.ravel(), side="left").reshape(x.shape)


def _reduce(net: PiecewiseLinearRNN, basis: np.ndarray) -> _Reduced:
    g = net.m @ basis
    mix = (basis.T / (1.0 - net.a)) @ net.n.T  # (d, N)
    d, n_units = g.shape[1], net.n_units
    outer = np.einsum("iu,uj->uij", mix, g).reshape(n_units, d * d)
    kappa = np.zeros((n_units, 3, d * d + d))
    for s in range(3):
        kappa[:, s, : d * d] = SLOPE[s] * outer
        kappa[:, s, d * d :] = (SLOPE[s] * net.h + OFFSET[s])[:, None] * mix.T
    bps = net.breakpoints
    unit = np.repeat(np.arange(n_units), bps.size)
    return _Reduced(
        g=g,
        h=net.h,
        mix=mix,
        bps=bps,
        kappa=kappa,
        plane_g=g[unit],
        plane_theta=bps[np.tile(np.arange(bps.size), n_units)] - net.h[unit],
    )


@dataclass
class _Arrangement:
    """Hyperplanes ``g_l . y = theta_l``: the breakpoints of some units, then 2d box faces
    (lo_0, hi_0, lo_1, ...). Per hyperplane: ``group`` (one group's hyperplanes are
    parallel: a unit's, or N + axis for the box), ``inside`` (side of the box's inside,
    +1 / -1, 0 for unit hyperplanes), ``unit`` (-1 for the box), ``plane`` (index into the
    reduced problem's planes, -1 for the box), ``state_lo`` (unit state just below) and the
    unit's contributions just below / above (zero for the box)."""

    g: np.ndarray
    theta: np.ndarray
    group: np.ndarray
    inside: np.ndarray
    unit: np.ndarray
    plane: np.ndarray
    state_lo: np.ndarray
    contrib_lo: np.ndarray
    contrib_hi: np.ndarray
    n_real: int


def _arrangement(red: _Reduced, units: np.ndarray, box: np.ndarray) -> _Arrangement:
    """Hyperplanes of ``units`` (in ascending order) plus the faces of ``box`` (2, d)."""
    nb, d = red.bps.size, red.dim
    unit = np.repeat(units, nb)
    bp = np.tile(np.arange(nb), units.size)
    plane = unit * nb + bp
    n_box = 2 * d
    zeros = np.zeros((n_box, red.kappa.shape[2]))
    return _Arrangement(
        g=np.concatenate([red.plane_g[plane], np.repeat(np.eye(d), 2, axis=0)]),
        theta=np.concatenate([red.plane_theta[plane], box.T.reshape(-1)]),
        group=np.concatenate([unit, red.g.shape[0] + np.repeat(np.arange(d), 2)]),
        inside=np.concatenate([np.zeros(unit.size), np.tile([1.0, -1.0], d)]),
        unit=np.concatenate([unit, -np.ones(n_box, dtype=np.int64)]),
        plane=np.concatenate([plane, -np.ones(n_box, dtype=np.int64)]),
        state_lo=np.concatenate([bp, np.zeros(n_box, dtype=np.int64)]),
        contrib_lo=np.concatenate([red.kappa[unit, bp], zeros]),
        contrib_hi=np.concatenate([red.kappa[unit, bp + 1], zeros]),
        n_real=unit.size,
    )


def _line_batches(group: np.ndarray, k: int, max_lines: int) -> Iterator[np.ndarray]:
    """All k-subsets (rows, ascending) of hyperplane indices from distinct groups, batched."""
    n = group.size
    if k == 0:
        yield np.zeros((1, 0), dtype=np.int64)
        return
    if k == 1:
        for s in range(0, n, max_lines):
            yield np.arange(s, min(n, s + max_lines))[:, None]
        return
    if k == 2:
        buf: list[np.ndarray] = []
        size = 0
        for i in range(n - 1):
            j = np.arange(i + 1, n)
            j = j[group[j] != group[i]]
            buf.append(np.stack([np.full(j.size, i), j], axis=1))
            size += j.size
            if size >= max_lines:
                yield np.concatenate(buf)
                buf, size = [], 0
        if buf:
            yield np.concatenate(buf)
        return
    rows = [c for c in itertools.combinations(range(n), k) if len(set(group[list(c)])) == k]
    for s in range(0, len(rows), max_lines):
        yield np.array(rows[s : s + max_lines], dtype=np.int64).reshape(-1, k)


@dataclass
class _Lines:
    """A batch of lines ``y = p0 + t w`` (B lines, each the meet of k = d - 1 hyperplanes)."""

    idx: np.ndarray  # (B, k) defining hyperplanes
    w: np.ndarray  # (B, d) unit direction
    p0: np.ndarray  # (B, d) a point on the line
    proj: np.ndarray  # (B, k, d) (G G^T)^-1 G: coefficients of a vector in the normals


def _make_lines(arr: _Arrangement, idx: np.ndarray) -> _Lines:
    """Direction, base point and projector of each line; degenerate lines are dropped."""
    n_lines, k = idx.shape
    d = arr.g.shape[1]
    gt = arr.g[idx]  # (B, k, d)
    if k == 0:
        w = np.ones((n_lines, d))
    elif d == 2:
        w = np.stack([-gt[:, 0, 1], gt[:, 0, 0]], axis=1)
    elif d == 3:
        w = np.cross(gt[:, 0], gt[:, 1])
    else:
        w = np.linalg.svd(gt, full_matrices=True)[2][:, -1]
    scale = np.prod(np.linalg.norm(gt, axis=2), axis=1) if k else np.ones(n_lines)
    norm = np.linalg.norm(w, axis=1)
    ok = norm > 1e-9 * scale
    idx, gt, w = idx[ok], gt[ok], w[ok] / norm[ok, None]
    if k == 0:
        return _Lines(idx, w, np.zeros_like(w), np.zeros((w.shape[0], 0, d)))
    proj = np.linalg.solve(gt @ gt.transpose(0, 2, 1), gt)  # (B, k, d)
    p0 = np.einsum("bkd,bk->bd", proj, arr.theta[idx])
    return _Lines(idx, w, p0, proj)


def _crossings(arr: _Arrangement, lines: _Lines) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per line and hyperplane: g.w, g.p0 and the crossing parameter t (inf: no crossing,
    for hyperplanes parallel to the line or of the groups that define it)."""
    gw = lines.w @ arr.g.T
    gp = lines.p0 @ arr.g.T
    excl = np.abs(gw) <= 1e-12 * np.linalg.norm(arr.g, axis=1)
    for j in range(lines.idx.shape[1]):
        excl |= arr.group[None, :] == arr.group[lines.idx[:, j]][:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(excl, np.inf, (arr.theta - gp) / gw)
    return gw, gp, t


def _vertex_box(red: _Reduced, max_events: int) -> np.ndarray:
    """(2, d) bounds of all intersection points of the units' hyperplanes."""
    d = red.dim
    arr = _arrangement(red, np.arange(red.g.shape[0]), np.zeros((2, d)))
    lo, hi = np.full(d, np.inf), np.full(d, -np.inf)
    real = arr.unit >= 0
    groups = arr.group[: arr.n_real]
    for idx in _line_batches(groups, d - 1, max(1, max_events // arr.n_real)):
        lines = _make_lines(arr, idx)
        _, _, t = _crossings(arr, lines)
        last = lines.idx.max(axis=1) if d > 1 else np.full(len(lines.w), -1)
        ok = real[None, :] & np.isfinite(t) & (np.arange(t.shape[1])[None, :] > last[:, None])
        b, ell = np.nonzero(ok)
        v = lines.p0[b] + t[b, ell][:, None] * lines.w[b]
        if v.size:
            lo, hi = np.minimum(lo, v.min(axis=0)), np.maximum(hi, v.max(axis=0))
    if not np.all(np.isfinite(lo)):
        lo, hi = -np.ones(d), np.ones(d)
    return np.stack([lo, hi])


def _enumerate(
    red: _Reduced,
    units: np.ndarray,
    fixed_contrib: np.ndarray,
    box: np.ndarray,
    tol: float,
    c_dir: np.ndarray,
    max_events: int,
) -> tuple[list[np.ndarray], int]:
    """Unit-state vectors (N,) of every region inside ``box`` whose fixed point passes all
    filters, and the number of regions examined.

    Only the hyperplanes of ``units`` are swept; all other units keep one state throughout
    the box, contributing ``fixed_contrib`` (L,) to every region's map.
    """
    d = red.dim
    arr = _arrangement(red, units, box)
    n_planes = arr.n_real + 2 * d
    local = np.full(red.g.shape[0], -1)
    local[units] = np.arange(units.size)
    found: list[np.ndarray] = []
    n_regions = 0
    real = arr.unit >= 0
    up = arr.contrib_hi - arr.contrib_lo

    for idx in _line_batches(arr.group, d - 1, max(1, max_events // n_planes)):
        lines = _make_lines(arr, idx)
        n_lines = lines.w.shape[0]
        if n_lines == 0:
            continue
        gw, gp, t = _crossings(arr, lines)
        cross = np.isfinite(t)
        # The region map at t = -inf (units of the line's own hyperplanes left out) ...
        above = np.where(cross, gw < 0, gp > arr.theta)[:, real]
        unit_state = above.reshape(n_lines, units.size, red.bps.size).sum(axis=2)  # (B, units)
        keep = np.ones((n_lines, units.size))
        for j in range(lines.idx.shape[1]):
            u = arr.unit[lines.idx[:, j]]
            keep[np.flatnonzero(u >= 0), local[u[u >= 0]]] = 0.0
        base = fixed_contrib + sum(
            ((unit_state == s) * keep) @ red.kappa[units, s] for s in range(3)
        )
        # ... and its changes at the crossings, summed in crossing order (exclusive).
        order = np.argsort(t, axis=1, kind="stable")
        rank_of = np.empty_like(order)
        np.put_along_axis(rank_of, order, np.arange(n_planes)[None, :], axis=1)
        sign = np.take_along_axis(np.where(cross, np.sign(gw), 0.0), order, axis=1)
        delta = up[order] * sign[:, :, None]
        prefix = np.cumsum(delta, axis=1) - delta  # (B, P, L)

        # Vertices: crossings with a hyperplane after the line's own ones, inside the box.
        last = lines.idx.max(axis=1) if lines.idx.shape[1] else np.full(n_lines, -1)
        b, k = np.nonzero(cross & (np.arange(n_planes)[None, :] > last[:, None]))
        v = lines.p0[b] + t[b, k][:, None] * lines.w[b]
        ok = np.all((v >= box[0] - tol) & (v <= box[1] + tol), axis=1)
        b, k, v = b[ok], k[ok], v[ok]
        # The orthant of the region whose lowest vertex (along c) this is: sign(G_S^-T c).
        lam_k = (lines.w[b] @ c_dir) / gw[b, k]
        proj = lines.proj[b]
        sig_t = np.sign(proj @ c_dir - lam_k[:, None] * np.einsum("mkd,md->mk", proj, arr.g[k]))
        sig_k = np.sign(lam_k)
        plane_t = lines.idx[b]  # (M, k)
        ok = np.all((arr.inside[plane_t] == 0) | (arr.inside[plane_t] == sig_t), axis=1)
        ok &= (arr.inside[k] == 0) | (arr.inside[k] == sig_k)
        b, k, v, sig_k, sig_t, plane_t = (x[ok] for x in (b, k, v, sig_k, sig_t, plane_t))
        n_regions += b.size
        if b.size == 0:
            continue
        # That region's map: the prefix before k, with k's and the line's units set.
        contrib = base[b] + prefix[b, rank_of[b, k]]
        contrib += np.where((sig_k > 0)[:, None], arr.contrib_hi[k], arr.contrib_lo[k])
        contrib -= np.where((gw[b, k] < 0)[:, None], arr.contrib_hi[k], arr.contrib_lo[k])
        for j in range(plane_t.shape[1]):
            pj = plane_t[:, j]
            contrib += np.where((sig_t[:, j] > 0)[:, None], arr.contrib_hi[pj], arr.contrib_lo[pj])
        jac = contrib[:, : d * d].reshape(-1, d, d)
        y = _solve(np.eye(d) - jac, contrib[:, d * d :])

        # Filter 1: the fixed point lies in the tangent cone at the vertex.
        ok = np.all(np.isfinite(y), axis=1)
        for pj, sj in [(k, sig_k), *((plane_t[:, j], sig_t[:, j]) for j in range(d - 1))]:
            side = np.einsum("md,md->m", y, arr.g[pj]) - arr.theta[pj]
            ok &= (arr.inside[pj] != 0) | (sj * side > -tol)
        # Filter 2: ... and on the region's side of the next crossing along the line.
        nxt = rank_of[b, k] + (sig_k * np.sign(gw[b, k])).astype(np.int64)
        nxt_plane = order[b, np.clip(nxt, 0, n_planes - 1)]
        check = (nxt >= 0) & (nxt < n_planes) & (arr.inside[nxt_plane] == 0)
        check &= np.isfinite(t[b, nxt_plane])
        side_v = np.einsum("md,md->m", v, arr.g[nxt_plane]) - arr.theta[nxt_plane]
        side_y = np.einsum("md,md->m", y, arr.g[nxt_plane]) - arr.theta[nxt_plane]
        ok &= ~check | (np.sign(side_v) * side_y > -tol)
        sel = np.flatnonzero(ok)
        if sel.size == 0:
            continue
        # Filter 3: no unit hyperplane (of all N units) between the vertex and the point.
        own = np.concatenate([arr.plane[k[sel]][:, None], arr.plane[plane_t[sel]]], axis=1)
        kept = []
        for chunk in np.array_split(np.arange(sel.size), max(1, sel.size // 1024)):
            side_v = v[sel[chunk]] @ red.plane_g.T - red.plane_theta
            side_y = y[sel[chunk]] @ red.plane_g.T - red.plane_theta
            crossed = (side_v * side_y < 0) & (np.abs(side_y) > tol)
            rows = np.repeat(np.arange(chunk.size), own.shape[1])
            cols = own[chunk].ravel()
            crossed[rows[cols >= 0], cols[cols >= 0]] = False  # the vertex's own hyperplanes
            kept.append(chunk[~crossed.any(axis=1)])
        for i in sel[np.concatenate(kept)]:
            # Unit states: off the vertex's hyperplanes from the vertex, on them from sigma.
            states = red.states(v[i])
            for plane, sig in zip([k[i], *plane_t[i]], [sig_k[i], *sig_t[i]], strict=True):
                if arr.unit[plane] >= 0:
                    states[arr.unit[plane]] = arr.state_lo[plane] + int(sig > 0)
            found.append(states)
    return found, n_regions


def _no_zero(
    boxes: np.ndarray,
    lin: np.ndarray,
    q: np.ndarray,
    q0: np.ndarray,
    red: _Reduced,
    tol: float,
) -> np.ndarray:
    """True for each box (B, 2, D) on which ``K(v) = lin v - mix phi(q v + q0)`` provably
    has no zero (``lin``: (d, D), ``q``: (N, D), ``q0``: (N,)).

    Two interval tests, either suffices: the mean-value form ``K(c) + [lin - mix S q] (v-c)``
    (unit slopes S exact where no breakpoint meets the box, else in [0, 1]), and the direct
    form ``lin v`` against the hull of ``mix phi`` (phi is monotone).
    """
    centre, half = boxes.mean(axis=1), (boxes[:, 1] - boxes[:, 0]) / 2
    xc = centre @ q.T + q0
    xr = half @ np.abs(q).T
    lo, hi = xc - xr, xc + xr
    if red.bps.size == 1:
        s_lo, s_hi = (lo > 0).astype(float), (hi > 0).astype(float)
    else:
        s_lo = ((lo > 0) & (hi < 1)).astype(float)
        s_hi = ((hi > 0) & (lo < 1)).astype(float)
    d, dim = lin.shape
    resid = centre @ lin.T - red.phi(xc) @ red.mix.T  # (B, d)
    prod = np.einsum("iu,uj->uij", red.mix, q).reshape(-1, d * dim)
    plus, minus = np.maximum(prod, 0), np.maximum(-prod, 0)
    e_hi = (s_hi @ plus - s_lo @ minus).reshape(-1, d, dim)
    e_lo = (s_lo @ plus - s_hi @ minus).reshape(-1, d, dim)
    radius = np.einsum("bij,bj->bi", np.maximum(np.abs(lin - e_hi), np.abs(lin - e_lo)), half)
    out = np.any(np.abs(resid) > radius * (1 + 1e-9) + tol, axis=1)
    mix_p, mix_n = np.maximum(red.mix, 0), np.maximum(-red.mix, 0)
    p_lo, p_hi = red.phi(lo), red.phi(hi)
    k_lo = p_lo @ mix_p.T - p_hi @ mix_n.T
    k_hi = p_hi @ mix_p.T - p_lo @ mix_n.T
    l_c, l_r = centre @ lin.T, half @ np.abs(lin).T
    out |= np.any((l_c - l_r > k_hi + tol) | (l_c + l_r < k_lo - tol), axis=1)
    return out


def _split(boxes: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """Halve each box (B, 2, D) across its longest (weighted) side."""
    sides = boxes[:, 1] - boxes[:, 0]
    axis = np.argmax(sides if weight is None else sides * weight, axis=1)
    rows = np.arange(boxes.shape[0])
    mid = boxes.mean(axis=1)[rows, axis]
    left, right = boxes.copy(), boxes.copy()
    left[rows, 1, axis] = mid
    right[rows, 0, axis] = mid
    return np.concatenate([left, right])


def _relu_radius(red: _Reduced, max_boxes: int = 100_000) -> float | None:
    """A radius rho with every ReLU fixed point inside ``|y|_inf < rho``, or None.

    With ``y = s u`` (|u|_inf = 1, s >= rho) and ``tau = 1/s``, a fixed point far out is a
    zero of ``u - mix relu(g u + tau h)`` on a face of the cube, tau in [0, 1/rho]: a
    piecewise-linear problem on bounded boxes, excluded box by box. None when that fails
    (e.g. the homogeneous map has a ray of fixed points).
    """
    d = red.dim
    lin = np.concatenate([np.eye(d), np.zeros((d, 1))], axis=1)
    q = np.concatenate([red.g, red.h[:, None]], axis=1)
    q0 = np.zeros(red.g.shape[0])
    reach = np.abs(red.h) / np.maximum(np.linalg.norm(red.g, axis=1), 1e-300)
    rho = 1.0 + 2.0 * float(reach.max(initial=0.0))
    for _ in range(6):
        faces = []
        for axis, side in itertools.product(range(d), (-1.0, 1.0)):
            face = np.array([[-1.0] * d + [0.0], [1.0] * d + [1.0 / rho]])
            face[:, axis] = side
            faces.append(face)
        boxes, examined = np.array(faces), 0
        weight = np.array([1.0] * d + [2.0 * rho])  # tau spans 1/rho, u spans 2
        while boxes.shape[0] and examined < max_boxes:
            examined += boxes.shape[0]
            boxes = boxes[~_no_zero(boxes, lin, q, q0, red, 1e-12)]
            boxes = _split(boxes, weight)
        if boxes.shape[0] == 0:
            return rho
        rho *= 4.0
    return None


def _prune(
    red: _Reduced, top: np.ndarray, keep_boundary: bool, leaf_planes: int, max_depth: int
) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], int]:
    """Split ``top`` (2, d) into boxes, dropping every box on which ``y - mix phi(g y + h)``
    provably has no zero (:func:`_no_zero`); returns the leaves (at most ``leaf_planes``
    hyperplanes meet them) as (box, crossing units, unit states at the centre) and the
    number of boxes examined. With ``keep_boundary`` boxes on the border of ``top`` stay.
    """
    d = red.dim
    eye = np.eye(d)
    tol = 1e-12 * (1.0 + np.abs(top).max())
    boxes = top[None]
    leaves: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    n_boxes = 0
    for depth in range(max_depth + 1):
        if boxes.shape[0] == 0:
            break
        n_boxes += boxes.shape[0]
        drop = _no_zero(boxes, eye, red.g, red.h, red, tol)
        if keep_boundary:
            drop &= ~np.any((boxes[:, 0] <= top[0]) | (boxes[:, 1] >= top[1]), axis=1)
        boxes = boxes[~drop]
        centre, half = boxes.mean(axis=1), (boxes[:, 1] - boxes[:, 0]) / 2
        xc, xr = centre @ red.g.T + red.h, half @ np.abs(red.g).T
        crossing = np.zeros(xc.shape, dtype=bool)
        n_cross = np.zeros(xc.shape[0], dtype=np.int64)
        for bp in red.bps:
            meets = (xc - xr <= bp) & (xc + xr >= bp)
            crossing |= meets
            n_cross += meets.sum(axis=1)
        leaf = (n_cross <= leaf_planes) | (depth == max_depth)
        for i in np.flatnonzero(leaf):
            leaves.append((boxes[i], np.flatnonzero(crossing[i]), red.states(centre[i])))
        boxes = _split(boxes[~leaf])
    return leaves, n_boxes


def find_fixed_points(
    net: PiecewiseLinearRNN,
    *,
    prune: bool = True,
    leaf_planes: int = 12,
    max_rank: int = 8,
    max_events: int = 2**18,
    direction_seed: int = 12345,
) -> FixedPoints:
    """All isolated fixed points of ``net`` by enumerating the regions of its hyperplane
    arrangement in the rank-R latent space (see the module docstring).

    ``prune``: first drop boxes that provably hold no fixed point (interval bound), and
    enumerate regions only inside the rest (leaves with at most ``leaf_planes`` crossing
    hyperplanes); ``prune=False`` enumerates every region of the arrangement, O(H^R).
    Raises ValueError above ``max_rank`` (the work grows like H^R). A "relu_diff" network
    is solved as its clipped ReLU equivalent (:meth:`PiecewiseLinearRNN.as_clipped`); the
    points are then re-checked and their unit states and stability taken in ``net`` itself.
    """
    start = time.perf_counter()
    if net.nonlinearity == "relu_diff":
        # Every unit has a breakpoint hyperplane through the origin (m_u z = 0), so the
        # arrangement is far from general position; the enumeration assumes it is. Shift each
        # unit's planes by a distinct ~1e-7 (in units of h_u), enumerate that arrangement,
        # then re-solve every candidate region in ``net`` itself (exact; a fixed point
        # closer than ~1e-7 |h_u| to a breakpoint may be missed, like boundary points).
        clipped = net.as_clipped()
        shift = np.random.default_rng(direction_seed).uniform(-1e-7, 1e-7, net.n_units)
        found = find_fixed_points(
            PiecewiseLinearRNN(clipped.a, clipped.m, clipped.n, clipped.h + shift, "clipped_relu"),
            prune=prune,
            leaf_planes=leaf_planes,
            max_rank=max_rank,
            max_events=max_events,
            direction_seed=direction_seed,
        )
        states = net.unit_states(found.z)
        out = _verified(net, states, found.n_regions, start, found.extra)
        return out
    r = net.rank
    if np.any(np.abs(1.0 - net.a) < 1e-12):
        raise ValueError("decay a = 1 makes every fixed point non-isolated; need a != 1")
    _, sing, vt = np.linalg.svd(net.m, full_matrices=False)
    d = int(np.sum(sing > max(sing.max(initial=0.0), 1e-300) * 1e-10))
    if d > max_rank:
        raise ValueError(
            f"rank {d} is above max_rank={max_rank}: exact enumeration grows like H^rank"
        )
    if d == 0:  # every unit sees a constant current: one region
        states = net.unit_states(np.zeros((1, r)))
        return _verified(net, states, 1, start, {"dimension": 0.0})
    red = _reduce(net, vt[:d].T)

    # A box that holds every fixed point: the map's range (clipped ReLU), a proven radius
    # (ReLU), else the hull of all vertices with the boxes on its border kept.
    relu = net.nonlinearity == "relu"
    keep_boundary = False
    if not relu:
        top = np.stack([np.minimum(red.mix, 0).sum(1), np.maximum(red.mix, 0).sum(1)])
    else:
        rho = _relu_radius(red) if prune else None
        if rho is not None:
            top = np.stack([-np.full(d, rho), np.full(d, rho)])
        else:
            top, keep_boundary = _vertex_box(red, max_events), True
    span = np.maximum(top[1] - top[0], 1e-9 * (1 + np.abs(top).max()))
    top = top + np.array([[-1.0], [1.0]]) * (1e-3 * span + 1e-6)
    scale = 1.0 + np.abs(top).max() * np.linalg.norm(red.g, axis=1).max() + np.abs(red.h).max()
    tol = 1e-9 * scale
    rng = np.random.default_rng(direction_seed)
    c_dir = rng.normal(size=d)
    c_dir /= np.linalg.norm(c_dir)

    all_units = np.arange(net.n_units)
    if prune:
        leaves, n_boxes = _prune(red, top, keep_boundary, leaf_planes, max_depth=30 * d)
    else:
        leaves, n_boxes = [(top, all_units, np.zeros(net.n_units, dtype=np.int64))], 1
    found: list[np.ndarray] = []
    n_regions = 0
    for box, crossing, centre_states in leaves:
        fixed = np.setdiff1d(all_units, crossing)
        fixed_contrib = red.kappa[fixed, centre_states[fixed]].sum(axis=0)
        states, count = _enumerate(red, crossing, fixed_contrib, box, tol, c_dir, max_events)
        found += states
        n_regions += count
    states = np.array(found, dtype=np.int64).reshape(-1, net.n_units)
    extra = {"dimension": float(d), "boxes": float(n_boxes), "leaves": float(len(leaves))}
    return _verified(net, states, n_regions, start, extra)


def _verified(
    net: PiecewiseLinearRNN,
    states: np.ndarray,
    n_regions: int,
    start: float,
    extra: dict[str, float],
) -> FixedPoints:
    """Re-derive each candidate region's fixed point from scratch and keep those inside."""
    states = np.unique(states, axis=0) if states.size else states.reshape(0, net.n_units)
    jac, const = net.affine_map(states)
    z = _solve(np.eye(net.rank) - jac, const)
    ok = np.all(np.isfinite(z), axis=1)
    scale = 1.0 + np.abs(z[ok]).max(initial=0.0) * np.abs(net.m).sum(1).max()
    ok[ok] = net.consistent(z[ok], states[ok], 1e-7 * scale)
    out = _finish(net, z[ok], states[ok], n_regions, start, "region enumeration", 1e-7 * scale)
    out.extra.update(extra)
    return out

"""Velocity decoding (``vel R2``): ridge regression with nlb_tools' cross-validated alpha.

The ridge cross-validation solves all 5 folds x 9 alphas from per-fold Gram matrices (one
eigendecomposition per fold) instead of 45 fits; the rates are streamed in float64 row
blocks (:class:`Rows`), never copied whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from nlbsuite.errors import UserError, require
from nlbsuite.scoring.stats import R2, r2_from_sums

# nlb_tools' constants: GridSearchCV(Ridge(), {"alpha": ALPHAS}, cv=N_FOLDS).
ALPHAS = np.logspace(-4, 0, 9)
N_FOLDS = 5


@dataclass
class RidgeFit:
    """A ridge decoder chosen as ``GridSearchCV(Ridge(), {"alpha": ALPHAS})`` chooses it.

    ``coef``: (feature, output); ``intercept``: (output,); ``cv_scores``: mean R2 over
    the folds for each alpha; ``x_center``: the feature shift used inside the solver.
    """

    alpha: float
    coef: np.ndarray
    intercept: np.ndarray
    cv_scores: np.ndarray
    x_center: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions for ``x``: (sample, feature) -> (sample, output)."""
        return (np.asarray(x, dtype=np.float64) - self.x_center) @ self.coef + self.intercept


def ridge_cv(
    x: np.ndarray | Rows, y: np.ndarray, alphas: np.ndarray = ALPHAS, n_folds: int = N_FOLDS
) -> RidgeFit:
    """Ridge regression with intercept, alpha chosen by unshuffled K-fold CV, refit on all.

    ``x``: (sample, feature); ``y``: (sample, output). Reproduces scikit-learn's
    ``GridSearchCV(Ridge(), {"alpha": alphas})`` (``KFold(n_folds)`` without shuffling, score
    = R2 averaged over outputs, mean over folds, first best alpha). One pass over ``x``
    accumulates per-fold Gram matrices; each fold is then one eigendecomposition for all
    alphas, and the fold scores come from the Gram matrices without predicting.
    """
    rows = x if isinstance(x, Rows) else Rows.from_matrix(np.asarray(x))
    y = np.asarray(y, dtype=np.float64)
    n, p, q = rows.n_rows, rows.n_features, y.shape[1]
    require(n >= n_folds, f"velocity decoding needs at least {n_folds} train samples, got {n}")
    sizes = np.full(n_folds, n // n_folds)
    sizes[: n % n_folds] += 1
    bounds = np.concatenate([[0], np.cumsum(sizes)])

    # Any shift gives the same fit; one near the mean (the first block's) keeps the Gram
    # matrices well conditioned without an extra pass over x.
    x_center, y_center = None, y.mean(axis=0)
    gram = np.zeros((n_folds, p, p))
    cross = np.zeros((n_folds, p, q))
    sum_x = np.zeros((n_folds, p))
    sum_y = np.zeros((n_folds, q))
    sum_yy = np.zeros((n_folds, q))
    for start, block in rows.blocks():
        if x_center is None:
            x_center = block.mean(axis=0)
        block -= x_center
        stop = start + len(block)
        for f in range(n_folds):
            lo, hi = max(start, bounds[f]), min(stop, bounds[f + 1])
            if lo >= hi:
                continue
            d = block[lo - start : hi - start]
            e = y[lo:hi] - y_center
            gram[f] += d.T @ d
            cross[f] += d.T @ e
            sum_x[f] += d.sum(axis=0)
            sum_y[f] += e.sum(axis=0)
            sum_yy[f] += np.einsum("ij,ij->j", e, e)

    if not (np.isfinite(gram).all() and np.isfinite(cross).all()):
        raise UserError(
            f"{rows.what}: NaN or infinite rate predictions in trials used for velocity decoding"
        )
    totals = (gram.sum(0), cross.sum(0), sum_x.sum(0), sum_y.sum(0))
    alphas = np.asarray(alphas, dtype=np.float64)
    scores = np.empty((n_folds, len(alphas)))
    for f in range(n_folds):
        n_train = n - sizes[f]
        g, c, sx, sy = (
            t - part[f] for t, part in zip(totals, (gram, cross, sum_x, sum_y), strict=True)
        )
        mx, my = sx / n_train, sy / n_train
        gc = g - n_train * np.outer(mx, mx)
        cc = c - n_train * np.outer(mx, my)
        lam, vecs = np.linalg.eigh(gc)
        proj = vecs.T @ cc  # (p, q)
        coefs = vecs @ (proj / (lam[:, None] + alphas[:, None, None]))  # (alpha, p, q)
        icpt = my - mx @ coefs  # (alpha, q), shifted coordinates
        # Residual sum of squares on the held-out fold, expanded over its Gram statistics.
        ss_res = (
            sum_yy[f]
            - 2 * (coefs * cross[f]).sum(axis=1)
            - 2 * icpt * sum_y[f]
            + (coefs * (gram[f] @ coefs)).sum(axis=1)
            + 2 * icpt * (sum_x[f] @ coefs)
            + sizes[f] * icpt**2
        )
        ss_tot = sum_yy[f] - sum_y[f] ** 2 / sizes[f]
        scores[f] = r2_from_sums(ss_res, np.broadcast_to(ss_tot, ss_res.shape)).mean(axis=1)

    mean_scores = scores.mean(axis=0)
    best = int(np.argmax(np.where(np.isnan(mean_scores), -np.inf, mean_scores)))
    alpha = float(alphas[best])
    g, c, sx, sy = totals
    mx, my = sx / n, sy / n
    gc = g - n * np.outer(mx, mx)
    gc.flat[:: p + 1] += alpha
    coef = np.linalg.solve(gc, c - n * np.outer(mx, my))
    intercept = my - mx @ coef + y_center
    return RidgeFit(alpha, coef, intercept, mean_scores, x_center)



@dataclass
class Rows:
    """The matrix ``concatenate(parts, axis=2)[trials].reshape(-1, features)[keep]``.

    ``parts``: arrays (trial, time, feature_i) in any float dtype; ``trials``: selected
    trials in order; ``keep``: row mask over the selected trials' rows, or None.
    """

    parts: list[np.ndarray]
    trials: np.ndarray
    keep: np.ndarray | None
    what: str = "rates"
    block_rows: int = 16384

    @classmethod
    def from_matrix(cls, x: np.ndarray) -> Rows:
        return cls([x[:, None, :]], np.arange(len(x)), None)

    @property
    def n_bins(self) -> int:
        return self.parts[0].shape[1]

    @property
    def n_rows(self) -> int:
        return int(self.keep.sum()) if self.keep is not None else len(self.trials) * self.n_bins

    @property
    def n_features(self) -> int:
        return sum(p.shape[2] for p in self.parts)

    def row_trial(self) -> np.ndarray:
        """Trial (position in ``trials``) of each kept row."""
        rt = np.repeat(np.arange(len(self.trials)), self.n_bins)
        return rt if self.keep is None else rt[self.keep]

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, float64 block (row, feature)) in row order; blocks are fresh arrays."""
        t_block = max(1, self.block_rows // self.n_bins)
        contiguous = len(self.trials) == 0 or np.array_equal(
            self.trials, np.arange(self.trials[0], self.trials[0] + len(self.trials))
        )
        row = 0
        for t0 in range(0, len(self.trials), t_block):
            sel = self.trials[t0 : t0 + t_block]
            if contiguous:
                chunks = [p[sel[0] : sel[-1] + 1] for p in self.parts]
            else:
                chunks = [p[sel] for p in self.parts]
            block = np.concatenate(chunks, axis=2, dtype=np.float64).reshape(-1, self.n_features)
            if self.keep is not None:
                block = block[self.keep[t0 * self.n_bins : (t0 + len(sel)) * self.n_bins]]
            yield row, block
            row += len(block)

    def predict(self, fit: RidgeFit) -> np.ndarray:
        """(row, output) predictions; raises for non-finite rates."""
        pred = np.concatenate(
            [fit.predict(b) for _, b in self.blocks()] or [np.zeros((0, fit.coef.shape[1]))]
        )
        if not np.isfinite(pred).all():
            raise UserError(
                f"{self.what}: NaN or infinite rate predictions in trials used for velocity "
                "decoding"
            )
        return pred


def velocity_stats(
    train_parts: list[np.ndarray],
    train_behavior: np.ndarray,
    train_mask: np.ndarray,
    eval_parts: list[np.ndarray],
    eval_behavior: np.ndarray,
    eval_mask: np.ndarray,
    key: str,
) -> list[R2]:
    """One :class:`R2` over eval trials per decode mask (column of the masks)."""
    n_eval = len(eval_parts[0])
    stats = []
    for i in range(train_mask.shape[1]):
        tr_trials, ev_trials = np.flatnonzero(train_mask[:, i]), np.flatnonzero(eval_mask[:, i])
        require(len(ev_trials) > 0, f"eval_decode_mask column {i} selects no eval trial")
        tr_y = train_behavior[tr_trials].reshape(-1, train_behavior.shape[-1])
        ev_y = eval_behavior[ev_trials].reshape(-1, eval_behavior.shape[-1])
        tr_keep = ~np.isnan(tr_y[:, 0])
        ev_keep = ~np.isnan(ev_y[:, 0])
        tr_rows = Rows(
            train_parts, tr_trials, None if tr_keep.all() else tr_keep, f"{key}/train_rates"
        )
        ev_rows = Rows(
            eval_parts, ev_trials, None if ev_keep.all() else ev_keep, f"{key}/eval_rates"
        )
        fit = ridge_cv(tr_rows, tr_y[tr_keep])
        pred = ev_rows.predict(fit)
        require(len(pred) > 0, f"eval_behavior: no non-NaN sample for decode mask {i}")
        row_trial = ev_trials[ev_rows.row_trial()]
        stats.append(R2.build(ev_y[ev_keep], pred, row_trial, n_eval))
    return stats


"""Pure-numpy evaluation of saved XGBoost boosters: predictions and TreeSHAP contributions.

Scoring needs only the trees, not XGBoost (whose import pulls scikit-learn and SciPy and costs
most of the ``riskmodel score`` start-up budget). :class:`TreeEnsemble` reads the bytes of
``Booster.save_raw("ubj")`` (or ``"json"``) and evaluates them with the same float32 arithmetic
as XGBoost's CPU predictor:

* features and thresholds are float32 and a row goes left when ``x < threshold``; a missing
  value (NaN) follows the node's default direction;
* the margin starts at the base margin and adds the trees' leaf values one tree at a time in
  float32; ``count:poisson`` predicts ``exp(margin)``, ``reg:squarederror`` the margin.

Contributions are path-dependent TreeSHAP (``pred_contribs=True``). A leaf ``l`` with value
``v`` adds to each feature ``j`` on its path ``v (o_j - z_j) W_j`` where ``z_j`` is the product
of the cover ratios (child / parent ``sum_hessian``) of ``j``'s splits on the path, ``o_j`` is 1
when the row satisfies all of them, and ``W_j = sum_k k!(d-k-1)!/d! e_k(...)`` is the Shapley
weight over the other path features. Since ``k!(d-k-1)!/d! = integral_0^1 t^k (1-t)^(d-k-1) dt``,
``W_j = integral_0^1 prod_{i != j} (z_i (1 - t) + o_i t) dt``: a polynomial of degree ``d - 1``
that a few Gauss-Legendre nodes integrate exactly. The ``o`` are 0/1, so each leaf's
contributions take one of ``2^d`` values per path feature; they are tabulated once per model
(on the first :meth:`TreeEnsemble.contributions`, vectorised over leaves and patterns) and a
row only looks its patterns up (no Python loop over rows or leaves). Padding a path with null
features (``z = o = 1``) changes no Shapley value, so all leaves share one table width.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from riskmodel.model import _ubjson

__all__ = ["OBJECTIVES", "TreeEnsemble"]

OBJECTIVES = ("count:poisson", "reg:squarederror")
MAX_SHAP_FEATURES_PER_PATH = 12  # 2^d table entries per leaf and path feature
_ROW_BLOCK = 512  # rows per block in contributions: bounds the (d, leaves, rows) temporaries


class TreeEnsemble:
    """A boosted tree ensemble (single target) evaluated with numpy only.

    Build it with :meth:`from_bytes`; the constructor is internal.

    Attributes
    ----------
    feature_names : list of str
        Feature names in the model's column order (``f0``, ``f1``, ... when the model has none).
    n_features : int
        Number of input columns.
    objective : str
        ``"count:poisson"`` or ``"reg:squarederror"``.
    n_trees : int
        Number of trees kept (those of the first ``n_iterations`` boosting rounds).
    n_iterations : int
        Number of boosting rounds kept.
    base_margin : float
        The margin every prediction starts from (``log(base_score)`` for Poisson).
    """

    def __init__(
        self,
        *,
        feature_names: list[str],
        objective: str,
        base_margin: float,
        n_iterations: int,
        trees: list[dict[str, np.ndarray]],
    ) -> None:
        self.feature_names = feature_names
        self.n_features = len(feature_names)
        self.objective = objective
        self.base_margin = float(np.float32(base_margin))
        self.n_iterations = n_iterations
        self.n_trees = len(trees)
        self._flatten(trees)
        self._shap: dict[str, Any] | None = None

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes, n_iterations: int | None = None) -> TreeEnsemble:
        """Read a model saved by ``Booster.save_raw("ubj")`` (or ``"json"``).

        Parameters
        ----------
        data : bytes
            The saved model: UBJSON, or JSON text (detected by its leading ``{"``).
        n_iterations : int, optional
            Keep only the first ``n_iterations`` boosting rounds, like XGBoost's
            ``iteration_range=(0, n_iterations)`` (e.g. ``best_iteration + 1``). Default: all.

        Returns
        -------
        TreeEnsemble

        Raises
        ------
        ValueError
            Malformed bytes, a model this evaluator does not support (other objectives,
            multi-class or multi-target models, DART, linear boosters, categorical splits) or
            ``n_iterations`` outside ``1 .. rounds``.
        """
        doc = _decode(bytes(data))
        try:
            return cls._from_doc(doc, n_iterations)
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            # A well-formed document that is not an XGBoost model (missing or mistyped field).
            raise ValueError(f"not an XGBoost model: {type(exc).__name__} {exc}") from None

    @classmethod
    def _from_doc(cls, doc: Any, n_iterations: int | None) -> TreeEnsemble:
        learner = doc["learner"]
        param = learner["learner_model_param"]
        n_features = int(param["num_feature"])
        if int(param.get("num_class", 0)) > 1:
            raise ValueError("unsupported model: multi-class (num_class > 1)")
        if int(param.get("num_target", 1)) > 1:
            raise ValueError("unsupported model: multi-target (num_target > 1)")
        objective = str(learner["objective"]["name"])
        if objective not in OBJECTIVES:
            raise ValueError(f"unsupported objective {objective!r} (supported: {OBJECTIVES})")
        booster = learner["gradient_booster"]
        if booster["name"] != "gbtree":
            raise ValueError(f"unsupported booster {booster['name']!r} (only gbtree)")
        names = [str(n) for n in learner.get("feature_names") or []]
        if not names:
            names = [f"f{i}" for i in range(n_features)]
        if len(names) != n_features:
            raise ValueError(f"{len(names)} feature names for {n_features} features")
        types = [str(t) for t in learner.get("feature_types") or []]
        if "c" in types:
            raise ValueError("unsupported model: categorical features")
        base_score = _base_score(param["base_score"])
        if objective == "count:poisson":
            if not base_score > 0:
                raise ValueError(f"count:poisson base_score must be > 0, not {base_score}")
            base_margin = float(np.log(np.float32(base_score)))  # margin = log(mean)
        else:
            base_margin = base_score

        model = booster["model"]
        trees = model["trees"]
        n_trees = int(model["gbtree_model_param"]["num_trees"])
        if len(trees) != n_trees:
            raise ValueError(f"{len(trees)} trees, num_trees says {n_trees}")
        indptr = model.get("iteration_indptr")
        if indptr is None or len(indptr) == 0:  # older models: one group of parallel trees
            per = max(int(model["gbtree_model_param"].get("num_parallel_tree", 1)), 1)
            indptr = np.arange(0, n_trees + 1, per)
        indptr = np.asarray(indptr, dtype=np.int64)
        if indptr[0] != 0 or indptr[-1] != n_trees or np.any(np.diff(indptr) < 0):
            raise ValueError("inconsistent iteration_indptr")
        rounds = len(indptr) - 1
        if n_iterations is None:
            n_iterations = rounds
        if not 1 <= n_iterations <= rounds:
            raise ValueError(f"n_iterations must be in 1..{rounds}, not {n_iterations}")
        kept = [_tree_arrays(trees[i], n_features, i) for i in range(int(indptr[n_iterations]))]
        return cls(
            feature_names=names,
            objective=objective,
            base_margin=base_margin,
            n_iterations=int(n_iterations),
            trees=kept,
        )

    def _flatten(self, trees: list[dict[str, np.ndarray]]) -> None:
        """Renumber the reachable nodes of all trees into one array, breadth first.

        The two children of a node get adjacent ids (``right = left + 1``) so a step is
        ``node = left[node] + goes_right``; a leaf points to itself with a NaN threshold
        (``x >= NaN`` is false), so rows that reach a leaf early stay there.
        """
        F = self.n_features
        sizes = np.array([len(t["left"]) for t in trees], dtype=np.int64)
        offs = np.concatenate([[0], np.cumsum(sizes)])
        if trees:
            cat = {k: np.concatenate([t[k] for t in trees]) for k in trees[0]}
        else:
            cat = {k: np.zeros(0, np.int64) for k in ("left", "right", "feat", "dl")}
            cat |= {k: np.zeros(0, np.float32) for k in ("thr", "cover", "gain")}
        tree_of = np.repeat(np.arange(len(trees)), sizes)
        is_int = cat["left"] >= 0
        left = np.where(is_int, cat["left"] + offs[tree_of], -1)
        right = np.where(is_int, cat["right"] + offs[tree_of], -1)

        total = int(offs[-1])
        new_id = np.full(total, -1, dtype=np.int64)
        frontier = offs[:-1].copy()  # the roots, old ids
        paths = np.zeros((len(frontier), 0), dtype=np.int64)  # ancestors, old ids
        dirs = np.zeros((len(frontier), 0), dtype=bool)  # went right below each ancestor
        leaf_old, leaf_paths, leaf_dirs, leaf_depth = [], [], [], []
        next_id = 0
        max_depth = int(sizes.max(initial=0))
        for depth in range(max_depth + 1):
            if len(frontier) == 0:
                break
            if np.any(new_id[frontier] >= 0) or len(np.unique(frontier)) != len(frontier):
                raise ValueError("malformed tree: a node is reached twice")
            new_id[frontier] = np.arange(next_id, next_id + len(frontier))
            next_id += len(frontier)
            leaf = ~is_int[frontier]
            leaf_old.append(frontier[leaf])
            leaf_paths.append(paths[leaf])
            leaf_dirs.append(dirs[leaf])
            leaf_depth.append(np.full(int(leaf.sum()), depth))
            parents = frontier[~leaf]
            frontier = np.stack([left[parents], right[parents]], axis=1).ravel()
            paths = np.repeat(np.concatenate([paths[~leaf], parents[:, None]], axis=1), 2, 0)
            d = np.tile([False, True], len(parents))[:, None]
            dirs = np.concatenate([np.repeat(dirs[~leaf], 2, axis=0), d], axis=1)
        else:
            if len(frontier):
                raise ValueError("malformed tree: a cycle among the nodes")

        reach = np.flatnonzero(new_id >= 0)
        n = len(reach)
        order = np.empty(n, dtype=np.int64)
        order[new_id[reach]] = reach  # new id -> old id
        int_new = is_int[order]
        self._left = np.where(int_new, new_id[np.maximum(left[order], 0)], np.arange(n))
        # Missing values: the feature column of the NaN->-inf copy sends them left, that of the
        # NaN->+inf copy right (see _leaves); leaves read column 0 against a NaN threshold.
        feat = cat["feat"][order]
        self._feat2 = np.where(int_new, feat + F * (1 - cat["dl"][order]), 0)
        self._thr = np.where(int_new, cat["thr"][order], np.float32(np.nan)).astype(np.float32)
        self._value = cat["thr"][order].astype(np.float32)  # leaves keep their value there
        self._roots = new_id[offs[:-1]]
        self._depth = len(leaf_depth) - 1 if leaf_depth else 0

        # Per leaf: its path (new ids) for TreeSHAP, built on demand in _shap_tables.
        width = self._depth
        pad = [np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=-1) for p in leaf_paths]
        padd = [np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in leaf_dirs]
        lo = np.concatenate(leaf_old) if leaf_old else np.zeros(0, np.int64)
        lp = np.concatenate(pad) if pad else np.zeros((0, 0), np.int64)
        self._leaf = new_id[lo]
        self._leaf_path = np.where(lp >= 0, new_id[np.maximum(lp, 0)], -1)
        self._leaf_dirs = np.concatenate(padd) if padd else np.zeros((0, 0), bool)
        self._leaf_depth = np.concatenate(leaf_depth) if leaf_depth else np.zeros(0, np.int64)
        self._node_feat = np.where(int_new, feat, -1)
        self._cover = cat["cover"][order].astype(np.float32)
        self._gain = cat["gain"][order].astype(np.float64)

    def total_gain(self) -> dict[str, float]:
        """Summed loss reduction of the splits on each feature over the trees kept: XGBoost's
        ``get_score(importance_type="total_gain")`` (features without a split are left out).

        Returns
        -------
        dict of str to float
        """
        m = self._node_feat >= 0
        g = np.bincount(self._node_feat[m], weights=self._gain[m], minlength=self.n_features)
        return {n: float(v) for n, v, used in zip(
            self.feature_names, g, np.bincount(self._node_feat[m], minlength=self.n_features) > 0,
            strict=True) if used}  # fmt: skip

    # -- evaluation ----------------------------------------------------------------------------
    def _rows(self, X: Any) -> np.ndarray:
        """``X`` as float32 (n, n_features), checked."""
        arr = np.asarray(X, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[1] != self.n_features:
            raise ValueError(f"X must have shape (n, {self.n_features}), not {arr.shape}")
        return arr

    def _leaves(self, X: np.ndarray) -> np.ndarray:
        """Leaf (new id) of every row in every tree, shape (n_trees, n)."""
        n = X.shape[0]
        # Columns [0, F): NaN -> -inf (goes left); [F, 2F): NaN -> +inf (goes right). A node
        # whose default is left reads the first copy, so `x >= threshold` decides everything.
        both = np.empty((n, 2 * self.n_features), dtype=np.float32)
        nan = np.isnan(X)
        both[:, : self.n_features] = np.where(nan, -np.inf, X)
        both[:, self.n_features :] = np.where(nan, np.inf, X)
        flat = both.ravel()
        row_off = (np.arange(n, dtype=np.intp) * (2 * self.n_features))[None, :]
        node = np.broadcast_to(self._roots[:, None], (self.n_trees, n)).astype(np.intp)
        for _ in range(self._depth):
            right = flat[self._feat2[node] + row_off] >= self._thr[node]
            node = self._left[node] + right
        return node

    def margin(self, X: Any) -> np.ndarray:
        """Raw margin (log of the mean for Poisson), like ``output_margin=True``.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            Features in the model's column order; NaN is missing.

        Returns
        -------
        numpy.ndarray of float32, shape (n,)
        """
        X = self._rows(X)
        out = np.full(X.shape[0], self.base_margin, dtype=np.float32)
        if self.n_trees:
            vals = self._value[self._leaves(X)]
            for t in range(self.n_trees):  # tree by tree in float32, as XGBoost accumulates
                out += vals[t]
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Predictions in output space (``exp(margin)`` for Poisson).

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            Features in the model's column order; NaN is missing.

        Returns
        -------
        numpy.ndarray of float32, shape (n,)
        """
        m = self.margin(X)
        return np.exp(m) if self.objective == "count:poisson" else m

    def contributions(self, X: Any) -> np.ndarray:
        """Path-dependent TreeSHAP contributions, like ``pred_contribs=True``.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            Features in the model's column order; NaN is missing.

        Returns
        -------
        numpy.ndarray of float32, shape (n, n_features + 1)
            One column per feature and a last column, the bias: the base margin plus every
            tree's expected value under its covers. Each row sums to :meth:`margin` (up to
            float32 rounding).

        Raises
        ------
        ValueError
            A path with more than ``MAX_SHAP_FEATURES_PER_PATH`` distinct features.

        Notes
        -----
        The first call builds the per-leaf tables (about 30 ms for 100 trees of depth 5) and
        keeps them; ``contributions(np.empty((0, n_features)))`` builds them ahead of time.
        """
        X = self._rows(X)
        tab = self._shap_tables()
        out = np.empty((X.shape[0], self.n_features + 1), dtype=np.float32)
        for start in range(0, X.shape[0], _ROW_BLOCK):
            block = X[start : start + _ROW_BLOCK]
            out[start : start + len(block)] = self._contrib_block(block, tab).T
        return out

    def _contrib_block(self, X: np.ndarray, tab: dict[str, Any]) -> np.ndarray:
        n = X.shape[0]
        res = np.zeros((self.n_features + 1, n), dtype=np.float64)
        res[-1] = tab["bias"]
        if not tab["groups"]:
            return res
        # fail[r, i]: row i fails the requirement r: r < N "go left at internal node r",
        # N <= r < 2N "go right at node r - N", 2N: padding (never fails).
        xt = np.ascontiguousarray(X.T)
        vals = xt[tab["int_feat"]]
        go_left = (vals < tab["int_thr"][:, None]) | (np.isnan(vals) & tab["int_dl"][:, None])
        n_int = len(go_left)
        fail = np.zeros((2 * n_int + 1, n), dtype=tab["mask_dtype"])
        np.logical_not(go_left, out=fail[:n_int], casting="unsafe")
        fail[n_int : 2 * n_int] = go_left
        # mask[l, i]: bit k set when row i fails any split on leaf l's k-th path feature.
        mask = np.zeros((len(tab["bits"]), n), dtype=tab["mask_dtype"])
        for p in range(tab["req"].shape[1]):
            mask |= fail[tab["req"][:, p]] * tab["bits"][:, p, None]
        # One index per (leaf, row) serves all d path features (a cast costs as much as the
        # gather itself); then per feature one row selection and one sum.
        idx = np.add(mask, tab["leaf_off"], dtype=np.intp)
        table = tab["table"]
        vals = np.empty((len(table),) + idx.shape, dtype=np.float32)
        for k in range(len(table)):
            np.take(table[k], idx, out=vals[k], mode="clip")  # in range; unbuffered
        vals = vals.reshape(-1, n)
        for f, rows in tab["groups"]:
            res[f] += vals[rows].sum(axis=0, dtype=np.float64)
        return res

    # -- TreeSHAP tables -----------------------------------------------------------------------
    def _shap_tables(self) -> dict[str, Any]:
        """Per (leaf, path feature) the contribution for each of the ``2^d`` fail patterns.

        Built on the first call to :meth:`contributions` and kept (plain scoring never pays).
        """
        if self._shap is not None:
            return self._shap
        F = self.n_features
        path, went_right, depth = self._leaf_path, self._leaf_dirs, self._leaf_depth
        n_leaves, width = path.shape
        valid = path >= 0
        pos = np.arange(width)
        nxt = np.concatenate([path[:, 1:], np.full((n_leaves, 1), -1)], axis=1)
        child = np.where(pos[None, :] + 1 < depth[:, None], nxt, self._leaf[:, None])
        safe = np.maximum(path, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            # XGBoost's zero fraction: child cover / parent cover, in float32.
            zpos = np.where(valid, self._cover[child] / self._cover[safe], np.float32(1))
        fpos = np.where(valid, self._node_feat[safe], -1)

        # Slot of each path position: the rank of its feature's first occurrence on the path.
        same = (fpos[:, :, None] == fpos[:, None, :]) & valid[:, :, None] & valid[:, None, :]
        # argmax: the first True (a valid position always matches itself); stumps-only: empty.
        first = np.argmax(same, axis=2) if width else np.zeros((n_leaves, 0), dtype=np.intp)
        is_first = (first == pos[None, :]) & valid
        rank = np.cumsum(is_first, axis=1) - 1
        d = int(is_first.sum(axis=1).max(initial=0))
        if d > MAX_SHAP_FEATURES_PER_PATH:
            raise ValueError(
                f"contributions: a path has {d} distinct features "
                f"(at most {MAX_SHAP_FEATURES_PER_PATH} supported)"
            )
        rows = np.arange(n_leaves)
        slot = np.where(valid, rank[rows[:, None], first], d)  # padding -> spare column d
        z = np.ones((n_leaves, d + 1))
        feat = np.full((n_leaves, d + 1), -1)
        for p in range(width):  # one slot per leaf and position: no repeated index
            z[rows, slot[:, p]] *= zpos[:, p]
            feat[rows, slot[:, p]] = np.where(valid[:, p], fpos[:, p], feat[rows, slot[:, p]])
        z, feat = z[:, :d], feat[:, :d]
        value = self._value[self._leaf].astype(np.float64)
        bias = self.base_margin + float(np.sum(value * np.prod(z, axis=1)))

        int_ids = np.flatnonzero(self._node_feat >= 0)
        n_int = len(int_ids)
        int_row = np.full(len(self._node_feat), -1)
        int_row[int_ids] = np.arange(n_int)
        req = np.where(valid, int_row[safe] + n_int * went_right, 2 * n_int)
        mask_dtype = np.uint8 if d <= 8 else np.uint16
        bits = np.where(valid, np.left_shift(1, np.minimum(slot, max(d - 1, 0))), 0)

        n_pat = 1 << d
        if n_leaves * n_pat * d > 1 << 26:
            raise ValueError(f"contributions: table of {n_leaves * n_pat * d} values is too large")
        # table[k, l * n_pat + m]: contribution of leaf l to its k-th path feature for pattern m.
        table = np.empty((d, n_leaves * n_pat), dtype=np.float32)
        chunk = max(1, (1 << 20) // max(n_pat * d, 1))
        for l0 in range(0, n_leaves if d else 0, chunk):  # d == 0: stumps only, no features
            t = _leaf_table(value[l0 : l0 + chunk], z[l0 : l0 + chunk])  # (d, leaves, P)
            table[:, l0 * n_pat : (l0 + t.shape[1]) * n_pat] = t.reshape(d, -1)
        # Rows k * n_leaves + l of the gathered (d, leaves, rows) values, grouped by feature.
        ls, ks = np.nonzero(feat >= 0)
        ef = feat[ls, ks]
        order = np.argsort(ef, kind="stable")
        entry_rows, ef = (ks * n_leaves + ls)[order], ef[order]
        bounds = np.flatnonzero(np.diff(ef)) + 1
        groups = [
            (int(ef[e0]), entry_rows[e0:e1])
            for e0, e1 in zip(np.r_[0, bounds], np.r_[bounds, len(ef)], strict=True)
            if e1 > e0
        ]
        self._shap = {
            "bias": bias,
            "int_feat": self._node_feat[int_ids],
            "int_thr": self._thr[int_ids],
            "int_dl": self._feat2[int_ids] < F,
            "req": req.astype(np.intp),
            "bits": bits.astype(mask_dtype),
            "mask_dtype": mask_dtype,
            "leaf_off": (np.arange(n_leaves, dtype=np.intp) * n_pat)[:, None],
            "table": table,
            "groups": groups,
        }
        return self._shap


def _leaf_table(value: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Contribution of each leaf to each path feature for every fail pattern.

    Parameters
    ----------
    value : numpy.ndarray, shape (L,)
        Leaf values.
    z : numpy.ndarray, shape (L, d)
        Zero fractions of the path features (1 for padding).

    Returns
    -------
    numpy.ndarray, shape (d, L, 2^d)
        ``[k, l, m]``: the contribution to path feature ``k`` of leaf ``l`` when the row fails
        exactly the path features whose bits are set in ``m`` (``o_k = 1 - bit k``).
    """
    n_leaves, d = z.shape
    m = np.arange(1 << d)
    o = [(1.0 - ((m >> k) & 1))[None, :] for k in range(d)]  # (1, P) each
    zk = [z[:, k, None] for k in range(d)]  # (L, 1) each
    weight = np.zeros((d, n_leaves, 1 << d))
    # W_k = int_0^1 prod_{i != k} (z_i (1 - t) + o_i t) dt has degree d - 1: exact with
    # d // 2 + 1 Gauss-Legendre nodes. "All factors but k" from prefix and suffix products,
    # which unlike a division stay exact when a factor is 0.
    nodes, weights = np.polynomial.legendre.leggauss(d // 2 + 1)
    for x, w in zip(nodes, weights, strict=True):
        t = (x + 1) / 2
        fac = [zk[k] * (1 - t) + o[k] * t for k in range(d)]
        suffix = [np.ones((n_leaves, 1 << d))]
        for k in range(d - 1, 0, -1):
            suffix.append(suffix[-1] * fac[k])
        prefix = np.full((n_leaves, 1 << d), w / 2)  # the rule's weight on [0, 1]
        for k in range(d):
            weight[k] += prefix * suffix[d - 1 - k]
            if k < d - 1:
                prefix = prefix * fac[k]
    for k in range(d):
        weight[k] *= value[:, None] * (o[k] - zk[k])
    return weight


# -- reading -----------------------------------------------------------------------------------
def _decode(data: bytes) -> Any:
    """The model document: JSON text when it starts with ``{"`` (or ``{}``), else UBJSON."""
    head = data[:64].lstrip()
    if head[:1] == b"{" and head[1:].lstrip()[:1] in (b'"', b"}"):
        import json  # only for JSON models: the UBJSON path needs neither json nor re

        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ValueError(f"invalid JSON model: {exc}") from None
    return _ubjson.loads(data)


def _base_score(raw: Any) -> float:
    """``base_score`` of ``learner_model_param``: ``"[1.03E-2]"`` (XGBoost 3) or ``"0.5"``."""
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("[") and text.endswith("]"):
            raw = [p for p in text[1:-1].split(",") if p.strip()]
        else:
            raw = [text]
    elif not isinstance(raw, list | np.ndarray):
        raw = [raw]
    if len(raw) != 1:
        raise ValueError(f"unsupported model: {len(raw)} base scores (multi-target)")
    value = float(raw[0])
    if not math.isfinite(value):
        raise ValueError(f"base_score is not finite: {value}")
    return value


def _tree_arrays(tree: dict[str, Any], n_features: int, index: int) -> dict[str, np.ndarray]:
    """The arrays of one tree, checked (so that a malformed model cannot index out of range)."""
    param = tree["tree_param"]
    if int(param.get("size_leaf_vector", 1)) > 1:
        raise ValueError(f"unsupported model: vector leaves (multi-target) in tree {index}")
    n = int(param["num_nodes"])

    def arr(key: str, dtype: type) -> np.ndarray:
        a = np.asarray(tree[key], dtype=dtype)
        if a.shape != (n,):
            raise ValueError(f"tree {index}: {key} has shape {a.shape}, expected ({n},)")
        return a

    if np.any(np.asarray(tree.get("split_type", []), dtype=np.int64) != 0) or len(
        tree.get("categories_nodes", [])
    ):
        raise ValueError(f"unsupported model: categorical splits in tree {index}")
    left, right = arr("left_children", np.int64), arr("right_children", np.int64)
    feat = arr("split_indices", np.int64)
    internal = left >= 0
    if n < 1 or np.any(internal != (right >= 0)):
        raise ValueError(f"malformed tree {index}: inconsistent children")
    if np.any((left[internal] < 1) | (left[internal] >= n) | (right[internal] < 1)) or np.any(
        (right[internal] >= n) | (left[internal] == right[internal])
    ):
        raise ValueError(f"malformed tree {index}: child index out of range")
    if np.any((feat[internal] < 0) | (feat[internal] >= n_features)):
        raise ValueError(f"malformed tree {index}: split feature out of range")
    return {
        "left": left,
        "right": right,
        "feat": np.where(internal, feat, 0),
        "thr": arr("split_conditions", np.float32),
        "dl": (arr("default_left", np.int64) != 0).astype(np.int64),
        "cover": arr("sum_hessian", np.float32),
        # the split's loss reduction (feature importance); absent in hand-made models
        "gain": arr("loss_changes", np.float32)
        if "loss_changes" in tree
        else np.zeros(n, np.float32),
    }

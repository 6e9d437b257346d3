"""Speaker clustering of d-vector windows with an estimated speaker count.

Spectral clustering on a refined cosine affinity, with the count chosen by the normalized
maximum eigengap and the pruning level auto-tuned per recording (NME-SC, Park et al. 2019),
which suits GE2E d-vectors such as resemblyzer's. A cheap two-cluster check decides between one
speaker and several, since an eigengap cannot say "one".
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigh
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)


def _pruned_affinity(sim: np.ndarray, p: int) -> np.ndarray:
    """Keep each row's ``p`` strongest links, binarized, then symmetrize (NME-SC)."""
    n = sim.shape[0]
    aff = np.zeros_like(sim)
    idx = np.argsort(-sim, axis=1)[:, :p]
    aff[np.arange(n)[:, None], idx] = 1.0
    return np.maximum(aff, aff.T)


def _laplacian_spectrum(aff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    deg = aff.sum(axis=1)
    lap = np.diag(deg) - aff
    vals, vecs = eigh(lap)
    return vals, vecs


def _estimate(sim: np.ndarray, max_k: int) -> tuple[int, np.ndarray]:
    """(k, spectral embedding) choosing the pruning level with the best normalized eigengap ratio."""
    n = sim.shape[0]
    best = None
    p_max = max(2, min(n - 1, int(n * 0.25)))
    for p in sorted({max(2, int(round(x))) for x in np.linspace(2, p_max, 12)}):
        vals, vecs = _laplacian_spectrum(_pruned_affinity(sim, p))
        gaps = np.diff(vals[: max_k + 1])
        if gaps.size == 0:
            continue
        k = int(np.argmax(gaps)) + 1
        g = gaps.max() / max(vals[-1], 1e-9)
        ratio = p / max(g, 1e-9)
        if best is None or ratio < best[0]:
            best = (ratio, k, vecs)
    if best is None:
        return 1, np.zeros((n, 1))
    _, k, vecs = best
    return k, vecs


def cluster_embeddings(
    emb: np.ndarray, num_speakers: int | None, max_speakers: int, single_speaker_threshold: float,
    min_silhouette: float, seed: int = 0,
) -> np.ndarray:
    """Cluster label per row of ``emb`` (L2-normalized inside). ``num_speakers`` fixes the count."""
    n = emb.shape[0]
    if n == 0:
        return np.zeros(0, dtype=int)
    x = _normalize(emb.astype(np.float64))
    if num_speakers == 1 or n < 4:
        return np.zeros(n, dtype=int)
    sim = x @ x.T
    max_k = min(max_speakers, n - 1)
    if num_speakers is None:
        # One speaker or more? Two k-means centroids of one voice stay very similar.
        two = KMeans(2, n_init=4, random_state=seed).fit(x)
        c = _normalize(two.cluster_centers_)
        if float(c[0] @ c[1]) > single_speaker_threshold:
            return np.zeros(n, dtype=int)
        k, vecs = _estimate(sim, max_k)
        k = max(k, 2)
    else:
        k = min(num_speakers, n)
        _, vecs = _estimate(sim, max_k)
        if vecs.shape[1] < k:
            return KMeans(k, n_init=4, random_state=seed).fit_predict(x)
    spec = _normalize(vecs[:, :k]) if k > 1 else vecs[:, :1]
    labels = KMeans(k, n_init=8, random_state=seed).fit_predict(spec)
    if num_speakers is None and k > 1 and len(set(labels)) > 1:
        if silhouette_score(x, labels, metric="cosine") < min_silhouette:
            return np.zeros(n, dtype=int)
    return labels

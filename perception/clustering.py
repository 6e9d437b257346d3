"""Speaker clustering of d-vector windows with an estimated speaker count, and its refinement.

Two clusterers, picked per recording:

* ``cluster_embeddings``: spectral clustering on a refined cosine affinity, with the count chosen
  by the normalized maximum eigengap and the pruning level auto-tuned per recording (NME-SC,
  Park et al. 2019), which suits GE2E d-vectors such as resemblyzer's. A two-cluster check
  decides between one speaker and several, since an eigengap cannot say "one".
* ``cluster_with_pitch``: Ward clustering of d-vectors with each window's median pitch appended.
  resemblyzer hardly tells apart two voices that differ mainly in pitch (its centroids for them
  sit at cosine 0.87-0.92, as close as two halves of one speaker), while their window pitch
  medians barely overlap. It is used only when ``pitch_explained`` says pitch is a speaker cue
  in this recording: when the voices that the d-vectors separate share one pitch range, pitch
  differences are intonation, and splitting on them cuts speakers in two.

``refine`` then re-labels windows by Viterbi decoding against the cluster models with a switch
penalty, which repairs isolated windows that straddle a speaker change.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
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


def pitch_explained(labels: np.ndarray, pitch: np.ndarray) -> float:
    """Share of the window-pitch variance that lies between clusters (eta squared); NaN pitches skipped."""
    ok = np.isfinite(pitch)
    q, lab = pitch[ok], labels[ok]
    if len(q) < 3 or len(np.unique(lab)) < 2 or q.var() <= 0:
        return 0.0
    between = sum((lab == i).sum() * (q[lab == i].mean() - q.mean()) ** 2 for i in np.unique(lab))
    return float(between / len(q) / q.var())


def closest_centroids(labels: np.ndarray, emb: np.ndarray) -> float:
    """Cosine similarity of the two closest cluster centroids (-1 with fewer than two clusters)."""
    x = _normalize(emb.astype(np.float64))
    ids = np.unique(labels)
    if len(ids) < 2:
        return -1.0
    cents = _normalize(np.stack([x[labels == i].mean(0) for i in ids]))
    sim = cents @ cents.T
    np.fill_diagonal(sim, -1.0)
    return float(sim.max())


def cluster_with_pitch(emb: np.ndarray, pitch: np.ndarray, num_speakers: int | None, pitch_weight: float,
                       threshold: float) -> np.ndarray:
    """Ward clustering of [unit d-vector, pitch_weight * semitones]; the count from a distance cut.

    Ward's merge cost grows with cluster size, so ``threshold`` holds for one window hop and clips
    of tens of seconds (the 10-50 s clips AMUSE uses); re-tune it with ``embeddings_per_s``.
    """
    n = emb.shape[0]
    if n < 2:
        return np.zeros(n, dtype=int)
    p = np.where(np.isfinite(pitch), pitch, np.nanmedian(pitch) if np.isfinite(pitch).any() else 0.0)
    z = np.hstack([_normalize(emb.astype(np.float64)), pitch_weight * p[:, None]])
    tree = linkage(z, method="ward")
    if num_speakers:
        return fcluster(tree, t=min(num_speakers, n), criterion="maxclust") - 1
    return fcluster(tree, t=threshold, criterion="distance") - 1


def merge_small(labels: np.ndarray, emb: np.ndarray, min_windows: int) -> np.ndarray:
    """Fold clusters of fewer than ``min_windows`` windows into the nearest larger one; relabel 0..k-1."""
    x = _normalize(emb.astype(np.float64))
    while True:
        ids, counts = np.unique(labels, return_counts=True)
        if len(ids) == 1 or counts.min() >= min_windows:
            break
        s = ids[np.argmin(counts)]
        mean_s = x[labels == s].mean(0)
        target = max((i for i in ids if i != s), key=lambda i: float(x[labels == i].mean(0) @ mean_s))
        labels = np.where(labels == s, target, labels)
    return np.unique(labels, return_inverse=True)[1]


def refine(labels: np.ndarray, emb: np.ndarray, pitch: np.ndarray | None, starts: np.ndarray, hop: int,
           switch_penalty: float, pitch_weight: float, pitch_cap: float, iters: int = 3) -> np.ndarray:
    """Viterbi re-labelling of the windows in time order against each cluster's centroid (and pitch).

    A window scores cos(window, centroid) - pitch_weight * min(|pitch - cluster median|, pitch_cap)
    per cluster; changing cluster between contiguous windows costs ``switch_penalty`` (less across
    a gap in speech). Models are re-estimated and decoding repeated until labels settle.
    """
    x = _normalize(emb.astype(np.float64))
    n = len(x)
    if n < 2:
        return labels
    contiguous = np.diff(starts) <= hop
    for _ in range(iters):
        labels = np.unique(labels, return_inverse=True)[1]
        k = int(labels.max()) + 1
        if k == 1:
            break
        ids = np.arange(k)
        cents = _normalize(np.stack([x[labels == i].mean(0) for i in ids]))
        score = x @ cents.T
        if pitch is not None and pitch_weight > 0:
            med = np.array([np.nanmedian(pitch[labels == i]) if np.isfinite(pitch[labels == i]).any() else np.nan
                            for i in ids])
            dp = np.abs(pitch[:, None] - med[None, :])
            score = score - pitch_weight * np.where(np.isnan(dp), 0.0, np.minimum(dp, pitch_cap))
        acc = score[0].copy()
        back = np.zeros((n, k), dtype=int)
        for i in range(1, n):
            pen = switch_penalty if contiguous[i - 1] else 0.3 * switch_penalty
            best = int(np.argmax(acc))
            switch = acc[best] - pen > acc
            back[i] = np.where(switch, best, np.arange(k))
            acc = np.where(switch, acc[best] - pen, acc) + score[i]
        path = np.zeros(n, dtype=int)
        path[-1] = int(np.argmax(acc))
        for i in range(n - 1, 0, -1):
            path[i - 1] = back[i, path[i]]
        if (path == labels).all():
            break
        labels = path
    return np.unique(labels, return_inverse=True)[1]

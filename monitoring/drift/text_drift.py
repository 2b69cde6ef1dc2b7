"""Text content drift: Evidently 0.7.23's domain classifier (``legacy/utils/data_drift_utils.py``,
``calculate_text_drift_score``), the test its DataDriftPreset runs on text columns.

Reference and current texts are pooled, split in halves (shuffled, seed 42), a TF-IDF + SGD
classifier learns on one half to tell current from reference, and its ROC AUC on the other half is
the score. ``abs_text_content_drift`` drifts when the AUC exceeds the threshold (0.55);
``perc_text_content_drift`` when it exceeds the (1 - threshold) percentile of the AUC of 1000
random classifiers on the same test labels. scikit-learn is imported only when a text column is
compared: the drift job's start-up does not pay for it otherwise.
"""

from __future__ import annotations

import numpy as np

TRAIN_TEST_SEED = 42
RANDOM_CLASSIFIERS = 1000


def absolute_text_content_drift(reference: np.ndarray, current: np.ndarray, threshold: float) -> tuple[float, bool]:
    """Domain classifier ROC AUC; drift when AUC > threshold."""
    score, _ = _domain_classifier_auc(reference, current)
    return score, score > threshold


def percentile_text_content_drift(reference: np.ndarray, current: np.ndarray, threshold: float) -> tuple[float, bool]:
    """Domain classifier ROC AUC; drift when it exceeds the ``threshold`` percentile of random classifiers' AUC."""
    score, test_labels = _domain_classifier_auc(reference, current)
    return score, score > _random_auc_percentile(test_labels, 1 - threshold)


def _domain_classifier_auc(reference: np.ndarray, current: np.ndarray) -> tuple[float, np.ndarray]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline

    texts = np.concatenate([reference, current]).astype(object)
    labels = np.concatenate([np.zeros(reference.size, dtype=np.int64), np.ones(current.size, dtype=np.int64)])
    train_texts, test_texts, train_labels, test_labels = train_test_split(
        texts, labels, test_size=0.5, random_state=TRAIN_TEST_SEED, shuffle=True
    )
    pipeline = Pipeline(
        [
            ("vectorization", TfidfVectorizer(sublinear_tf=True, max_df=0.5, stop_words="english")),
            (
                "classification",
                SGDClassifier(alpha=0.0001, max_iter=50, penalty="l1", loss="modified_huber", random_state=TRAIN_TEST_SEED),
            ),
        ]
    )
    pipeline.fit(train_texts, train_labels)
    return float(roc_auc_score(test_labels, pipeline.predict_proba(test_texts)[:, 1])), test_labels


def _random_auc_percentile(labels: np.ndarray, p_value: float) -> float:
    """The (1 - p_value) percentile of the AUC of uniform random scores, drawn with Evidently's seeds.

    AUC is computed from ranks (Mann-Whitney U): the same value roc_auc_score gives for scores
    without ties, 1000 times faster than calling it 1000 times.
    """
    seeds = np.random.RandomState(TRAIN_TEST_SEED).randint(0, RANDOM_CLASSIFIERS * 10, size=RANDOM_CLASSIFIERS)
    positives = labels == 1
    positive_count = int(np.count_nonzero(positives))
    negative_count = labels.size - positive_count
    aucs = np.empty(RANDOM_CLASSIFIERS)
    for index, seed in enumerate(seeds):
        scores = np.random.RandomState(seed).rand(labels.size)
        ranks = np.empty(labels.size)
        ranks[np.argsort(scores)] = np.arange(1, labels.size + 1)
        rank_sum = float(ranks[positives].sum())
        aucs[index] = (rank_sum - positive_count * (positive_count + 1) / 2) / (positive_count * negative_count)
    return float(np.percentile(aucs, 100 * (1 - p_value)))

"""Embedders: TF-IDF+SVD (default), sentence-transformers from a local model, precomputed vectors."""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from workbench.cluster import SentenceTransformerEmbedder, TfidfSvdEmbedder, VectorColumn, cluster_traces


def test_tfidf_svd_is_seeded_unit_length_and_transforms(planted):
    texts = planted["input"].to_list()
    first = TfidfSvdEmbedder(seed=3).fit_transform(texts)
    again = TfidfSvdEmbedder(seed=3).fit_transform(texts)
    assert first.dtype == np.float32 and first.shape == (600, 64)
    assert np.array_equal(first, again)
    assert np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
    embedder = TfidfSvdEmbedder(seed=3)
    embedder.fit_transform(texts)
    assert np.allclose(embedder.transform(texts[:5]), first[:5], atol=1e-5)


def test_tfidf_svd_handles_tiny_and_wordless_inputs():
    vectors = TfidfSvdEmbedder().fit_transform(["refund", "refund", "password"])
    assert vectors.shape[0] == 3
    with pytest.raises(ValueError, match="no words"):
        TfidfSvdEmbedder().fit_transform(["the", "a", "and"])
    with pytest.raises(RuntimeError, match="fit_transform"):
        TfidfSvdEmbedder().transform(["x"])


def test_vector_column_checks_its_input():
    frame = pl.DataFrame({"v": [[1.0, 0.0], None]})
    with pytest.raises(ValueError, match="null in row 1"):
        VectorColumn("v").vectors(frame)
    with pytest.raises(ValueError, match="row 1 has 3 values"):
        VectorColumn("v").vectors(pl.DataFrame({"v": [[1.0, 0.0], [1.0, 2.0, 3.0]]}))
    with pytest.raises(ValueError, match="NaN"):
        VectorColumn("v").vectors(pl.DataFrame({"v": [[1.0, float("nan")]]}))
    with pytest.raises(ValueError, match="not in the traces"):
        VectorColumn("w").vectors(frame)
    fixed = pl.DataFrame({"v": [[3.0, 4.0]]}, schema={"v": pl.Array(pl.Float64, 2)})
    assert VectorColumn("v").vectors(fixed).tolist() == [[0.6000000238418579, 0.800000011920929]]


class HashingModel:
    """A stand-in with SentenceTransformer's ``encode`` signature: bag of hashed words."""

    def encode(self, texts, *, batch_size, convert_to_numpy, show_progress_bar):
        out = np.zeros((len(texts), 32), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.split():
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 32] += 1
        return out


def test_sentence_transformer_wrapper_with_a_loaded_model(planted):
    embedder = SentenceTransformerEmbedder(HashingModel())
    vectors = embedder.fit_transform(planted["input"].to_list()[:4])
    assert vectors.shape == (4, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1)


def test_sentence_transformer_never_downloads(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        SentenceTransformerEmbedder("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(FileNotFoundError):
        SentenceTransformerEmbedder(tmp_path / "missing")


def test_sentence_transformer_model_built_locally(tmp_path, planted):
    st = pytest.importorskip("sentence_transformers")
    from sentence_transformers.models.tokenizer import WhitespaceTokenizer

    from tests.cluster.planted import NAMED_TOPICS

    texts = planted["input"].to_list()
    vocabulary = sorted({w for t in texts for w in t.split()})
    rng = np.random.default_rng(0)
    weights = rng.normal(0, 0.1, (len(vocabulary), 16)).astype(np.float32)
    for k, words in enumerate(NAMED_TOPICS.values()):
        for word in words:
            if word in vocabulary:
                weights[vocabulary.index(word), k] += 1.0
    word_embeddings = st.models.WordEmbeddings(tokenizer=WhitespaceTokenizer(vocab=vocabulary, do_lower_case=True),
                                               word_embedding_weights=weights, update_embeddings=False)
    pooling = st.models.Pooling(word_embeddings.get_word_embedding_dimension())
    st.SentenceTransformer(modules=[word_embeddings, pooling], device="cpu").save(str(tmp_path / "tiny"))
    embedder = SentenceTransformerEmbedder(tmp_path / "tiny")
    clusters = cluster_traces(planted, embedder=embedder, seed=0, progress=False, stability_runs=0)
    assert adjusted_rand_score(planted["topic"].to_list(), clusters.assignments["cluster"].to_list()) > 0.9


def test_fast_transform_equals_scikit_learns(planted):
    texts = planted["input"].to_list() * 4
    texts[:4] = ["Café naïve résumé refund", "ÜBER straße refund refund", "", "emoji 🙂 refund_policy x"]
    embedder = TfidfSvdEmbedder(seed=0, min_df=1)
    embedder.fit_transform(texts)
    fast = embedder._fast_tfidf(texts)
    slow = embedder._vectorizer.transform(texts)
    assert fast.shape == slow.shape
    np.testing.assert_allclose(fast.toarray(), slow.toarray(), atol=1e-6)
    assert np.allclose(embedder.transform(texts), embedder._svd.transform(slow) / np.linalg.norm(
        embedder._svd.transform(slow), axis=1, keepdims=True).clip(1e-12), atol=1e-5)
    bigram = TfidfSvdEmbedder(ngram_range=(1, 2), min_df=1)
    bigram.fit_transform(texts)
    assert bigram._fast_tfidf(texts) is None

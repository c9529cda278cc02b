"""Embedders: texts -> unit-length float32 vectors (one row per text).

Three components share one small interface (``fit_transform(texts)`` and
``transform(texts)``):

- :class:`TfidfSvdEmbedder` (default, offline, seeded): TF-IDF (sublinear, English
  stop words) -> TruncatedSVD -> L2 normalisation. 64 dimensions cost ~0.25 s per
  5k texts on this machine.
- :class:`SentenceTransformerEmbedder`: a sentence-transformers model **already on
  disk** (workbench never downloads one); needs ``pip install 'workbench[embeddings]'``.
- :class:`VectorColumn`: vectors computed elsewhere, read from a list/array column
  of the traces table.

Examples
--------
>>> embedder = TfidfSvdEmbedder(dims=2, seed=0)
>>> vectors = embedder.fit_transform(["refund my order", "refund please", "reset password",
...                                   "password reset link"])
>>> vectors.shape, vectors.dtype.name
((4, 2), 'float32')
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl

FAST_TRANSFORM_ABOVE = 2_000
"""``TfidfSvdEmbedder.transform`` tokenises with polars from this many texts up."""


@runtime_checkable
class Embedder(Protocol):
    """What the pipeline needs from an embedder."""

    def fit_transform(self, texts: Sequence[str]) -> np.ndarray:
        """Fit on ``texts`` and return their vectors (n_texts x dims)."""
        ...

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for new ``texts`` in the fitted space."""
        ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise each row (rows of zeros stay zero); returns float32, C order."""
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


class TfidfSvdEmbedder:
    """TF-IDF + TruncatedSVD + L2 normalisation (scikit-learn), seeded.

    Parameters
    ----------
    dims
        SVD dimensions (capped by the vocabulary and the number of texts).
    seed
        Seed of the randomized SVD; the same texts and seed give the same vectors.
    min_df, max_df
        Vocabulary pruning; when it leaves no term (tiny inputs) every term is kept.
    ngram_range
        Word n-grams for the vectoriser.
    """

    def __init__(
        self,
        *,
        dims: int = 64,
        seed: int = 0,
        min_df: int | float = 2,
        max_df: float = 0.5,
        ngram_range: tuple[int, int] = (1, 1),
    ) -> None:
        if dims < 1:
            raise ValueError(f"dims must be >= 1, got {dims}")
        self.dims = dims
        self.seed = seed
        self.min_df = min_df
        self.max_df = max_df
        self.ngram_range = ngram_range
        self._vectorizer: Any = None
        self._svd: Any = None
        self._vocabulary: pl.DataFrame | None = None

    def __repr__(self) -> str:
        return f"TfidfSvdEmbedder(dims={self.dims}, seed={self.seed})"

    def _make_vectorizer(self, min_df: int | float, max_df: float) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(
            sublinear_tf=True,
            min_df=min_df,
            max_df=max_df,
            stop_words="english",
            ngram_range=self.ngram_range,
            dtype=np.float32,
        )

    def fit_transform(self, texts: Sequence[str]) -> np.ndarray:
        """Fit the vocabulary and the SVD on ``texts``; return unit vectors."""
        from sklearn.decomposition import TruncatedSVD

        texts = list(texts)
        self._vocabulary = None
        if not texts:
            raise ValueError("no texts to embed")
        try:
            self._vectorizer = self._make_vectorizer(self.min_df, self.max_df)
            matrix = self._vectorizer.fit_transform(texts)
        except ValueError:  # vocabulary pruned to nothing (tiny or uniform inputs)
            self._vectorizer = self._make_vectorizer(1, 1.0)
            try:
                matrix = self._vectorizer.fit_transform(texts)
            except ValueError as exc:
                raise ValueError(
                    "the texts have no words to embed (empty or only stop words); "
                    "choose another text column"
                ) from exc
        n_components = min(self.dims, matrix.shape[1] - 1, matrix.shape[0] - 1)
        if n_components < 2:
            self._svd = None
            return normalize_rows(matrix.toarray())
        self._svd = TruncatedSVD(n_components=n_components, algorithm="randomized", n_iter=5,
                                 random_state=self.seed)
        return normalize_rows(self._svd.fit_transform(matrix))

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for new texts in the fitted space."""
        if self._vectorizer is None:
            raise RuntimeError("fit_transform() must be called before transform()")
        texts = list(texts)
        matrix = self._fast_tfidf(texts) if len(texts) >= FAST_TRANSFORM_ABOVE else None
        if matrix is None:
            matrix = self._vectorizer.transform(texts)
        if self._svd is None:
            return normalize_rows(matrix.toarray())
        return normalize_rows(self._svd.transform(matrix))


    def _fast_tfidf(self, texts: list[str]) -> Any:
        """The fitted vectoriser's ``transform`` with polars doing the tokenising (multi-threaded).

        Same matrix as scikit-learn's (word unigrams, lowercase, the same token pattern,
        sublinear tf, idf, L2 norm); ``None`` when the settings need scikit-learn's analyzer.
        """
        import scipy.sparse as sp
        from sklearn.preprocessing import normalize

        vec = self._vectorizer
        if (vec.ngram_range != (1, 1) or vec.analyzer != "word" or vec.preprocessor is not None
                or vec.tokenizer is not None or not vec.lowercase or vec.strip_accents is not None):
            return None
        if self._vocabulary is None:
            vocabulary = vec.vocabulary_
            self._vocabulary = pl.DataFrame({"token": list(vocabulary), "column": list(vocabulary.values())},
                                            schema={"token": pl.String, "column": pl.Int64})
        # sklearn's default r"(?u)\b\w\w+\b" finds the same tokens as r"\w\w+" (a maximal run of word
        # characters is bounded by word boundaries); the unicode \b is slow in Rust's regex engine
        pattern = r"\w\w+" if vec.token_pattern == r"(?u)\b\w\w+\b" else vec.token_pattern
        tokens = pl.Series(texts, dtype=pl.String).fill_null("").str.to_lowercase().str.extract_all(pattern)
        pairs = (
            pl.DataFrame({"doc": np.arange(len(texts), dtype=np.int64), "token": tokens})
            .explode("token")
            .join(self._vocabulary, on="token", how="inner")
        )
        ones = np.ones(pairs.height, dtype=np.float64)
        shape = (len(texts), len(vec.vocabulary_))
        matrix = sp.coo_matrix((ones, (pairs["doc"].to_numpy(), pairs["column"].to_numpy())), shape=shape).tocsr()
        matrix.sum_duplicates()
        if vec.sublinear_tf:
            matrix.data = np.log(matrix.data) + 1.0
        if vec.use_idf:
            matrix.data *= vec.idf_[matrix.indices]
        return normalize(matrix, norm=vec.norm).astype(np.float32) if vec.norm else matrix.astype(np.float32)


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local directory (never downloaded).

    Parameters
    ----------
    model
        Path of a saved model (``SentenceTransformer.save`` layout), or an already
        loaded ``SentenceTransformer`` object.
    batch_size, device
        Passed to ``encode``.

    Examples
    --------
    >>> embedder = SentenceTransformerEmbedder("~/models/all-MiniLM-L6-v2")  # doctest: +SKIP
    """

    def __init__(self, model: str | Path | Any, *, batch_size: int = 64, device: str = "cpu") -> None:
        self.batch_size = batch_size
        self.device = device
        if isinstance(model, (str, Path)):
            path = Path(model).expanduser()
            if not path.is_dir():
                raise FileNotFoundError(
                    f"sentence-transformers model directory {str(path)!r} does not exist; "
                    "workbench only loads models already on disk (it never downloads one)"
                )
            self.path: Path | None = path
            self._model: Any = None
        else:
            self.path = None
            self._model = model

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({str(self.path or type(self._model).__name__)!r})"

    def _loaded(self) -> Any:
        if self._model is None:
            from workbench._optional import require

            st = require("sentence_transformers", purpose="SentenceTransformerEmbedder")
            self._model = st.SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
        return self._model

    def fit_transform(self, texts: Sequence[str]) -> np.ndarray:
        """Encode ``texts`` (the model is pre-trained; nothing is fitted)."""
        return self.transform(texts)

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Encode ``texts`` to unit vectors."""
        vectors = self._loaded().encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return normalize_rows(np.asarray(vectors))


class VectorColumn:
    """Vectors precomputed elsewhere, in a list/array column of the traces table.

    Parameters
    ----------
    column
        Name of the column holding one vector per trace (all the same length).
    normalize
        L2-normalise the vectors (the reducer's neighbours are then cosine neighbours).

    Examples
    --------
    >>> frame = pl.DataFrame({"trace_id": ["a", "b"], "vec": [[1.0, 0.0], [0.0, 2.0]]})
    >>> VectorColumn("vec").vectors(frame).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """

    def __init__(self, column: str, *, normalize: bool = True) -> None:
        self.column = column
        self.normalize = normalize

    def __repr__(self) -> str:
        return f"VectorColumn({self.column!r})"

    def vectors(self, frame: pl.DataFrame) -> np.ndarray:
        """The vectors of ``frame``'s rows (n_rows x dims, float32)."""
        if self.column not in frame.columns:
            raise ValueError(f"vector column {self.column!r} is not in the traces; columns are {frame.columns}")
        series = frame.get_column(self.column)
        nulls = series.is_null()
        if nulls.any():
            first = int(nulls.arg_true()[0])
            raise ValueError(f"vector column {self.column!r} is null in row {first} (and {int(nulls.sum()) - 1} more)")
        if isinstance(series.dtype, pl.Array):
            values = series.to_numpy()
        else:
            lengths = series.list.len()
            if lengths.n_unique() != 1:
                bad = int((lengths != lengths[0]).arg_true()[0])
                raise ValueError(
                    f"vector column {self.column!r}: row {bad} has {lengths[bad]} values, row 0 has {lengths[0]}"
                )
            values = np.asarray(series.explode().to_numpy(), dtype=np.float32).reshape(len(series), -1)
        values = np.asarray(values, dtype=np.float32)
        if not np.isfinite(values).all():
            bad = int(np.where(~np.isfinite(values).all(axis=1))[0][0])
            raise ValueError(f"vector column {self.column!r}: row {bad} holds NaN or infinity")
        return normalize_rows(values) if self.normalize else np.ascontiguousarray(values)

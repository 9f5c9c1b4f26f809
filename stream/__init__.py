"""toyfuse: streaming multimodal embeddings for toy listings (Kafka -> Faust -> Triton -> Redis).

What services import: the embedding clients, the settings that locate Redis, the records they
return and the error root (every error toyfuse raises on purpose derives from FeatureServiceError).
"""

from stream.config import Settings
from stream.errors import FeatureServiceError, ListingNotFound, StoreUnavailable
from stream.store.client import EmbeddingClient, SyncEmbeddingClient
from stream.store.listings import SimilarListing, StoredListing

__version__ = "0.1.0"
__all__ = [
    "EmbeddingClient",
    "FeatureServiceError",
    "ListingNotFound",
    "Settings",
    "SimilarListing",
    "StoreUnavailable",
    "StoredListing",
    "SyncEmbeddingClient",
]

"""The deterministic synthetic sample catalog: products, seller texts, reviews, pictures and clips."""

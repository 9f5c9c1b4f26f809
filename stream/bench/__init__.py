"""`toyfuse bench`: throughput, freshness and index measurements, each against its ceiling and baseline in one run."""

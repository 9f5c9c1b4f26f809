"""The Faust worker: agents, the listing and review pipelines, re-fusion, dead letters and locks."""

"""Data: declared datasets (registry), fetching with checksums (fetch), retrieval tasks
(tasks), language metadata (languages), and checks before trusting numbers (checks)."""

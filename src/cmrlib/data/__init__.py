"""Data: manifests, NIfTI I/O, the synthetic cohort, dataset adapters, curation and the preprocessed cache."""

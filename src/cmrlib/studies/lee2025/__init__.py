"""Lee et al. 2025, *Understanding-informed Bias Mitigation for Fair CMR Segmentation* (MELBA): what the main
paper's chapters need beyond the run store's methods: the sweeps of its supplement (chapter 10), the root-cause
probe (chapter 11), the real-data chapter on ACDC (chapter 12) and the cohort ablations."""

"""Lee et al. 2022, *A Systematic Study of Race and Sex Bias in CNN-based Cardiac MR Segmentation* (STACOM): the
proportion sweeps of its three experiments, race × sex, k-fold ensembles (chapter 15) and the clinical measures
of its Fig. 4 (chapter 16)."""

"""Puyol-Antón et al. 2021, *Fairness in Cardiac MR Image Analysis* (MICCAI): six groups in the cohort's own mix,
Table 1 and its tests (chapter 13), and the four strategies of its Table 2: stratified batches, fair
meta-learning, protected-group models and a balanced database (chapter 14)."""

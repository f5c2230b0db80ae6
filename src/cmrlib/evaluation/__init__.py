"""Judging segmentations: DSC and Hausdorff distance, fairness gaps and ratios with bootstrap intervals, the
papers' statistical tests, clinical measures from label maps, the tables of the papers' layout, and the verdict
rules. Imports only the library's base modules."""

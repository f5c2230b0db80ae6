"""cmrlib: reproduction library for ethnicity bias in AI segmentation of cardiac MR and its mitigation.

The book's chapters (notebooks/) call this library; every definition lives here once, with a test.
"""
__version__ = "0.1.0"

STRUCTURES = ("LVBP", "LVM", "RVBP")   # label values 1, 2, 3
FRAMES = ("ED", "ES")
ETHNICITIES = ("White", "Mixed", "Asian", "Black", "Chinese", "Other")

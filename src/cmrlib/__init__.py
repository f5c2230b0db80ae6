"""cmrlib: reproduction library for ethnicity bias in AI segmentation of cardiac MR and its mitigation.

The book's chapters (notebooks/) call this library; every definition lives here once, with a test.
"""
import sys as _sys

__version__ = "0.1.0"

# Every `import monai` imports monai.bundle, which imports jsonschema, which builds an RFC 3987 grammar
# (rfc3987-syntax, about 1.8 s) for URI format checks that nothing here uses. Blocking that optional import
# (jsonschema skips the check when the module is missing) takes 1.8 s off the start of every chapter's kernel.
_sys.modules.setdefault("rfc3987_syntax", None)

STRUCTURES = ("LVBP", "LVM", "RVBP")   # label values 1, 2, 3
FRAMES = ("ED", "ES")
ETHNICITIES = ("White", "Mixed", "Asian", "Black", "Chinese", "Other")

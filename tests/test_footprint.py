"""Each factor of the cohort spec is visible where its label says: an outside_heart factor changes no pixel
inside chapter 07's heart box (beyond the tolerance) for the default geometry, an inside_heart factor does."""
import pytest

from cmrlib.data import footprint as fp
from cmrlib.data.synthetic import CohortConfig, Grid


@pytest.fixture(scope="module")
def course_like():
    """The course profile's grid, a few subjects of the majority and the minority."""
    return CohortConfig(internal={"White": 8, "Black": 8}, external={}, grid=Grid(96, 3.6, 10), seed=0)


def test_factor_extremes_and_override(spec):
    assert fp.factor_extremes(spec, "ghosting_rate") == (0.0, 1.0)
    lo, hi = fp.factor_extremes(spec, "subcutaneous_fat_thickness")
    assert lo == 1.0 and hi == max(spec["factors"]["subcutaneous_fat_thickness"]["groups"].values())
    s = fp.with_factor(spec, "fat_signal", 0.5)
    assert s["factors"]["fat_signal"]["default"] == 0.5 and not s["factors"]["fat_signal"]["groups"]
    assert spec["factors"]["fat_signal"]["groups"]          # the original is untouched


@pytest.mark.parametrize("name", ["subcutaneous_fat_thickness", "fat_signal", "ghosting_rate", "banding_rate",
                                  "myocardial_wall"])
def test_each_factor_changes_pixels_where_its_label_says(spec, course_like, name):
    df = fp.footprint(spec, course_like, name)
    assert df.outside.max() > fp.TOLERANCE or spec["factors"][name]["location"] == "inside_heart"
    within = (df.inside <= fp.TOLERANCE).mean()
    if spec["factors"][name]["location"] == "outside_heart":
        # every subject but the smallest bodies, whose box reaches the anterior fat
        assert within >= 0.9, df.sort_values("inside").tail()
        assert df.inside.median() <= fp.TOLERANCE / 10
    else:
        assert within == 0 and df.inside.min() > fp.TOLERANCE

import numpy as np

from cmrlib.data.pipeline import load_spec, prepare_data
from cmrlib.studies.lee2025 import ablation


def test_site_data_renders_the_same_external_subjects(tiny_params):
    data = prepare_data(tiny_params, progress=False)
    spec = load_spec(tiny_params)
    ext = ablation.site_data(data, spec, "external")
    assert set(ext.subjects.subject_id) == set(data.ids("external")) and set(ext.subjects.split) == {"external"}
    for sid in data.ids("external"):
        a = data.cache.images[data.cache.slices_of([sid])]
        b = ext.cache.images[ext.cache.slices_of([sid])]
        np.testing.assert_array_equal(a, b)


def test_without_factor_gives_every_group_the_reference_value(spec):
    from cmrlib.data.synthetic import factor_value
    s = ablation.without_factor(spec, "ghosting_rate")
    ref = factor_value(spec, "ghosting_rate", spec["reference_group"])
    assert {factor_value(s, "ghosting_rate", g) for g in ("White", "Black", "Mixed")} == {ref}
    assert factor_value(spec, "ghosting_rate", "Black") != ref


def test_cohort_key_ignores_factor_descriptions_not_values(tiny_params, tmp_path):
    import yaml

    from cmrlib.data.pipeline import synthetic_key
    spec = yaml.safe_load(open(tiny_params["cohort"]["spec"]))
    for name, edit in (("prose", lambda s: s["factors"]["fat_signal"].update(what="another description")),
                       ("value", lambda s: s["factors"]["fat_signal"].update(default=0.7))):
        s = yaml.safe_load(yaml.safe_dump(spec))
        edit(s)
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(s))
    key = lambda f: synthetic_key({**tiny_params, "cohort": {**tiny_params["cohort"], "spec": str(tmp_path / f)}})  # noqa: E731
    assert key("prose.yaml") == synthetic_key(tiny_params) != key("value.yaml")

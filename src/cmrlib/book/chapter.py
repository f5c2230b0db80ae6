"""Helpers for the first cells of every chapter: load the profile, seed, print the environment, and show the
smoke-profile warning."""
from __future__ import annotations

import platform
import random
from pathlib import Path

import numpy as np

from cmrlib.book.profile import load_profile
from cmrlib.evaluation.report import MISSING

SMOKE_NOTE = ("Smoke profile: every number on this page comes from a run far too short to mean anything; "
              "it only shows that the pipeline runs. Use the course or gpu profile for results.")


def book_root(here: Path | None = None) -> Path | None:
    """The repository folder (the one holding ``_toc.yml`` and ``params/``) at or above ``here``; None if none."""
    here = Path(here or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "_toc.yml").is_file() and (d / "params").is_dir():
            return d
    return None


def start(params_path: str) -> dict:
    """Load the profile, seed Python/NumPy/torch, print the environment, display the smoke note if needed.

    Profiles, data and runs are named relative to the repository. A chapter opened in JupyterLab runs in
    ``notebooks/``; when the profile is not found there, the kernel moves to the repository folder, so the
    chapter reads the same profiles and reuses the same run store as ``cmrlib book``."""
    import os

    import torch

    root = book_root()
    if not Path(params_path).exists() and root is not None and (root / params_path).exists():
        os.chdir(root)
    params = load_profile(params_path)
    random.seed(params["seed"])
    np.random.seed(params["seed"])
    torch.manual_seed(params["seed"])
    dev = "cuda (" + torch.cuda.get_device_name(0) + ")" if torch.cuda.is_available() else "cpu"
    print(f"profile {params['profile']} ({params_path}), seed {params['seed']}; python {platform.python_version()}, "
          f"torch {torch.__version__}, device {dev}")
    blank_missing_values()
    if not params.get("meaningful", True):
        from IPython.display import HTML, display
        display(HTML(f'<div class="admonition warning"><p class="admonition-title">Warning</p><p>{SMOKE_NOTE}</p></div>'))
    return params


def frame_html(df) -> str:
    """A data frame as the notebook shows it, with ``—`` where a value does not apply instead of ``NaN``."""
    import pandas as pd
    return df.to_html(na_rep=MISSING, notebook=True, max_rows=pd.get_option("display.max_rows"),
                      max_cols=pd.get_option("display.max_columns"), show_dimensions=False)


def blank_missing_values() -> None:
    """In a running kernel, data frames (and series shown as tables) print ``—`` for missing values."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    ip = get_ipython()
    if ip is None:
        return
    import pandas as pd
    pd.set_option("display.max_colwidth", 120)    # table text (topics, factor descriptions) in full
    html = ip.display_formatter.formatters["text/html"]
    html.for_type(pd.DataFrame, frame_html)


def glue(key: str, value) -> None:
    """``myst_nb.glue`` for a number or string quoted in prose: NumPy scalars become Python values, so the
    book's ``{glue:text}`key:.3f``` formats them."""
    from myst_nb import glue as _glue
    if isinstance(value, np.generic):
        value = value.item()
    _glue(key, value, display=False)

"""Helpers for the first cells of every chapter: load the profile, seed, print the environment, and show the
smoke-profile warning."""
from __future__ import annotations

import platform
import random

import numpy as np

SMOKE_NOTE = ("Smoke profile: every number on this page comes from a run far too short to mean anything; "
              "it only shows that the pipeline runs. Use the course or gpu profile for results.")


def start(params_path: str) -> dict:
    """Load the profile, seed Python/NumPy/torch, print the environment, display the smoke note if needed."""
    import torch

    from .config import load_params
    params = load_params(params_path)
    random.seed(params["seed"])
    np.random.seed(params["seed"])
    torch.manual_seed(params["seed"])
    dev = "cuda (" + torch.cuda.get_device_name(0) + ")" if torch.cuda.is_available() else "cpu"
    print(f"profile {params['profile']} ({params_path}), seed {params['seed']}; python {platform.python_version()}, "
          f"torch {torch.__version__}, device {dev}")
    if not params.get("meaningful", True):
        from IPython.display import HTML, display
        display(HTML(f'<div class="admonition warning"><p class="admonition-title">Warning</p><p>{SMOKE_NOTE}</p></div>'))
    return params


def glue(key: str, value) -> None:
    """``myst_nb.glue`` for a number or string quoted in prose: NumPy scalars become Python values, so the
    book's ``{glue:text}`key:.3f``` formats them."""
    from myst_nb import glue as _glue
    if isinstance(value, np.generic):
        value = value.item()
    _glue(key, value, display=False)

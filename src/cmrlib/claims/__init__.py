"""Every claim of the four studies the book tests: :mod:`~cmrlib.claims.rules` (a claim, the context its rule
reads, the paper's numbers) and :mod:`~cmrlib.claims.registry` (the claims themselves). The rules that turn
evidence into a verdict are :mod:`cmrlib.evaluation.verdicts`."""

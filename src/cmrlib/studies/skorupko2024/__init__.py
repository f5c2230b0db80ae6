"""Skorupko et al. 2024, *Debiasing Cardiac Imaging with Controlled Latent Diffusion Models*: a mask- and
attribute-conditioned diffusion model, synthetic minority slices, their fidelity, and what they do to the
fairness gap (chapter 17)."""

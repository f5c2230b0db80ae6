"""Training a segmentation network: the U-Net and nnU-Net-sized networks, the samplers and losses of the
mitigation methods, augmentation, the one training loop with its checkpoints, post-processing, and the small
attribute classifier. Imports only :mod:`cmrlib.data` and the library's base modules."""

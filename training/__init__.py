"""Training Baton's generator: corpus building, the paper's two stages (M2S-Net, M2S-GAN) and
evaluation. See training/README.md for the commands."""

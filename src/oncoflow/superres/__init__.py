"""3D super-resolution along chosen axes: degradation (degrade), interpolation baselines (baseline),
a small residual GAN (gan) and PSNR/SSIM (metrics)."""

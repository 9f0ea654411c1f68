"""Image-quality metrics (PSNR, SSIM, IE, LPIPS, DISTS, FloLPIPS), shared by evaluation and
training's validation.

Imports only the layers below it (`models`, `ops`, `core`).
"""

"""The noise-and-evaluate experiment of ``nlmeans eval`` (Buades, Coll & Morel 2005, "A review of image
denoising algorithms"): add noise to clean images, denoise them with every method, rank them by PSNR.

- :mod:`nlmeans.eval.registry`: the denoisers (ours, the classical baselines, the peers), one signature.
- :mod:`nlmeans.eval.experiment`: the runs, the records, tables, JSON and CSV (:func:`nlmeans.evaluate`).
- :mod:`nlmeans.eval.plots`: PSNR-vs-σ plots, montages and method-noise images (matplotlib).
- :mod:`nlmeans.eval.perona_malik`: the anisotropic-diffusion baseline's numba kernel.
"""

"""Names the imaging scripts, the runner's extractors and the pages agree on (ALMA's)."""

# What scriptForImagingPrep.py writes in Imaging/: the calibrated science target, every EB.
PREPARED_MS = "calibrated_final.ms"
# tclean's image and primary beam, and what scriptForImaging.py exports for the PI.
IMAGE_SUFFIX = ".image"
PB_SUFFIX = ".pb"
PBCOR_FITS_SUFFIX = ".pbcor.fits"
FLUX_FITS_SUFFIX = ".flux.fits"

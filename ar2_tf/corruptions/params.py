"""Severity tables of the two parameter sets, one entry per corruption.

"cifar": hendrycks/robustness `ImageNet-C/create_c/make_cifar_c.py` (CIFAR-10-C, CIFAR-100-C; 32 px).
"imagenet": the imagecorruptions package (`corruptions.py`), which repackages
`make_imagenet_c.py` (ImageNet-C; 224 px) for any image size. Where the two
ImageNet generators differ (elastic transform, frost, pixelate, motion blur)
this set follows imagecorruptions, the reference backend; docs/method/corruptions.md
lists the differences.

Each value is a tuple of 5 entries, severity 1 to 5. Multi-field entries are
documented next to the table.
"""

PARAMS = {
    # std of the additive normal noise (pixels scaled to [0, 1])
    "gaussian_noise": {"cifar": (0.04, 0.06, 0.08, 0.09, 0.10),
                       "imagenet": (0.08, 0.12, 0.18, 0.26, 0.38)},
    # photons per unit intensity: poisson(x * c) / c
    "shot_noise": {"cifar": (500, 250, 100, 75, 50),
                   "imagenet": (60, 25, 12, 5, 3)},
    # fraction of values replaced by salt or pepper
    "impulse_noise": {"cifar": (0.01, 0.02, 0.03, 0.05, 0.07),
                      "imagenet": (0.03, 0.06, 0.09, 0.17, 0.27)},
    # std of the multiplicative normal noise
    "speckle_noise": {"cifar": (0.06, 0.1, 0.12, 0.16, 0.2),
                      "imagenet": (0.15, 0.2, 0.35, 0.45, 0.6)},
    # gaussian sigma in pixels
    "gaussian_blur": {"cifar": (0.4, 0.6, 0.7, 0.8, 1.0),
                      "imagenet": (1, 2, 3, 4, 6)},
    # (sigma, max_delta, iterations)
    "glass_blur": {"cifar": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
                   "imagenet": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))},
    # (disk radius, alias blur sigma)
    "defocus_blur": {"cifar": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
                     "imagenet": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))},
    # (radius, sigma) of the ImageMagick-style one-sided motion kernel
    "motion_blur": {"cifar": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
                    "imagenet": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))},
    # zoom factors np.arange(start, stop, step)
    "zoom_blur": {"cifar": ((1, 1.06, 0.01), (1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.01), (1, 1.26, 0.01)),
                  "imagenet": ((1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02), (1, 1.31, 0.03))},
    # (mean, std, zoom, threshold, blur radius, blur sigma, image blend)
    "snow": {"cifar": ((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
                       (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
                       (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)),
             "imagenet": ((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
                          (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
                          (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55))},
    # (image weight, frost weight)
    "frost": {"cifar": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
              "imagenet": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))},
    # (fog strength, plasma wibble decay)
    "fog": {"cifar": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
            "imagenet": ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))},
    # added to the HSV value
    "brightness": {"cifar": (0.05, 0.1, 0.15, 0.2, 0.3),
                   "imagenet": (0.1, 0.2, 0.3, 0.4, 0.5)},
    # factor on the distance to the per-channel mean
    "contrast": {"cifar": (0.75, 0.5, 0.4, 0.3, 0.15),
                 "imagenet": (0.4, 0.3, 0.2, 0.1, 0.05)},
    # cifar: (alpha, sigma, affine jitter) as fractions of the image size (make_cifar_c's IMSIZE=32);
    # imagenet: alpha of imagecorruptions' affine-free version (sigma = 1% and jitter = 0.5% of the size)
    "elastic_transform": {"cifar": ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06),
                                    (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)),
                          "imagenet": (250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12)},
    # side of the low-resolution image as a fraction of the original
    "pixelate": {"cifar": (0.95, 0.9, 0.85, 0.75, 0.65),
                 "imagenet": (0.6, 0.5, 0.4, 0.3, 0.25)},
    # JPEG quality
    "jpeg_compression": {"cifar": (80, 65, 58, 50, 40),
                         "imagenet": (25, 18, 15, 10, 7)},
    # (mean, std, blur sigma, threshold, mask blur sigma / water intensity, 0 = water 1 = mud)
    "spatter": {"cifar": ((0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0),
                          (0.65, 0.3, 1, 0.69, 0.5, 0), (0.65, 0.1, 0.7, 0.69, 0.6, 1),
                          (0.65, 0.1, 0.5, 0.68, 0.6, 1)),
                "imagenet": ((0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0),
                             (0.65, 0.3, 2, 0.68, 0.5, 0), (0.65, 0.3, 1, 0.65, 1.5, 1),
                             (0.67, 0.4, 1, 0.65, 1.5, 1))},
    # (saturation factor, saturation offset)
    "saturate": {"cifar": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
                 "imagenet": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))},
}


def table(name: str, params: str):
    """The 5 severity entries of `name` in parameter set `params`."""
    return PARAMS[name][params]


def column(name: str, params: str, field: int):
    """One field of a multi-field table, as a tuple over the 5 severities."""
    return tuple(row[field] for row in PARAMS[name][params])

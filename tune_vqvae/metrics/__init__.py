"""How reconstructions are scored: FID and KID (Inception features: Fréchet distance, and
kernel distance) and the offline SWD, by one scorer with a cache
of the real images' statistics and features.

    inception   pytorch-fid's InceptionV3 features; finding, checking, downloading its weights
    frechet     float64 streaming statistics and the Fréchet distance
    kid         Kernel Inception Distance (float64 torch on the features' device)
    swd         the offline metric (sliced Wasserstein distance, Karras et al. 2018)
    scorer      FIDConfig and FIDEvaluator: a trial's fid, kid, kid_std, swd; reference cached
"""

from .frechet import StreamingStats, frechet_distance
from .inception import (
    FID_WEIGHTS_FILE,
    WEIGHTS_ENV,
    InceptionFeatures,
    check_fid_weights,
    fid_weights_available,
    require_fid_weights,
    verify_fid_weights,
)
from .kid import kid
from .scorer import FIDConfig, FIDEvaluator
from .swd import SWDAccumulator, swd

__all__ = ["FID_WEIGHTS_FILE", "WEIGHTS_ENV", "FIDConfig", "FIDEvaluator", "InceptionFeatures",
           "SWDAccumulator", "StreamingStats", "check_fid_weights", "fid_weights_available",
           "frechet_distance", "kid", "require_fid_weights", "swd",
           "verify_fid_weights"]

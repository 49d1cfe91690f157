"""Networks of the study: the UNet generator, the Real-ESRGAN discriminator, the VGG-19 loss."""

from advmri.models.discriminator import UNetDiscriminatorSN
from advmri.models.io import load_generator, save_generator
from advmri.models.perceptual import RANDOM_FLAG, PerceptualLoss
from advmri.models.unet import UNet

__all__ = [
    "RANDOM_FLAG",
    "PerceptualLoss",
    "UNet",
    "UNetDiscriminatorSN",
    "load_generator",
    "save_generator",
]

"""Networks of the study: the UNet generator, the Real-ESRGAN discriminator, the VGG-19 loss."""

from advmri.models.io import load_generator, save_generator
from advmri.models.unet import UNet

__all__ = ["UNet", "load_generator", "save_generator"]

"""CAE Latent Explorer's engine: the lecture's convolutional autoencoder with a 2-D code, its data,
training, checkpoints and metrics.  Pure torch + numpy; it never imports Qt."""
__version__ = "0.1.0"

from .errors import CAEError, CheckpointError, DataError, DownloadError, IDXFormatError, TrainingError  # noqa: E402
from .model import CAE, CAEConfig  # noqa: E402

__all__ = ["CAE", "CAEConfig", "CAEError", "CheckpointError", "DataError", "DownloadError",
           "IDXFormatError", "TrainingError", "__version__"]

"""The error types of the engine: each one carries a message meant for a person."""


class CAEError(Exception):
    """Base of every error the engine raises on purpose; the CLI and GUI show its message."""


class DataError(CAEError):
    """A dataset is missing, malformed or does not match its published checksum."""


class IDXFormatError(DataError):
    """An IDX file is malformed (bad magic, dtype, dimensions or payload length)."""


class DownloadError(DataError):
    """Every mirror failed, or the download was cancelled."""


class CheckpointError(CAEError):
    """A model file is unreadable, unsafe (pickle) or does not fit the architecture."""


class TrainingError(CAEError):
    """Training cannot go on (non-finite loss, out of memory, bad settings)."""

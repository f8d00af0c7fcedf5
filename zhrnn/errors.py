"""Errors a user can cause. The CLI turns each into one line on stderr and a non-zero exit."""


class ZhrnnError(Exception):
    """Base class: the message is written for the user and says what to do."""


class CorpusError(ZhrnnError):
    """The training text cannot be read, decoded or is unusable (empty, too short, binary)."""


class VocabularyError(ZhrnnError):
    """Text contains characters the model's vocabulary does not have."""


class CheckpointError(ZhrnnError):
    """A checkpoint is missing, corrupt, unsafe or from another format version."""


class ConfigError(ZhrnnError):
    """An option has a value that cannot work (negative length, top-p outside (0, 1], ...)."""


class DistributedError(ZhrnnError):
    """Processes of one torchrun training disagree or lost each other."""


class PeerFailed(DistributedError):
    """Another process failed and printed why; this one only stops (nothing to add)."""


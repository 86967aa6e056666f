"""Error types that the CLI reports as one clear line (exit code 2) instead of a traceback."""


class VidrecError(Exception):
    """Bad input or state that the user can fix; the message names the key or file and the fix."""


class ConfigError(VidrecError, ValueError):
    """A config value is wrong; the message names the key and the fix."""


class DiskSpaceError(VidrecError):
    """A file system has (or would have) too little free space; the message names the file or folder,
    the bytes needed and free, and the settings that change them."""


class OutOfMemoryError(VidrecError):
    """The device ran out of memory; the message names the run, the batch size, the device's memory
    and what to do."""

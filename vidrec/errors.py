"""Error types that the CLI reports as one clear line (exit code 2) instead of a traceback."""


class VidrecError(Exception):
    """Bad input or state that the user can fix; the message names the key or file and the fix."""


class ConfigError(VidrecError, ValueError):
    """A config value is wrong; the message names the key and the fix."""

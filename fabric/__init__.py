"""fabric: network fabric emulator and traffic analyzer for AI inference clusters."""

__version__ = "0.1.0"

"""pycarp: a CARP (ucarp-compatible) high-availability virtual IP daemon."""

__version__ = "0.1.0"

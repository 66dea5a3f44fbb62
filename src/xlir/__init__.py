"""xlir: cross-lingual dense retrieval for low-resource languages.

Importing xlir does nothing heavy: torch, transformers and friends are imported by the modules
that need them, when they need them.
"""

__version__ = "0.1.0"

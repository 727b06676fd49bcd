"""kreplay: replay FreeBSD ktrace/kdump recordings against a model of the kernel allocators."""

__version__ = "0.1.0"

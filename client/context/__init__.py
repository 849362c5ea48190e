"""Which project files may be sent, decided as git decides what is ignored.

Modules: ``scan`` (targets to files, with skip reasons), ``ignore`` (rules, precedence and
``explain``), ``walk`` (the pruning walker), ``patterns`` and ``wildmatch`` (git's pattern
syntax), ``defaults`` (built-in ignores), ``gitinfo`` (exclude files and tracked files).
Import from the owning module; this package imports nothing so that the client starts fast.
"""

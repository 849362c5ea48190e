"""What may leave the machine: which project files may be sent (decided as git decides what is
ignored), and what is checked in them before they are.

Modules: ``scan`` (targets to files, with skip reasons, and ``read_files``), ``contents``
(the checks that need the file itself, made in the one open that reads it), ``ignore`` (rules,
precedence and ``explain``), ``walk`` (the pruning walker), ``patterns`` and ``wildmatch``
(git's pattern syntax), ``defaults`` (built-in ignores), ``gitinfo`` (exclude files and tracked
files); ``secrets`` (the secret guard), ``manifest`` (what an upload holds and costs),
``freshness`` (loaded files that changed on disk), ``tree`` (names-only listings), ``urls`` and
``htmltext`` (web pages fetched by the client), ``progress`` (bars for large jobs).
Import from the owning module; this package imports nothing so that the client starts fast.
"""

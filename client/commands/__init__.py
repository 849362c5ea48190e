"""The CLI's commands, one module per group; each has ``register(subparsers)``."""

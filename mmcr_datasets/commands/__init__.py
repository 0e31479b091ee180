"""One module per ``mmcr`` sub-command; each defines ``register(subparsers)``."""

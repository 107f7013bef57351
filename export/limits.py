"""What one request to an exported model may send: the serving signatures refuse anything larger.
TensorFlow-free, so `python -m export --help` shows them without importing it."""

MAX_IMAGE_SIZE = 4096  # largest accepted image height and width, in pixels
MAX_BATCH_SIZE = 64  # most images per request

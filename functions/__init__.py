"""One module per patient endpoint: parse the request, call one service, shape the answer.

This package reaches the Lambda artifact through the ``vendor/functions`` symlink.
"""

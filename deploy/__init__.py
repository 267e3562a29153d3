"""Packaging for AWS Lambda: ``make package`` (``python -m deploy.package``). Not part of the artifact."""
